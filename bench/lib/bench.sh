# The shared shell of the end-to-end benches (sourced, not run): it changes to the repository
# root (ROOT), finds the pgbaton binary and the tools a bench needs, and starts throwaway
# PostgreSQL clusters on free loopback ports (as RUN_AS, default postgres, when run as root).
#
#   PGBATON                -> the pgbaton binary: the bench's first argument, else PGBATON_BIN,
#                             else build/release/tools/pgbaton (exits 2 when not executable)
#   require_tools TOOL...  -> exits 2 naming the first TOOL that is not on PATH
#   bindir MAJOR           -> the server binaries of PostgreSQL MAJOR (15: the system's; others:
#                             scripts/setup's, under PGBATON_DEPS_DIR or .deps)
#   free_port              -> a free TCP port on 127.0.0.1
#   median "X Y Z"         -> the median of the space-separated numbers (the mean of the two middle
#                             ones for an even count)
#   as_pg CMD              -> runs the shell command CMD as RUN_AS (as is when not root)
#   bench_workdir NAME     -> makes WORK, a fresh /tmp/pgbaton-bench-NAME.XXXXXX that RUN_AS
#                             owns, and stops every cluster and removes WORK (unless KEEP=1) on
#                             exit
#   start_cluster NAME MAJOR PORT [SETTING...]
#                          -> initdb and start a cluster in $WORK/NAME on PORT with logical
#                             decoding on, 20 slots and WAL senders, max_wal_size 8GB,
#                             checkpoint_timeout 30min, and each SETTING ("key = value") after
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
RUN_AS=${RUN_AS:-postgres}
CLUSTERS=()

PGBATON=${1:-${PGBATON_BIN:-$ROOT/build/release/tools/pgbaton}}
[ -x "$PGBATON" ] || { echo "pgbaton binary not found at $PGBATON (pass it as the first argument)"; exit 2; }
require_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "missing $tool (scripts/setup installs it)"; exit 2; }
  done
}

bindir() {
  if [ "$1" = 15 ]; then echo /usr/lib/postgresql/15/bin
  else echo "${PGBATON_DEPS_DIR:-$ROOT/.deps}/test-servers/node_modules/pg$1/native/bin"; fi
}
median() { printf '%s\n' $1 | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
as_pg() { if [ "$(id -u)" = 0 ]; then su "$RUN_AS" -s /bin/bash -c "$*"; else bash -c "$*"; fi; }

stop_clusters() {
  for c in "${CLUSTERS[@]}"; do
    as_pg "$(bindir "${c##*:}")/pg_ctl -D $WORK/${c%%:*}/data -m immediate stop" >/dev/null 2>&1 || true
  done
  [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}

bench_workdir() {
  WORK=$(mktemp -d "/tmp/pgbaton-bench-$1.XXXXXX")
  chmod 755 "$WORK"
  if [ "$(id -u)" = 0 ]; then chown "$RUN_AS" "$WORK"; fi
  trap stop_clusters EXIT
}

start_cluster() {
  local dir=$WORK/$1 bin setting; bin=$(bindir "$2")
  as_pg "mkdir -p $dir && $bin/initdb -D $dir/data -U postgres -A trust >/dev/null"
  cat >> "$dir/data/postgresql.conf" <<CONF
port = $3
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
max_wal_size = 8GB
checkpoint_timeout = 30min
CONF
  for setting in "${@:4}"; do echo "$setting" >> "$dir/data/postgresql.conf"; done
  CLUSTERS+=("$1:$2")
  as_pg "$bin/pg_ctl -D $dir/data -l $dir/log -w start >/dev/null"
}

#!/usr/bin/env bash
# End-to-end decoder benchmark: `pgbaton stream` (pgoutput -> durable RocksDB queue) against
# `pg_recvlogical` (the same pgoutput slot options -> /dev/null) draining the same backlog on a
# fresh local server. Each tool gets its own slots, all created before the backlog; ROUNDS rounds
# alternate the two, and the script prints each time, the medians and the ratio.
#
#   bench/decoder/stream_vs_recvlogical.sh [BUILD_DIR]      (default build/release)
# Environment: MAJOR (15; 13/17/18 from .deps), SCALE (pgbench -i scale, 10), SECONDS_RUN
# (pgbench -T, 20), ROUNDS (3).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BUILD=${1:-build/release}
PGBATON=$ROOT/$BUILD/tools/pgbaton
MAJOR=${MAJOR:-15}
SCALE=${SCALE:-10}
SECONDS_RUN=${SECONDS_RUN:-20}
ROUNDS=${ROUNDS:-3}
[ -x "$PGBATON" ] || { echo "no pgbaton at $PGBATON (build it first)" >&2; exit 2; }
if [ "$MAJOR" = 15 ]; then BIN=/usr/lib/postgresql/15/bin; else
  BIN=$ROOT/.deps/test-servers/node_modules/pg$MAJOR/native/bin; fi
[ -x "$BIN/postgres" ] || { echo "no PostgreSQL $MAJOR at $BIN (run scripts/setup)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/pgbaton-decoder-bench.XXXXXX)
chmod 755 "$WORK"
AS=()
if [ "$(id -u)" = 0 ]; then AS=(runuser -u postgres --); chown postgres "$WORK"; fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
  "${AS[@]}" "$BIN/pg_ctl" -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

"${AS[@]}" "$BIN/initdb" -D "$WORK/data" -U postgres -A trust >/dev/null
cat >> "$WORK/data/postgresql.conf" <<CONF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$WORK'
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
shared_buffers = 256MB
max_wal_size = 4GB
CONF
"${AS[@]}" "$BIN/pg_ctl" -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null
CONN="host=127.0.0.1 port=$PORT user=postgres dbname=postgres"
sql() { psql "$CONN" -qAtX -c "$1"; }

# Slots and publications first, so every tool sees the whole backlog.
for r in $(seq 1 "$ROUNDS"); do
  sql "CREATE PUBLICATION pgb$r FOR ALL TABLES" >/dev/null
  sql "SELECT pg_create_logical_replication_slot('pgb$r', 'pgoutput')" >/dev/null
  sql "SELECT pg_create_logical_replication_slot('recv$r', 'pgoutput')" >/dev/null
done
echo "== backlog: pgbench -i -s $SCALE, then pgbench -T $SECONDS_RUN on PostgreSQL $MAJOR"
pgbench -h 127.0.0.1 -p "$PORT" -U postgres -i -q -s "$SCALE" postgres >/dev/null 2>&1
pgbench -h 127.0.0.1 -p "$PORT" -U postgres -T "$SECONDS_RUN" -c 4 -j 2 postgres 2>/dev/null |
  grep -E "number of transactions actually processed" || true
sql "CREATE TABLE bench_marker (id int)"
BEFORE=$(sql "SELECT pg_current_wal_lsn()")
sql "INSERT INTO bench_marker VALUES (1)"
ENDPOS=$(sql "SELECT pg_current_wal_lsn()")
echo "== backlog: $(sql "SELECT pg_size_pretty(pg_wal_lsn_diff('$ENDPOS', restart_lsn)) FROM pg_replication_slots WHERE slot_name = 'recv1'") of WAL"

case $MAJOR in 13) PROTO=1; OPTS=();; 14) PROTO=2; OPTS=(-o messages=true -o streaming=on);;
  15) PROTO=3; OPTS=(-o messages=true -o streaming=on);;
  *) PROTO=4; OPTS=(-o messages=true -o streaming=on -o origin=none);; esac

now() { date +%s.%N; }
recv_times=(); stream_times=()
for r in $(seq 1 "$ROUNDS"); do
  t0=$(now)
  pg_recvlogical -d "$CONN" --slot "recv$r" --start --endpos "$ENDPOS" -f /dev/null \
    -o proto_version=$PROTO -o publication_names=pgb$r "${OPTS[@]}" --no-loop 2>/dev/null
  t1=$(now)
  recv_times+=("$(echo "$t1 - $t0" | bc)")

  rm -rf "$WORK/queue$r"
  t0=$(now)
  "$PGBATON" --name "pgb$r" --log-level warning stream --source "$CONN" --queue-dir "$WORK/queue$r" &
  pid=$!
  until [ "$(sql "SELECT coalesce(confirmed_flush_lsn > '$BEFORE'::pg_lsn, false) FROM pg_replication_slots WHERE slot_name = 'pgb$r'")" = t ]; do
    kill -0 $pid 2>/dev/null || { echo "pgbaton stream exited early" >&2; exit 1; }
    sleep 0.02
  done
  t1=$(now)
  hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  kill -TERM $pid; wait $pid || true
  stream_times+=("$(echo "$t1 - $t0" | bc)")
  printf 'round %d: pg_recvlogical %6.2f s   pgbaton stream %6.2f s (peak RSS %d MB, queue %s)\n' \
    "$r" "${recv_times[-1]}" "${stream_times[-1]}" $((hwm / 1024)) "$(du -sh "$WORK/queue$r" | cut -f1)"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mr=$(median "${recv_times[@]}"); ms=$(median "${stream_times[@]}")
printf 'median: pg_recvlogical %.2f s, pgbaton stream %.2f s, ratio stream/recvlogical %.2f\n' \
  "$mr" "$ms" "$(echo "$ms / $mr" | bc -l)"

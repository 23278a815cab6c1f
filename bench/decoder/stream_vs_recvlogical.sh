#!/usr/bin/env bash
# End-to-end decoder benchmark: `pgbaton stream` (pgoutput -> durable RocksDB queue) against
# `pg_recvlogical` (the same pgoutput slot options -> /dev/null) draining the same backlog on a
# fresh local server. Each tool gets its own slots, all created before the backlog; ROUNDS rounds
# alternate the two, and the script prints each time, the medians and the ratio.
# `pgbaton stream` must exit 0 at SIGTERM, and its queue must hold the whole backlog: after the
# timed part of each round, `pgbaton apply` replays that queue onto an empty copy of the schema
# on a second cluster, and every table must then equal the source row for row
# (bench/lib/digest.sh); otherwise the script exits 1. pg_recvlogical's output is not kept (it
# writes to /dev/null), so only its exit code is checked. BENCH_CORRUPT=pgbaton changes one row of
# the replayed copy before the check (to see that a difference is caught).
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
  "${AS[@]}" "$BIN/pg_ctl" -D "$WORK/check" -m immediate stop >/dev/null 2>&1 || true
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

# The cluster the queues are replayed onto (not timed): same major, same settings.
CHECK_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${AS[@]}" "$BIN/initdb" -D "$WORK/check" -U postgres -A trust >/dev/null
sed -e "s/^port = .*/port = $CHECK_PORT/" "$WORK/data/postgresql.conf" > "$WORK/check.conf"
"${AS[@]}" cp "$WORK/check.conf" "$WORK/check/postgresql.conf"
"${AS[@]}" "$BIN/pg_ctl" -D "$WORK/check" -l "$WORK/check.log" -w start >/dev/null
check_conn() { echo "host=127.0.0.1 port=$CHECK_PORT user=postgres dbname=$1"; }

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

# Replays round r's queue onto an empty copy of the schema (pgbench -i -I dtp + the marker
# table) up to the marker's commit, then compares every table with the source.
. "$ROOT/bench/lib/digest.sh"
DIGEST_SQL=$(digest_query "$CONN")
WANT=$(digest_of "$CONN" "$DIGEST_SQL")
case $WANT in error:*) echo "cannot digest the source: $WANT" >&2; exit 1;; esac
FAILED=()
check_queue() {
  local r=$1 db=check$1 marker got
  psql -qX "$(check_conn postgres)" -c "CREATE DATABASE $db"
  pgbench -h 127.0.0.1 -p "$CHECK_PORT" -U postgres -i -I dtp -q -s "$SCALE" "$db" >/dev/null 2>&1
  psql -qX "$(check_conn $db)" -c "CREATE TABLE bench_marker (id int)"
  # The marker is the last transaction of the backlog: the one queued after BEFORE.
  marker=$("$PGBATON" --name "pgb$r" queue inspect --queue-dir "$WORK/queue$r" --from "$BEFORE" \
    --json | python3 -c 'import json, sys; l = [json.loads(x) for x in sys.stdin if x.strip()]; print(l[-1]["commit_lsn"] if l else "")')
  [ -n "$marker" ] || { echo "round $r: the queue does not hold the marker transaction" >&2; return 1; }
  timeout 600 "$PGBATON" --name "pgb$r" --log-level warning apply --target "$(check_conn $db)" \
    --queue-dir "$WORK/queue$r" --stop-at "$marker" > "$WORK/apply$r.log" 2>&1 ||
    { echo "round $r: pgbaton apply of the queue failed:" >&2; tail -5 "$WORK/apply$r.log" >&2; return 1; }
  bench_corrupt_if pgbaton "$(check_conn $db)"
  got=$(digest_of "$(check_conn $db)" "$DIGEST_SQL")
  if [ "$got" != "$WANT" ]; then
    echo "round $r: the queue replayed differs from the source:" >&2
    diff <(echo "$WANT") <(echo "$got") | sed -n 's/^< /  source: /p; s/^> /  replay: /p' | head -20 >&2 || true
    return 1
  fi
  echo "round $r: the queue replayed equals the source ($(echo "$WANT" | wc -l) tables)"
  rm -rf "$WORK/queue$r"
}

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
  kill -TERM $pid
  code=0; wait $pid || code=$?
  [ "$code" = 0 ] || { echo "pgbaton stream exited with $code after SIGTERM" >&2; exit 1; }
  stream_times+=("$(echo "$t1 - $t0" | bc)")
  printf 'round %d: pg_recvlogical %6.2f s   pgbaton stream %6.2f s (peak RSS %d MB, queue %s)\n' \
    "$r" "${recv_times[-1]}" "${stream_times[-1]}" $((hwm / 1024)) "$(du -sh "$WORK/queue$r" | cut -f1)"
  check_queue "$r" || FAILED+=("$r")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mr=$(median "${recv_times[@]}"); ms=$(median "${stream_times[@]}")
printf 'median: pg_recvlogical %.2f s, pgbaton stream %.2f s, ratio stream/recvlogical %.2f\n' \
  "$mr" "$ms" "$(echo "$ms / $mr" | bc -l)"
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "FAILED: the queue of round(s) ${FAILED[*]} did not hold the backlog (no ratio is valid)" >&2
  exit 1
fi

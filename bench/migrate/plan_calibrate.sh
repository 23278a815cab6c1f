#!/usr/bin/env bash
# Measures the two constants of `pgbaton migrate --plan` (tools/migrate/plan_model.h) on this
# machine, with throwaway clusters (source 15, target 17):
#
# 1. queue bytes per WAL byte: `pgbaton stream` (no applier, so nothing is trimmed) drains a
#    source under a write load for LOAD_S seconds; the WAL generated meanwhile
#    (pg_current_wal_lsn() before and after) against the queue directory's size (du) once the
#    stream stopped. Two loads: pgbench's tpcb-like at RATE tps, and small-row updates and inserts
#    (the plan test's and the migrate test's kind of load).
# 2. the copy's end-to-end rate over the plan's read rate, and the copy's fixed part: for each
#    size in SIZES_MB, `migrate --plan --json` then the real `migrate --until caught-up`, and the
#    plan's sample rate against the real data phase.
#
#   bench/migrate/plan_calibrate.sh [PGBATON_BIN]   (LOAD_S=20 RATE=300 SIZES_MB="5 60 250" JOBS=2)
set -euo pipefail
source "$(dirname "$0")/../lib/bench.sh"
require_tools psql pgbench jq
LOAD_S=${LOAD_S:-20}
RATE=${RATE:-300}
SIZES_MB=${SIZES_MB:-"5 60 250"}
JOBS=${JOBS:-2}
bench_workdir plan
SP=$(free_port); TP=$(free_port)
start_cluster src 15 "$SP"
start_cluster dst 17 "$TP"
SRC="host=127.0.0.1 port=$SP user=postgres dbname=app"
DST="host=127.0.0.1 port=$TP user=postgres dbname=app"
q() { psql -X -At -h 127.0.0.1 -p "$1" -U postgres -d "$2" -c "$3"; }

echo "== queue bytes per WAL byte (pgbaton stream, no applier, ${LOAD_S} s per load)"
ratio_run() {  # NAME LOAD-COMMAND...
  local name=$1; shift
  local dir=$WORK/queue-$name
  q "$SP" postgres "DROP DATABASE IF EXISTS app" >/dev/null
  q "$SP" postgres "CREATE DATABASE app" >/dev/null
  pgbench -q -i -s 5 -h 127.0.0.1 -p "$SP" -U postgres app >/dev/null 2>&1
  q "$SP" app "CREATE TABLE small (k text PRIMARY KEY, v int); CHECKPOINT" >/dev/null
  "$PGBATON" --name "r$name" stream --source "$SRC" --queue-dir "$dir" >"$WORK/stream-$name.log" 2>&1 &
  local pid=$!
  until q "$SP" app "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'r$name' AND active" | grep -q 1; do sleep 0.2; done
  local from; from=$(q "$SP" app "SELECT pg_current_wal_lsn()")
  "$@"
  local to; to=$(q "$SP" app "SELECT pg_current_wal_lsn()")
  # Until the stream has confirmed everything the load wrote.
  until [ "$(q "$SP" app "SELECT confirmed_flush_lsn >= '$to' FROM pg_replication_slots WHERE slot_name = 'r$name'")" = t ]; do sleep 0.2; done
  kill -INT "$pid"; wait "$pid" || true
  local wal queue; wal=$(q "$SP" app "SELECT pg_wal_lsn_diff('$to', '$from')::bigint")
  queue=$(du -sb "$dir" | cut -f1)
  q "$SP" app "SELECT pg_drop_replication_slot('r$name')" >/dev/null
  echo "$name: WAL $wal bytes, queue $queue bytes, ratio $(jq -n "$queue / $wal * 1000 | round / 1000")"
}
pgbench_load() {
  pgbench -n -T "$LOAD_S" -R "$RATE" -c 2 -h 127.0.0.1 -p "$SP" -U postgres app >/dev/null 2>&1
}
small_load() {
  cat >"$WORK/small.sql" <<'SQL'
\set k random(1, 2000)
\set n random(1, 1000000000)
UPDATE small SET v = v + 1 WHERE k = 'k' || :k;
INSERT INTO small VALUES ('w' || :n, :n) ON CONFLICT (k) DO NOTHING;
SQL
  q "$SP" app "INSERT INTO small SELECT 'k' || i, i FROM generate_series(1, 2000) i" >/dev/null
  pgbench -n -f "$WORK/small.sql" -T "$LOAD_S" -R "$RATE" -c 2 -h 127.0.0.1 -p "$SP" -U postgres app >/dev/null 2>&1
}
ratio_run pgbench pgbench_load
ratio_run small small_load

echo "== copy: plan vs real (jobs $JOBS)"
for mb in $SIZES_MB; do
  q "$SP" postgres "DROP DATABASE IF EXISTS app" >/dev/null
  q "$SP" postgres "CREATE DATABASE app" >/dev/null
  q "$TP" postgres "DROP DATABASE IF EXISTS app" >/dev/null
  q "$TP" postgres "CREATE DATABASE app" >/dev/null
  rows=$((mb * 1000000 / 115))
  q "$SP" app "CREATE TABLE big (id bigint PRIMARY KEY, qty int, note text);
    INSERT INTO big SELECT i, i % 100, md5(i::text) || md5((i * 7)::text) FROM generate_series(1, $rows) i;
    CREATE TABLE small (k text PRIMARY KEY, v int);
    INSERT INTO small SELECT 'k' || i, i FROM generate_series(1, 2000) i;
    ANALYZE; CHECKPOINT" >/dev/null
  dir=$WORK/queue-copy-$mb
  plan=$("$PGBATON" migrate --source "$SRC" --target "$DST" --queue-dir "$dir" --jobs "$JOBS" --plan --json)
  "$PGBATON" migrate --source "$SRC" --target "$DST" --queue-dir "$dir" --jobs "$JOBS" \
    --progress json --until caught-up >"$WORK/migrate-$mb.log" 2>&1
  summary=$(grep '"summary"' "$WORK/migrate-$mb.log")
  jq -n --argjson p "$plan" --argjson s "$summary" '{
      size_mb: ($p.copy.bytes / 1e6 | round),
      plan_read_MBps: ($p.copy.read_bytes_per_second / 1e6 * 10 | round / 10),
      plan_copy_s: ($p.copy.seconds * 100 | round / 100),
      real_copy_s: ($s.total_s * 100 | round / 100),
      real_data_s: ($s.phases_s.data * 100 | round / 100),
      real_rest_s: (($s.total_s - $s.phases_s.data) * 100 | round / 100),
      end_to_end_over_read: (($p.copy.bytes / $s.phases_s.data) / $p.copy.read_bytes_per_second * 1000 | round / 1000),
      real_over_plan: ($s.total_s / $p.copy.seconds * 100 | round / 100)}' -c
  "$PGBATON" cleanup --source "$SRC" --target "$DST" --queue-dir "$dir" >/dev/null 2>&1 || true
done

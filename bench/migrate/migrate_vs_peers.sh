#!/usr/bin/env bash
# From an empty target to caught up, under a steady write load, pgbaton vs its peers, in one run:
#   migrate:      pgbaton migrate --until caught-up (the decoder drains the source during the copy)
#   copy_run:     pgbaton copy, then pgbaton run (nothing reads the slot until the copy is over)
#   subscription: a native subscription (copy_data = true, schema and indexes restored first)
#   pgcopydb:     pgcopydb clone --follow, where the installed pgcopydb can (it is reported as not
#                 run, not as wrong, when it fails to start or to follow)
# pgbench writes at a fixed rate (-R RATE) on the source during each contender. Each prints:
#   (a) the wall time from its start until caught up: the first moment a source position marked
#       then is applied on the target (its replication origin passes it) within LAG_S seconds;
#   (b) the WAL its slots hold on the source (pg_current_wal_lsn() - the oldest restart_lsn of
#       its slots, sampled every 0.5 s): when its copy ends, and at its peak.
# Then the load stops, every contender's target is brought to the source's last position and
# compared with the source, every table row for row (bench/lib/digest.sh): a different target is
# WRONG (no ratio) and the script exits 1. Hygiene: both clusters are checkpointed and the
# previous contender's target dropped before each contender; the order rotates between rounds;
# medians of ROUNDS rounds.
#
# Usage: bench/migrate/migrate_vs_peers.sh [PGBATON_BIN]
#        env: SCALE=30 RATE=500 CLIENTS=4 JOBS=2 ROUNDS=3 LAG_S=1 SOURCE_MAJOR=15 TARGET_MAJOR=17
#             CONTENDERS="migrate copy_run subscription pgcopydb" KEEP=0
set -euo pipefail
. "$(dirname "$0")/../lib/bench.sh"  # cd to ROOT; PGBATON from $1; the clusters
SCALE=${SCALE:-30}
RATE=${RATE:-500}
CLIENTS=${CLIENTS:-4}
JOBS=${JOBS:-2}
ROUNDS=${ROUNDS:-3}
LAG_S=${LAG_S:-1}
SOURCE_MAJOR=${SOURCE_MAJOR:-15}
TARGET_MAJOR=${TARGET_MAJOR:-17}
CONTENDERS=${CONTENDERS:-"migrate copy_run subscription pgcopydb"}

require_tools pg_dump psql pgbench

bench_workdir migrate
LOAD_PID=""; SAMPLER_PID=""; BG_PID=""
trap 'for p in $LOAD_PID $SAMPLER_PID $BG_PID; do kill "$p" 2>/dev/null || true; done; stop_clusters' EXIT
CLUSTER_SETTINGS=("max_logical_replication_workers = $((JOBS + 4))"
  "max_sync_workers_per_subscription = $JOBS" "max_worker_processes = $((JOBS + 12))"
  "shared_buffers = 1GB" "maintenance_work_mem = 512MB")

SP=$(free_port); DP=$(free_port)
start_cluster src "$SOURCE_MAJOR" "$SP" "${CLUSTER_SETTINGS[@]}"
start_cluster dst "$TARGET_MAJOR" "$DP" "${CLUSTER_SETTINGS[@]}"
SRC="host=127.0.0.1 port=$SP user=postgres dbname=bench"
src_uri="postgres://postgres@127.0.0.1:$SP/bench"
dst_ci() { echo "host=127.0.0.1 port=$DP user=postgres dbname=$1"; }
dst_uri() { echo "postgres://postgres@127.0.0.1:$DP/$1"; }
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }
src_q() { psql -X -At "$SRC" -c "$1"; }
dst_q() { psql -X -At "$(dst_ci postgres)" -c "$1"; }

echo "== source PostgreSQL $SOURCE_MAJOR, target $TARGET_MAJOR, pgbench scale $SCALE, load $RATE tps ($CLIENTS clients) during each contender, jobs $JOBS, caught up = lag < $LAG_S s"
psql -X -q "host=127.0.0.1 port=$SP user=postgres dbname=postgres" -c "CREATE DATABASE bench"
pgbench -i -q -s "$SCALE" "$SRC" 2>&1 | tail -1
# pgbench_history has no key: pgbaton (and pgcopydb) need a replica identity for its updates.
src_q "ALTER TABLE pgbench_history REPLICA IDENTITY FULL" >/dev/null
src_q "VACUUM ANALYZE" >/dev/null
echo "source size: $(src_q "SELECT pg_size_pretty(pg_database_size('bench'))")"
. "$ROOT/bench/lib/digest.sh"
DIGEST_SQL=$(digest_query "$SRC")

# --- measuring -------------------------------------------------------------------------------
# WAL held by the slots whose names match $1 (a LIKE pattern), in bytes (0 without a slot).
held() {
  src_q "SELECT coalesce(max(pg_current_wal_lsn() - restart_lsn), 0)::bigint FROM pg_replication_slots WHERE slot_name LIKE '$1'"
}
start_sampler() {  # slot-pattern file
  ( while :; do echo "$(held "$1" 2>/dev/null || echo 0)" >> "$2"; sleep 0.5; done ) &
  SAMPLER_PID=$!
}
stop_sampler() { kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=""; }
peak_of() { sort -n "$1" | tail -1; }
# The highest remote_lsn of the target's replication origins matching $1 (LIKE), or 0/0.
applied() {
  dst_q "SELECT coalesce(max(remote_lsn), '0/0') FROM pg_replication_origin_status WHERE external_id LIKE '$1'"
}
# Waits until caught up: a position marked on the source is applied (origins matching $1) within
# LAG_S seconds. Prints nothing; returns when it happens, fails after $3 (default 1800) seconds or
# when the process $2 (optional) is gone.
wait_caught_up() {
  local limit=${3:-1800}
  local deadline=$(( $(date +%s) + limit )) mark t0 a
  while [ "$(date +%s)" -lt $deadline ]; do
    if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then echo "   !! process $2 ended"; return 1; fi
    mark=$(src_q "SELECT pg_current_wal_lsn()"); t0=$(now)
    while :; do
      a=$(applied "$1")
      if [ "$(src_q "SELECT '$a'::pg_lsn >= '$mark'::pg_lsn")" = t ]; then break; fi
      python3 -c "import sys; sys.exit(0 if $(now) - $t0 < 30 else 1)" || break
      if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then break; fi
      sleep 0.1
    done
    if [ "$(src_q "SELECT '$a'::pg_lsn >= '$mark'::pg_lsn")" = t ] &&
       python3 -c "import sys; sys.exit(0 if $(now) - $t0 < $LAG_S else 1)"; then
      return 0
    fi
    sleep 0.5
  done
  echo "   !! not caught up after $limit s"; return 1
}
# Waits until every change made so far is applied (origins matching $1): the load is stopped.
# The mark is followed by a real transaction (a no-op update of one row): an origin moves only
# when a transaction is applied, and a native subscription is sent neither logical messages nor
# (from 15) empty transactions, so without it the origin could stop just short of the mark.
wait_applied_all() {
  local mark; mark=$(src_q "SELECT pg_current_wal_lsn()")
  src_q "UPDATE pgbench_branches SET bbalance = bbalance WHERE bid = 1" >/dev/null
  for _ in $(seq 1 1200); do
    [ "$(src_q "SELECT '$(applied "$1")'::pg_lsn >= '$mark'::pg_lsn")" = t ] && return 0
    sleep 0.25
  done
  echo "   !! $1 did not apply up to $mark"; return 1
}
start_load() {
  pgbench -n -R "$RATE" -c "$CLIENTS" -j 2 -T 100000 "$SRC" > "$WORK/load.out" 2>&1 &
  LOAD_PID=$!
}
stop_load() { kill -TERM "$LOAD_PID" 2>/dev/null || true; wait "$LOAD_PID" 2>/dev/null || true; LOAD_PID=""; }

declare -A TIMES=() HELD_END=() HELD_PEAK=() WRONG=() NOT_RUN=()
mb() { if [ "$1" = -1 ]; then echo n/a; else python3 -c "print(f'{$1/1e6:.1f}')"; fi; }
record() {  # name seconds held-at-copy-end peak (the peak counts the copy-end sample too)
  set -- "$1" "$2" "$3" "$(( $4 > $3 ? $4 : $3 ))"
  TIMES[$1]="${TIMES[$1]:-} $2"; HELD_END[$1]="${HELD_END[$1]:-} $3"; HELD_PEAK[$1]="${HELD_PEAK[$1]:-} $4"
  printf '   %-13s caught up in %6.2f s; WAL held by its slots: %s MB when its copy ended, %.1f MB at the peak\n' \
    "$1" "$2" "$(mb "$3")" "$(python3 -c "print($4/1e6)")"
}
verify() {  # name db
  bench_corrupt_if "$1" "$(dst_ci $2)"
  local expect rows
  expect=$(digest_of "$SRC" "$DIGEST_SQL"); rows=$(digest_of "$(dst_ci $2)" "$DIGEST_SQL")
  if [ "$rows" != "$expect" ]; then
    WRONG[$1]=1
    echo "   !! $1 left a different target; tables that differ:"
    diff <(echo "$expect") <(echo "$rows") | sed -n 's/^< /      source: /p; s/^> /      target: /p' | head -10 || true
  else
    echo "   $1: target identical to the source ($(echo "$rows" | wc -l) tables)"
  fi
}
fresh() {  # db: drop the previous contender's target, checkpoint both clusters
  dst_q "DROP DATABASE IF EXISTS $1" >/dev/null; dst_q "CREATE DATABASE $1" >/dev/null
  src_q "CHECKPOINT" >/dev/null; dst_q "CHECKPOINT" >/dev/null
}
# Held WAL at the moment a line matching $2 appears in file $1 (the copy's end), sampled then.
held_when() {  # file pattern slot-pattern out-var-file
  ( while ! grep -q "$2" "$1" 2>/dev/null; do sleep 0.1; done; held "$3" > "$4" ) &
  BG_PID=$!
}

# --- contenders ------------------------------------------------------------------------------
run_migrate() {
  fresh b_migrate
  local q=$WORK/q-migrate t0 t1 log=$WORK/migrate.out
  rm -rf "$q" "$log" "$WORK/held" "$WORK/held_end"; : > "$WORK/held"
  start_load; start_sampler bench_m "$WORK/held"
  held_when "$log" '"summary":"done"' bench_m "$WORK/held_end"
  t0=$(now)
  "$PGBATON" --name bench_m migrate --source "$SRC" --target "$(dst_ci b_migrate)" --queue-dir "$q" \
    --jobs "$JOBS" --until caught-up --caught-up-lag-ms $((LAG_S * 1000)) --progress json > "$log" 2>&1 \
    || { tail -20 "$log"; exit 1; }
  t1=$(now)
  stop_sampler; sleep 0.3; kill "$BG_PID" 2>/dev/null || true
  record migrate "$(secs $t0 $t1)" "$(cat "$WORK/held_end" 2>/dev/null || echo 0)" "$(peak_of "$WORK/held")"
  stop_load
  "$PGBATON" --name bench_m run --source "$SRC" --target "$(dst_ci b_migrate)" --queue-dir "$q" \
    --stop-at "$(src_q "SELECT pg_current_wal_lsn()")" > "$WORK/migrate-end.out" 2>&1 &
  src_q "SELECT pg_logical_emit_message(true, 'bench', 'end')" >/dev/null
  wait $! || { tail -20 "$WORK/migrate-end.out"; exit 1; }
  verify migrate b_migrate
  "$PGBATON" --name bench_m cleanup --source "$SRC" --target "$(dst_ci b_migrate)" --queue-dir "$q" > /dev/null 2>&1 || true
}

run_copy_run() {
  fresh b_copyrun
  local q=$WORK/q-copyrun t0 t1 log=$WORK/copyrun.out pid
  rm -rf "$q"; : > "$WORK/held"
  start_load; start_sampler bench_c "$WORK/held"
  t0=$(now)
  "$PGBATON" --name bench_c copy --source "$SRC" --target "$(dst_ci b_copyrun)" --queue-dir "$q" \
    --jobs "$JOBS" --progress json > "$log" 2>&1 || { tail -20 "$log"; exit 1; }
  local end; end=$(held bench_c)
  "$PGBATON" --name bench_c run --source "$SRC" --target "$(dst_ci b_copyrun)" --queue-dir "$q" \
    > "$WORK/run.out" 2>&1 &
  pid=$!
  wait_caught_up bench_c $pid || { tail -20 "$WORK/run.out"; exit 1; }
  t1=$(now)
  stop_sampler
  record copy_run "$(secs $t0 $t1)" "$end" "$(peak_of "$WORK/held")"
  stop_load
  wait_applied_all bench_c
  kill -TERM $pid; wait $pid || true
  verify copy_run b_copyrun
  "$PGBATON" --name bench_c cleanup --source "$SRC" --target "$(dst_ci b_copyrun)" --queue-dir "$q" > /dev/null 2>&1 || true
}

run_subscription() {
  fresh b_sub
  local t0 t1 pending end subid
  : > "$WORK/held"
  start_load; start_sampler 'bench_sub%' "$WORK/held"
  # The tablesync slots are named pg_<subid>_sync_...: sampled with the subscription's own below.
  t0=$(now)
  pg_dump --schema-only "$SRC" | psql -X -q "$(dst_ci b_sub)" >/dev/null
  src_q "CREATE PUBLICATION bench_sub FOR ALL TABLES" >/dev/null
  psql -X -q "$(dst_ci b_sub)" -c "CREATE SUBSCRIPTION bench_sub CONNECTION '$SRC' PUBLICATION bench_sub WITH (copy_data = true)"
  subid=$(psql -X -At "$(dst_ci b_sub)" -c "SELECT oid FROM pg_subscription WHERE subname = 'bench_sub'")
  stop_sampler; start_sampler "bench_sub" "$WORK/held"
  local peak_sync=0 h
  while :; do
    pending=$(psql -X -At "$(dst_ci b_sub)" -c "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'")
    h=$(held "pg_${subid}_sync%"); [ "$h" -gt "$peak_sync" ] && peak_sync=$h
    [ "$pending" = 0 ] && break
    sleep 0.2
  done
  end=$(held 'bench_sub')
  wait_caught_up "pg_${subid}" || exit 1
  t1=$(now)
  stop_sampler
  local peak; peak=$(peak_of "$WORK/held"); [ "$peak_sync" -gt "$peak" ] && peak=$peak_sync
  record subscription "$(secs $t0 $t1)" "$end" "$peak"
  stop_load
  wait_applied_all "pg_${subid}"
  verify subscription b_sub
  psql -X -q "$(dst_ci b_sub)" -c "DROP SUBSCRIPTION bench_sub"
  src_q "DROP PUBLICATION bench_sub" >/dev/null
}

run_pgcopydb() {
  command -v pgcopydb >/dev/null || { echo "   pgcopydb: not installed, skipped"; return 0; }
  [ -z "${NOT_RUN[pgcopydb]:-}" ] || { echo "   pgcopydb: did not run in an earlier round, skipped"; return 0; }
  fresh b_pgcopydb
  local d=$WORK/pgcopydb t0 t1 log=$WORK/pgcopydb.out pid end
  rm -rf "$d"; : > "$WORK/held"
  start_load; start_sampler 'pgcopydb%' "$WORK/held"
  t0=$(now)
  pgcopydb clone --follow --source "$src_uri" --target "$(dst_uri b_pgcopydb)" \
    --dir "$d" --table-jobs "$JOBS" --index-jobs "$JOBS" > "$log" 2>&1 &
  pid=$!
  # pgcopydb's origin on the target is "pgcopydb". It sets that origin to its slot's position
  # before it copies, so the mark would pass at once: caught up counts only once its log says it
  # applies changes (after the copy). When its copy ends is not sampled: "n/a" at copy end, the
  # peak is sampled all along.
  local waited=0
  until grep -q "enabled applying changes\|Catching up from LSN" "$log" 2>/dev/null; do
    if ! kill -0 $pid 2>/dev/null || [ $waited -ge 18000 ]; then break; fi
    sleep 0.1; waited=$((waited + 1))
  done
  # Seen here (pgcopydb 0.10, scale 30): its apply replays the same file over and over and its
  # replay_lsn never moves. PGCOPYDB_LIMIT_S bounds the wait; it is then reported as not run.
  if ! wait_caught_up pgcopydb $pid "${PGCOPYDB_LIMIT_S:-300}"; then
    echo "   pgcopydb clone --follow did not catch up; its log:"; tail -8 "$log"
    kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true
    stop_sampler; stop_load; NOT_RUN[pgcopydb]=1; pgcopydb_leftovers; return 0
  fi
  t1=$(now)
  stop_sampler
  end=-1
  record pgcopydb "$(secs $t0 $t1)" "$end" "$(peak_of "$WORK/held")"
  stop_load
  pgcopydb stream sentinel set endpos --current --source "$src_uri" --dir "$d" > /dev/null 2>&1 || true
  # Seen here: its apply stays at replay_lsn 0/0 and never reaches the end position. Its time is
  # then not a result (it never applied what it was timed on): reported as not run, with its log.
  local left=300
  while kill -0 $pid 2>/dev/null && [ $left -gt 0 ]; do sleep 1; left=$((left - 1)); done
  if kill -0 $pid 2>/dev/null; then
    echo "   pgcopydb did not reach its end position within 300 s; its log:"; tail -8 "$log"
    kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true
    unset 'TIMES[pgcopydb]' 'HELD_END[pgcopydb]' 'HELD_PEAK[pgcopydb]'; NOT_RUN[pgcopydb]=1
    pgcopydb_leftovers
    return 0
  fi
  wait $pid || true
  verify pgcopydb b_pgcopydb
  pgcopydb_leftovers
}
# What pgcopydb leaves on the source: its slot, and its schema with a sentinel table that has no
# key (the next contender's preflight would refuse it).
pgcopydb_leftovers() {
  src_q "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'pgcopydb%'" >/dev/null 2>&1 || true
  src_q "DROP SCHEMA IF EXISTS pgcopydb CASCADE" >/dev/null 2>&1 || true
  dst_q "SELECT pg_replication_origin_drop('pgcopydb')" >/dev/null 2>&1 || true
}

read -r -a ORDER <<<"$CONTENDERS"
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r of $ROUNDS: ${ORDER[*]}"
  for c in "${ORDER[@]}"; do "run_$c"; done
  ORDER=("${ORDER[@]:1}" "${ORDER[0]}")  # rotate: the last contender pays for the others' buffers
done

echo
echo "== medians of $ROUNDS rounds (load $RATE tps, scale $SCALE, jobs $JOBS)"
printf '  %-13s %16s %18s %18s\n' contender "to caught up" "WAL at copy end" "WAL at peak"
for k in $CONTENDERS; do
  if [ -n "${NOT_RUN[$k]:-}" ]; then printf '  %-13s did not run here (see its log above)\n' "$k"; continue; fi
  [ -n "${TIMES[$k]:-}" ] || continue
  if [ -n "${WRONG[$k]:-}" ]; then printf '  %-13s WRONG or failed (excluded)\n' "$k"; continue; fi
  printf '  %-13s %14.2f s %15s MB %15.1f MB\n' "$k" "$(median "${TIMES[$k]}")" \
    "$(mb "$(median "${HELD_END[$k]}")")" "$(python3 -c "print($(median "${HELD_PEAK[$k]}")/1e6)")"
done
if [ -n "${TIMES[migrate]:-}" ] && [ -n "${TIMES[subscription]:-}" ] && [ -z "${WRONG[migrate]:-}${WRONG[subscription]:-}" ]; then
  echo "  migrate / native subscription, time to caught up: $(python3 -c "print(f'{$(median "${TIMES[migrate]}") / $(median "${TIMES[subscription]}"):.2f}')") (goal: <= 0.75)"
fi
[ -n "${TIMES[migrate]:-}" ] && echo "  migrate's peak WAL held: $(python3 -c "print(f'{$(median "${HELD_PEAK[migrate]}")/1e6:.1f}')") MB (goal: <= 64 MB)"
if [ ${#WRONG[@]} -gt 0 ]; then echo "FAILED: ${!WRONG[*]}"; exit 1; fi

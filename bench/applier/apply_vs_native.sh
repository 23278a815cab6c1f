#!/usr/bin/env bash
# Catch-up replay, pgbaton vs native logical replication, on the same backlog in one run.
#
# A pgbench backlog (TXNS transactions, 4 clients) is generated on the source while nothing
# applies; every contender has its own slot created before the backlog, and its own fresh,
# identical target (pgbench data restored with pg_dump before the backlog):
#   native:         CREATE SUBSCRIPTION ... (copy_data = false, create_slot = false), then ENABLE
#   pgbaton apply N: the backlog in pgbaton's queue, as in production where the decoder keeps
#                   up with the source while the applier lags: `pgbaton stream` fills the queue
#                   first (its time is printed too), then the clock runs for
#                   `pgbaton apply --apply-jobs N --stop-at <end>`, N in JOBS
#   pgbaton run:    the backlog still in the slot, like native's: `pgbaton run --apply-jobs
#                   <last of JOBS> --stop-at <end>` (decoder + queue + applier in one process)
# The clock runs from the start (ENABLE / launching pgbaton) until the backlog's last
# transaction (a marker row) is visible on the target. Prints each catch-up time, the ratio
# native / pgbaton, pgbaton's peak RSS, and checks every target against the source, every table row
# for row (bench/lib/digest.sh): a target that differs gets no ratio and the script exits 1.
# RUN_ALSO="BIN..." runs `run` again with each other pgbaton binary, on the same backlog (its own
# slot and target), for A/B comparisons of builds; SKIP_APPLY=1 leaves out the apply contenders.
# BENCH_CORRUPT=<native|pgb1|pgb2|pgbrun> changes one row of that target before the check (to
# see that a wrong target is caught).
#
# Usage: bench/applier/apply_vs_native.sh [PGBATON_BIN]
#        env: TXNS=100000 SCALE=10 CLIENTS=4 JOBS="1 2" SOURCE_MAJOR=15 TARGET_MAJOR=17 KEEP=0
#             PGBATON_ARGS="..." (extra flags for pgbaton apply / run) RUN_ALSO="BIN..." SKIP_APPLY=0
set -euo pipefail
. "$(dirname "$0")/../lib/bench.sh"  # cd to ROOT; PGBATON from $1; the clusters
TXNS=${TXNS:-100000}
SCALE=${SCALE:-10}
CLIENTS=${CLIENTS:-4}
JOBS=${JOBS:-"1 2"}
RUN_JOBS=${JOBS##* }
APPLY_JOBS=$JOBS
[ "${SKIP_APPLY:-0}" = 1 ] && APPLY_JOBS=""
read -r -a RUN_ALSO_BINS <<< "${RUN_ALSO:-}"
SOURCE_MAJOR=${SOURCE_MAJOR:-15}
TARGET_MAJOR=${TARGET_MAJOR:-17}

require_tools pg_dump psql pgbench

bench_workdir applier
CLUSTER_SETTINGS=("max_logical_replication_workers = 8" "max_worker_processes = 16"
  "shared_buffers = 512MB")
conn() { echo "host=127.0.0.1 port=$1 user=postgres dbname=bench"; }
q() { psql -X -At -v ON_ERROR_STOP=1 "$(conn "$1")" -c "$2"; }
now() { date +%s.%N; }

SRC_PORT=$(free_port); start_cluster src "$SOURCE_MAJOR" "$SRC_PORT" "${CLUSTER_SETTINGS[@]}"
psql -X -q "host=127.0.0.1 port=$SRC_PORT user=postgres dbname=postgres" -c "create database bench"
pgbench -q -i -s "$SCALE" "$(conn $SRC_PORT)" >/dev/null 2>&1
q $SRC_PORT "create table bench_marker (id int primary key)" >/dev/null
q $SRC_PORT "create publication native_pub for all tables" >/dev/null
q $SRC_PORT "select pg_create_logical_replication_slot('native_sub', 'pgoutput')" >/dev/null
CONTENDERS="$(for j in $APPLY_JOBS; do echo pgb$j; done) pgbrun $(for i in "${!RUN_ALSO_BINS[@]}"; do echo pgbrun$((i + 1)); done)"
for t in $CONTENDERS; do
  q $SRC_PORT "create publication $t for all tables" >/dev/null
  q $SRC_PORT "select pg_create_logical_replication_slot('$t', 'pgoutput')" >/dev/null
done
pg_dump -Fc -f "$WORK/bench.dump" "$(conn $SRC_PORT)"

declare -A TPORT
for t in native $CONTENDERS; do
  TPORT[$t]=$(free_port); start_cluster "t_$t" "$TARGET_MAJOR" "${TPORT[$t]}" "${CLUSTER_SETTINGS[@]}"
  psql -X -q "host=127.0.0.1 port=${TPORT[$t]} user=postgres dbname=postgres" -c "create database bench"
  # Data and schema but no publications (they belong to the source).
  pg_restore -d "$(conn ${TPORT[$t]})" --no-publications "$WORK/bench.dump" 2>/dev/null || true
done
q ${TPORT[native]} "create subscription native_sub connection '$(conn $SRC_PORT)' publication native_pub with (copy_data = false, create_slot = false, slot_name = 'native_sub', enabled = false)" >/dev/null

echo "generating the backlog: $TXNS pgbench transactions (scale $SCALE, $CLIENTS clients) while nothing applies"
t0=$(now)
pgbench -n -c "$CLIENTS" -j 2 -t $((TXNS / CLIENTS)) "$(conn $SRC_PORT)" >/dev/null
q $SRC_PORT "insert into bench_marker values (1)" >/dev/null
END=$(q $SRC_PORT "select pg_current_wal_lsn()")
BACKLOG=$(q $SRC_PORT "select pg_size_pretty(pg_wal_lsn_diff('$END', confirmed_flush_lsn)) from pg_replication_slots where slot_name = 'native_sub'")
printf "backlog ready in %.1f s: %s of WAL up to %s\n" "$(echo "$(now) - $t0" | bc)" "$BACKLOG" "$END"

poll_until() {  # port sql -> returns once sql yields "t" or "1" (at POLL_END)
  # One connection polls every 50 ms: a new psql (and backend) per poll would take about a
  # quarter of a core from whichever contender is running.
  local port=$1 sql=$2 n=""
  coproc POLL { psql -X -At -q "$(conn "$port")" 2>/dev/null; }
  while :; do
    echo "$sql;" >&"${POLL[1]}"
    read -r n <&"${POLL[0]}" || { echo "lost the connection polling port $port" >&2; exit 1; }
    if [ "$n" = 1 ] || [ "$n" = t ]; then break; fi
    sleep 0.05
  done
  POLL_END=$(now)
  echo '\q' >&"${POLL[1]}"
  wait "$POLL_PID" 2>/dev/null || true
}
wait_marker() {  # start port -> seconds until the marker row is visible
  local start=$1 port=$2
  poll_until "$port" "select count(*) from bench_marker"
  echo "$POLL_END - $start" | bc
}

cpu_of() {  # pids... -> CPU seconds they have used so far (fails when none is running)
  local hz total=0 seen=0 pid t
  hz=$(getconf CLK_TCK)
  for pid in "$@"; do
    t=$(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat" 2>/dev/null) || continue
    [ -n "$t" ] || continue
    total=$((total + t)); seen=1
  done
  [ "$seen" = 1 ] || { echo n/a; return 1; }
  echo "scale=2; $total / $hz" | bc
}
walsender_cpu() {  # slot -> CPU seconds of its walsender
  cpu_of $(q $SRC_PORT "select active_pid from pg_replication_slots where slot_name = '$1' and active_pid is not null") || true
}
follow_walsender_cpu() {  # slot file: keeps the CPU of the slot's walsender in file while it lives
  local pid="" i
  for i in $(seq 1 500); do
    pid=$(q $SRC_PORT "select active_pid from pg_replication_slots where slot_name = '$1' and active_pid is not null")
    [ -n "$pid" ] && break
    sleep 0.02
  done
  while [ -n "$pid" ] && [ -r "/proc/$pid/stat" ]; do
    cpu_of "$pid" > "$2.new" && mv "$2.new" "$2" || true
    sleep 0.1
  done
}
apply_worker_cpu() {  # port -> CPU seconds of the subscription's apply worker
  cpu_of $(q "$1" "select pid from pg_stat_subscription where relid is null and pid is not null") || true
}

# native
start=$(now)
q ${TPORT[native]} "alter subscription native_sub enable" >/dev/null
NATIVE=$(wait_marker "$start" ${TPORT[native]})
CPU_NATIVE="walsender $(walsender_cpu native_sub) s, apply worker $(apply_worker_cpu ${TPORT[native]}) s"
printf "native logical replication: %.2f s\n" "$NATIVE"

declare -A PGB RSS STREAM
peak_mb() { echo $(( $(grep -o 'peak_rss_kb=[0-9]*' "$1" | tail -1 | cut -d= -f2) / 1024 )); }
for j in $APPLY_JOBS; do
  log=$WORK/pgbaton-$j.log
  # The decoder fills the queue (in production it runs all along, while the backlog forms).
  start=$(now)
  "$PGBATON" --name "pgb$j" stream --source "$(conn $SRC_PORT)" --queue-dir "$WORK/queue-$j" \
    >"$log.stream" 2>&1 &
  spid=$!
  poll_until $SRC_PORT "select confirmed_flush_lsn >= '$END' from pg_replication_slots where slot_name = 'pgb$j'"
  STREAM[$j]=$(echo "$POLL_END - $start" | bc)
  kill -TERM $spid
  code=0; wait $spid || code=$?
  [ "$code" = 0 ] || { echo "pgbaton stream exited with $code after SIGTERM:"; tail -5 "$log.stream"; exit 1; }
  start=$(now)
  "$PGBATON" --name "pgb$j" apply --target "$(conn ${TPORT[pgb$j]})" --queue-dir "$WORK/queue-$j" \
    --apply-jobs "$j" --stop-at "$END" ${PGBATON_ARGS:-} >"$log" 2>&1 &
  pid=$!
  PGB[$j]=$(wait_marker "$start" ${TPORT[pgb$j]})
  wait $pid || { echo "pgbaton apply failed:"; tail -5 "$log"; exit 1; }
  RSS[$j]=$(peak_mb "$log")
  printf "pgbaton apply --apply-jobs %s: %.2f s (peak RSS %d MB; the queue was filled by stream in %.2f s)\n" \
    "$j" "${PGB[$j]}" "${RSS[$j]}" "${STREAM[$j]}"
done
log=$WORK/pgbaton-run.log
start=$(now)
${PGBATON_WRAP:-} "$PGBATON" --name pgbrun run --source "$(conn $SRC_PORT)" --target "$(conn ${TPORT[pgbrun]})" \
  --queue-dir "$WORK/queue-run" --apply-jobs "$RUN_JOBS" --stop-at "$END" ${PGBATON_ARGS:-} >"$log" 2>&1 &
pid=$!
follow_walsender_cpu pgbrun "$WORK/walsender-run.cpu" &
RUN=$(wait_marker "$start" ${TPORT[pgbrun]})
wait $pid || { echo "pgbaton run failed:"; tail -5 "$log"; exit 1; }
wait
CPU_RUN="walsender $(cat "$WORK/walsender-run.cpu" 2>/dev/null || echo n/a) s, pgbaton $(grep -o 'cpu_s=[0-9.]*' "$log" | tail -1 | cut -d= -f2) s (until it stopped)"
RUN_RSS=$(peak_mb "$log")
printf "pgbaton run --apply-jobs %s: %.2f s (peak RSS %d MB)\n" "$RUN_JOBS" "$RUN" "$RUN_RSS"
declare -A ALSO ALSO_CPU
for i in "${!RUN_ALSO_BINS[@]}"; do
  t=pgbrun$((i + 1)); bin=${RUN_ALSO_BINS[$i]}; log=$WORK/pgbaton-$t.log
  start=$(now)
  "$bin" --name "$t" run --source "$(conn $SRC_PORT)" --target "$(conn ${TPORT[$t]})" \
    --queue-dir "$WORK/queue-$t" --apply-jobs "$RUN_JOBS" --stop-at "$END" ${PGBATON_ARGS:-} >"$log" 2>&1 &
  pid=$!
  follow_walsender_cpu "$t" "$WORK/walsender-$t.cpu" &
  wpid=$!
  ALSO[$t]=$(wait_marker "$start" ${TPORT[$t]})
  wait $pid || { echo "pgbaton run ($bin) failed:"; tail -5 "$log"; exit 1; }
  wait $wpid || true
  ALSO_CPU[$t]="walsender $(cat "$WORK/walsender-$t.cpu" 2>/dev/null || echo n/a) s, pgbaton $(grep -o 'cpu_s=[0-9.]*' "$log" | tail -1 | cut -d= -f2) s"
  printf "pgbaton run --apply-jobs %s (%s): %.2f s (peak RSS %d MB)\n" "$RUN_JOBS" "$bin" "${ALSO[$t]}" "$(peak_mb "$log")"
done

echo "checking every target against the source (every table, row for row)"
. "$ROOT/bench/lib/digest.sh"
DIGEST_SQL=$(digest_query "$(conn $SRC_PORT)")
want=$(digest_of "$(conn $SRC_PORT)" "$DIGEST_SQL")
case $want in error:*) echo "cannot digest the source: $want"; exit 1;; esac
declare -A WRONG=()
for t in native $CONTENDERS; do
  bench_corrupt_if "$t" "$(conn ${TPORT[$t]})"
  got=$(digest_of "$(conn ${TPORT[$t]})" "$DIGEST_SQL")
  if [ "$got" = "$want" ]; then
    echo "  $t: identical ($(echo "$want" | wc -l) tables)"
  else
    WRONG[$t]=1
    echo "  $t: DIFFERS from the source; tables that differ:"
    diff <(echo "$want") <(echo "$got") | sed -n 's/^< /    source: /p; s/^> /    target: /p' | head -20 || true
  fi
done
# A wrong target's time means nothing: its ratio is not printed, and the script fails.
ratio() {  # contender seconds
  if [ -n "${WRONG[$1]:-}${WRONG[native]:-}" ]; then echo "WRONG"; else printf '%.2fx' "$(echo "$NATIVE / $2" | bc -l)"; fi
}

echo
echo "== catch-up of $TXNS pgbench transactions, $SOURCE_MAJOR -> $TARGET_MAJOR =="
printf "%-40s %10s %10s\n" contender seconds "vs native"
printf "%-40s %10.2f %10s\n" "native subscription" "$NATIVE" "$([ -n "${WRONG[native]:-}" ] && echo WRONG || echo 1.00x)"
for j in $APPLY_JOBS; do
  printf "%-40s %10.2f %10s\n" "pgbaton apply --apply-jobs $j (from queue)" "${PGB[$j]}" "$(ratio pgb$j "${PGB[$j]}")"
done
printf "%-40s %10.2f %10s\n" "pgbaton run --apply-jobs $RUN_JOBS (from slot)" "$RUN" "$(ratio pgbrun "$RUN")"
# CPU used until the marker was visible. From the slot the source's walsender does the same
# work whoever replays; with the target's work it bounds the catch-up on a machine of few cores.
for i in "${!RUN_ALSO_BINS[@]}"; do
  t=pgbrun$((i + 1))
  printf "%-40s %10.2f %10s\n" "pgbaton run ($t: ${RUN_ALSO_BINS[$i]##*/})" "${ALSO[$t]}" "$(ratio $t "${ALSO[$t]}")"
done
echo "CPU until caught up: native: $CPU_NATIVE; pgbaton run: $CPU_RUN"
for i in "${!RUN_ALSO_BINS[@]}"; do
  t=pgbrun$((i + 1))
  echo "  pgbaton run ($t: ${RUN_ALSO_BINS[$i]}): ${ALSO_CPU[$t]}"
done
if [ ${#WRONG[@]} -gt 0 ]; then
  echo "FAILED: a target differs from the source: ${!WRONG[*]} (no ratio is valid against a wrong target)"
  exit 1
fi

#!/usr/bin/env bash
# Freshness in the steady state: how long a change takes from the source to the target while the
# source is busy, pgbaton `run` vs a native subscription, measured the same way for both on one
# clock (both clusters run on this machine):
#   - a heartbeat table on the source gets a row about every 100 ms (pgbench, 1 client, -R 10)
#     stamped with clock_timestamp() when it is written;
#   - on each target a BEFORE INSERT trigger enabled ALWAYS (it fires under the apply workers'
#     session_replication_role = replica too) stamps its arrival into hb_arrival;
#   - meanwhile pgbench writes at RATE tps with CLIENTS clients.
# Reported: p50, p99 and max of arrival - written over the heartbeats after WARMUP_S seconds, the
# source's tps, and (pgbaton) its own pgbaton_lag_seconds gauge scraped meanwhile (p50 / p99) and its
# RSS at the start and the end of the load. Both clusters are
# checkpointed before each contender, the order rotates, medians of ROUNDS rounds.
#
# Usage: bench/steady/steady_vs_native.sh [PGBATON_BIN]
#        env: SCALE=10 RATE=2000 CLIENTS=8 DURATION=30 WARMUP_S=5 ROUNDS=3 APPLY_JOBS=2
#             SOURCE_MAJOR=15 TARGET_MAJOR=17 CONTENDERS="run native" KEEP=0
set -euo pipefail
. "$(dirname "$0")/../lib/bench.sh"
SCALE=${SCALE:-10}
RATE=${RATE:-2000}
CLIENTS=${CLIENTS:-8}
DURATION=${DURATION:-30}
WARMUP_S=${WARMUP_S:-5}
ROUNDS=${ROUNDS:-3}
APPLY_JOBS=${APPLY_JOBS:-2}
SOURCE_MAJOR=${SOURCE_MAJOR:-15}
TARGET_MAJOR=${TARGET_MAJOR:-17}
CONTENDERS=${CONTENDERS:-"run native"}

require_tools pg_dump psql pgbench
bench_workdir steady
LOAD_PID=""; HB_PID=""; RUN_PID=""
trap 'for p in $LOAD_PID $HB_PID $RUN_PID; do kill "$p" 2>/dev/null || true; done; stop_clusters' EXIT
SP=$(free_port); DP=$(free_port)
start_cluster src "$SOURCE_MAJOR" "$SP" "shared_buffers = 512MB"
start_cluster dst "$TARGET_MAJOR" "$DP" "shared_buffers = 512MB"
SRC="host=127.0.0.1 port=$SP user=postgres dbname=bench"
dst_ci() { echo "host=127.0.0.1 port=$DP user=postgres dbname=$1"; }
src_q() { psql -X -At "$SRC" -c "$1"; }
dst_q() { psql -X -At "$(dst_ci "$1")" -c "$2"; }

echo "== source $SOURCE_MAJOR, target $TARGET_MAJOR, pgbench scale $SCALE at $RATE tps ($CLIENTS clients) for $DURATION s, heartbeat every ~100 ms"
psql -X -q "host=127.0.0.1 port=$SP user=postgres dbname=postgres" -c "CREATE DATABASE bench"
pgbench -i -q -s "$SCALE" "$SRC" 2>&1 | tail -1
src_q "ALTER TABLE pgbench_history REPLICA IDENTITY FULL" >/dev/null
src_q "CREATE TABLE hb (id bigserial PRIMARY KEY, written timestamptz NOT NULL)" >/dev/null
echo 'INSERT INTO hb (written) VALUES (clock_timestamp());' > "$WORK/hb.sql"

# A fresh, empty target database $1; both clusters checkpointed.
fresh_target() {
  psql -X -q "$(dst_ci postgres)" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null
  src_q "CHECKPOINT" >/dev/null; dst_q postgres "CHECKPOINT" >/dev/null
}
# The arrival trigger on target database $1 (its schema in place).
add_trigger() {
  psql -X -q "$(dst_ci "$1")" >/dev/null <<'SQL'
CREATE TABLE public.hb_arrival (id bigint, written timestamptz, arrived timestamptz);
CREATE FUNCTION public.hb_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.hb_arrival VALUES (NEW.id, NEW.written, clock_timestamp()); RETURN NEW; END $$;
CREATE TRIGGER hb_stamp BEFORE INSERT ON public.hb FOR EACH ROW EXECUTE FUNCTION public.hb_stamp();
ALTER TABLE public.hb ENABLE ALWAYS TRIGGER hb_stamp;
SQL
}
# Runs the load and the heartbeat for DURATION s; prints the source's tps.
load() {
  local first; first=$(src_q "SELECT coalesce(max(id), 0) FROM hb")
  echo "$first" > "$WORK/hb_first"
  pgbench -n -c 1 -R 10 -T "$DURATION" -f "$WORK/hb.sql" "$SRC" > "$WORK/hb.out" 2>&1 &
  HB_PID=$!
  pgbench -n -c "$CLIENTS" -j 2 -R "$RATE" -T "$DURATION" "$SRC" > "$WORK/load.out" 2>&1 || true
  wait "$HB_PID" || true; HB_PID=""
  grep -oE "tps = [0-9.]+" "$WORK/load.out" | head -1 | awk '{print $3}'
}
# Waits until the last heartbeat arrived on target db $1; prints "p50 p99 max" in ms.
latency() {
  local last first; last=$(src_q "SELECT max(id) FROM hb"); first=$(cat "$WORK/hb_first")
  for _ in $(seq 1 600); do
    [ "$(dst_q "$1" "SELECT count(*) FROM hb_arrival WHERE id = $last")" = 1 ] && break
    sleep 0.2
  done
  dst_q "$1" "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) || ' ' ||
                     round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1) || ' ' ||
                     round(max(ms)::numeric, 1)
              FROM (SELECT extract(epoch FROM arrived - written) * 1000 AS ms FROM hb_arrival
                    WHERE id > $first AND written > (SELECT min(written) FROM hb_arrival WHERE id > $first) + interval '$WARMUP_S s') t"
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

declare -A P50=() P99=() MAX=() TPS=()
record() {  # name tps "p50 p99 max" [extra]
  read -r a b c <<<"$3"
  P50[$1]="${P50[$1]:-} $a"; P99[$1]="${P99[$1]:-} $b"; MAX[$1]="${MAX[$1]:-} $c"; TPS[$1]="${TPS[$1]:-} $2"
  printf '   %-7s source %7s tps; change to target: p50 %7s ms, p99 %7s ms, max %7s ms %s\n' "$1" "$2" "$a" "$b" "$c" "${4:-}"
}

run_run() {
  fresh_target b_run
  local q=$WORK/q tps r0 r1
  rm -rf "$q"
  "$PGBATON" --name bench_s copy --source "$SRC" --target "$(dst_ci b_run)" --queue-dir "$q" --jobs 2 \
    > "$WORK/copy.out" 2>&1 || { tail -5 "$WORK/copy.out"; exit 1; }
  add_trigger b_run
  local mp; mp=$(free_port)
  "$PGBATON" --name bench_s run --source "$SRC" --target "$(dst_ci b_run)" --queue-dir "$q" \
    --apply-jobs "$APPLY_JOBS" --metrics-addr "127.0.0.1:$mp" > "$WORK/run.out" 2>&1 &
  RUN_PID=$!
  sleep 2
  r0=$(rss_kb $RUN_PID)
  # pgbaton's own pgbaton_lag_seconds, scraped every 0.5 s after the warm-up, beside the heartbeat.
  : > "$WORK/lag_metric"
  ( sleep "$WARMUP_S"; while :; do
      curl -s "http://127.0.0.1:$mp/metrics" | awk '/^pgbaton_lag_seconds / {print $2 * 1000}' >> "$WORK/lag_metric"
      sleep 0.5; done ) &
  local scraper=$!
  tps=$(load)
  kill $scraper 2>/dev/null || true; wait $scraper 2>/dev/null || true
  r1=$(rss_kb $RUN_PID)
  local metric; metric=$(sort -n "$WORK/lag_metric" | awk '{a[NR]=$1} END {if (NR) {k = int(NR * 0.99 + 0.5); if (k < 1) k = 1; printf "%.1f / %.1f", a[int((NR + 1) / 2)], a[k]}}')
  record run "$tps" "$(latency b_run)" "(pgbaton_lag_seconds p50 / p99 ${metric:-n/a} ms; RSS $((r0 / 1024)) -> $((r1 / 1024)) MB)"
  kill -TERM $RUN_PID; wait $RUN_PID || true; RUN_PID=""
  "$PGBATON" --name bench_s cleanup --source "$SRC" --target "$(dst_ci b_run)" --queue-dir "$q" > /dev/null 2>&1 || true
}

run_native() {
  fresh_target b_native
  local tps
  pg_dump --schema-only "$SRC" | psql -X -q "$(dst_ci b_native)" >/dev/null
  add_trigger b_native
  src_q "CREATE PUBLICATION bench_native FOR ALL TABLES" >/dev/null
  dst_q b_native "CREATE SUBSCRIPTION bench_native CONNECTION '$SRC' PUBLICATION bench_native" >/dev/null 2>&1
  until [ "$(dst_q b_native "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'")" = 0 ]; do sleep 0.2; done
  tps=$(load)
  record native "$tps" "$(latency b_native)"
  dst_q b_native "DROP SUBSCRIPTION bench_native" >/dev/null
  src_q "DROP PUBLICATION bench_native" >/dev/null
}

median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
read -r -a ORDER <<<"$CONTENDERS"
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r of $ROUNDS: ${ORDER[*]}"
  for c in "${ORDER[@]}"; do "run_$c"; done
  ORDER=("${ORDER[@]:1}" "${ORDER[0]}")
done
echo
echo "== medians of $ROUNDS rounds (source $RATE tps asked, $CLIENTS clients, heartbeat ~10/s, after $WARMUP_S s)"
printf '  %-7s %10s %10s %10s %10s\n' contender tps "p50 ms" "p99 ms" "max ms"
for k in "${ORDER[@]}"; do
  [ -n "${P50[$k]:-}" ] || continue
  printf '  %-7s %10s %10s %10s %10s\n' "$k" "$(median "${TPS[$k]}")" "$(median "${P50[$k]}")" "$(median "${P99[$k]}")" "$(median "${MAX[$k]}")"
done

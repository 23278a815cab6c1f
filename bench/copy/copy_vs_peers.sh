#!/usr/bin/env bash
# Initial copy, pgbaton vs its peers, on the same database in one run:
#   pgbaton copy --jobs N (the default: binary where every column type allows it; and --text)
#   pg_dump -j N -Fd | pg_restore -j N
#   a native subscription (copy_data = true, N table-sync workers, indexes created beforehand)
#   pgcopydb clone --table-jobs N --index-jobs N
# and, as the limit, the target loading the same rows from local files (COPY FROM a file, N at
# once; data only, no index build). Each prints the wall time until the target is ready (data +
# indexes); ratios are against pgbaton. Every target is compared with the source, every table row
# for row (bench/lib/digest.sh) plus the number of indexes: a contender that leaves a different
# target is marked WRONG, is never the "best peer", and the script exits 1 (in any round).
# BENCH_CORRUPT=<pgbaton|pgbaton_text|pg_dump_restore|subscription|pgcopydb|limit_data_only>
# changes one row of that contender's target before the check (to see that it is caught).
#
# Usage: bench/copy/copy_vs_peers.sh [PGBATON_BIN]   (env: JOBS=2 SCALE=30 WIDE_ROWS=300000
#        SOURCE_MAJOR=15 TARGET_MAJOR=17 REPEAT=1 KEEP=0)
# The database: pgbench at SCALE (with foreign keys) plus a wide table of many types.
# Servers: throwaway clusters on free loopback ports, same settings for every contender.
set -euo pipefail
. "$(dirname "$0")/../lib/bench.sh"  # cd to ROOT; PGBATON from $1; the clusters
JOBS=${JOBS:-2}
SCALE=${SCALE:-30}
WIDE_ROWS=${WIDE_ROWS:-300000}
SOURCE_MAJOR=${SOURCE_MAJOR:-15}
TARGET_MAJOR=${TARGET_MAJOR:-17}
REPEAT=${REPEAT:-1}

require_tools pg_dump pg_restore psql pgbench pgcopydb

bench_workdir copy
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

echo "== source PostgreSQL $SOURCE_MAJOR, target PostgreSQL $TARGET_MAJOR, jobs $JOBS, pgbench scale $SCALE + wide table ($WIDE_ROWS rows)"
psql -X -q "host=127.0.0.1 port=$SP user=postgres dbname=postgres" -c "CREATE DATABASE bench"
pgbench -i -q -s "$SCALE" --foreign-keys "host=127.0.0.1 port=$SP user=postgres dbname=bench" 2>&1 | tail -1
psql -X -q "$SRC" <<SQL
-- pgbench_history has no key; pgbaton refuses tables whose updates could not be replicated.
ALTER TABLE pgbench_history REPLICA IDENTITY FULL;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE wide (id bigint PRIMARY KEY, i int, n numeric(18,4), f double precision, b bool,
  t text, d date, ts timestamptz, iv interval, u uuid, jb jsonb, arr int[], ip inet, m mood,
  r int4range, by bytea);
INSERT INTO wide SELECT g, g % 1000, g / 3.0, g / 7.0, g % 2 = 0, 'text value ' || g,
  date '2000-01-01' + g % 9000, timestamptz '2020-01-01' + g * interval '1 second',
  g * interval '1 minute', md5(g::text)::uuid, jsonb_build_object('id', g, 'tags', ARRAY['a', 'b']),
  ARRAY[g, g + 1, g + 2], ('10.1.' || (g % 256) || '.' || (g % 200))::inet,
  (ARRAY['sad', 'ok', 'happy'])[1 + g % 3]::mood, int4range(g, g + 5), decode(md5(g::text), 'hex')
FROM generate_series(1, $WIDE_ROWS) g;
CREATE INDEX wide_t ON wide (t);
CREATE INDEX wide_ts ON wide (ts);
VACUUM ANALYZE;
SQL
psql -X -At "$SRC" -c "SELECT 'source size: ' || pg_size_pretty(pg_database_size('bench'))"

# Every contender starts from an empty target database and ends when data and indexes are in.
declare -A TIMES
record() { TIMES[$1]="${TIMES[$1]:-} $2"; echo "   $1: $2 s"; }
fresh_db() {
  psql -X -q "$(dst_ci postgres)" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
}
. "$ROOT/bench/lib/digest.sh"
# Every table of the source, row for row (bench/lib/digest.sh), and the number of indexes.
DIGEST_SQL=$(digest_query "$SRC")
EXPECT_ROWS=$(digest_of "$SRC" "$DIGEST_SQL")
case $EXPECT_ROWS in error:*) echo "cannot digest the source: $EXPECT_ROWS"; exit 1;; esac
indexes() { psql -X -At "$(dst_ci $1)" -c "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'"; }
EXPECT_INDEXES=$(psql -X -At "$SRC" -c "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'")
declare -A WRONG=()
verify() {  # name db [data-only]: a contender that leaves a different target is WRONG
  bench_corrupt_if "$1" "$(dst_ci $2)"
  local rows idx; rows=$(digest_of "$(dst_ci $2)" "$DIGEST_SQL"); idx=$(indexes "$2")
  if [ "$rows" != "$EXPECT_ROWS" ]; then
    WRONG[$1]=1
    echo "   !! $1 left a different target; tables that differ:"
    diff <(echo "$EXPECT_ROWS") <(echo "$rows") | sed -n 's/^< /      source: /p; s/^> /      target: /p' | head -20 || true
  fi
  if [ -z "${3:-}" ] && [ "$idx" != "$EXPECT_INDEXES" ]; then
    WRONG[$1]=1
    echo "   !! $1 left $idx indexes in public (the source has $EXPECT_INDEXES)"
  fi
}
src_sql() { psql -X -q "$SRC" -c "$1" >/dev/null; }

run_pgbaton() {  # label [flags...]
  local label=$1; shift
  fresh_db b_pgbaton
  local q=$WORK/queue.$RANDOM t0 t1
  t0=$(now)
  "$PGBATON" --name bench_pgbaton copy --source "$SRC" --target "$(dst_ci b_pgbaton)" \
    --queue-dir "$q" --jobs "$JOBS" --progress json "$@" > "$WORK/pgbaton.out" 2>&1 \
    || { cat "$WORK/pgbaton.out"; exit 1; }
  t1=$(now)
  record "$label" "$(secs $t0 $t1)"
  echo "   $label phases: $(tail -1 "$WORK/pgbaton.out")"
  verify "$label" b_pgbaton
  src_sql "SELECT pg_drop_replication_slot('bench_pgbaton')"
  src_sql "DROP PUBLICATION bench_pgbaton"
  rm -rf "$q"
}

run_dump_restore() {
  fresh_db b_dump
  local d=$WORK/dump.$RANDOM t0 t1
  t0=$(now)
  pg_dump -j "$JOBS" -Fd -f "$d" "$SRC"
  pg_restore -j "$JOBS" -d "$(dst_ci b_dump)" "$d"
  t1=$(now)
  record pg_dump_restore "$(secs $t0 $t1)"
  verify pg_dump_restore b_dump
  rm -rf "$d"
}

run_subscription() {
  fresh_db b_sub
  local t0 t1 pending
  t0=$(now)
  # Fair to the subscription: its schema (with indexes) is restored first, as the docs advise,
  # and that time counts; table sync then runs JOBS workers (max_sync_workers_per_subscription).
  pg_dump --schema-only "$SRC" | psql -X -q "$(dst_ci b_sub)" >/dev/null
  src_sql "CREATE PUBLICATION bench_sub FOR ALL TABLES"
  psql -X -q "$(dst_ci b_sub)" -c "CREATE SUBSCRIPTION bench_sub CONNECTION '$SRC' PUBLICATION bench_sub WITH (copy_data = true)"
  while :; do
    pending=$(psql -X -At "$(dst_ci b_sub)" -c "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'")
    [ "$pending" = 0 ] && break
    sleep 0.2
  done
  t1=$(now)
  record subscription "$(secs $t0 $t1)"
  verify subscription b_sub
  psql -X -q "$(dst_ci b_sub)" -c "DROP SUBSCRIPTION bench_sub"
  src_sql "DROP PUBLICATION bench_sub"
}

run_pgcopydb() {
  fresh_db b_pgcopydb
  local d=$WORK/pgcopydb.$RANDOM t0 t1
  t0=$(now)
  pgcopydb clone --source "$src_uri" --target "$(dst_uri b_pgcopydb)" --dir "$d" \
    --table-jobs "$JOBS" --index-jobs "$JOBS" > "$WORK/pgcopydb.out" 2>&1 \
    || { tail -20 "$WORK/pgcopydb.out"; exit 1; }
  t1=$(now)
  record pgcopydb "$(secs $t0 $t1)"
  verify pgcopydb b_pgcopydb
  rm -rf "$d"
}

# The limit: the target reads the same rows from local files (N loads at once, the big table cut
# in N pieces), into tables without indexes. No network, no source, no index build.
prepare_limit() {
  local files=$WORK/files
  as_pg "mkdir -p $files"
  for t in pgbench_accounts pgbench_branches pgbench_tellers pgbench_history wide; do
    psql -X -q "$SRC" -c "COPY $t TO '$files/$t.copy'"
  done
  as_pg "cd $files && split -n l/$JOBS -d pgbench_accounts.copy pgbench_accounts.part. && rm pgbench_accounts.copy"
}
run_limit() {
  fresh_db b_limit
  pg_dump --schema-only --section=pre-data "$SRC" | psql -X -q "$(dst_ci b_limit)" >/dev/null
  local t0 t1
  t0=$(now)
  ls "$WORK/files" | sed -E 's/^(pgbench_accounts)\.part\..*/\1 &/; t; s/^([a-z_]+)\.copy$/\1 &/' |
    xargs -P "$JOBS" -L 1 bash -c "psql -X -q '$(dst_ci b_limit)' -c \"COPY \$0 FROM '$WORK/files/\$1'\""
  t1=$(now)
  record limit_data_only "$(secs $t0 $t1)"
  verify limit_data_only b_limit data-only
}

prepare_limit
for r in $(seq 1 "$REPEAT"); do
  echo "== round $r of $REPEAT"
  run_pgbaton pgbaton            # the default: binary where every column type allows it
  run_pgbaton pgbaton_text --text
  run_dump_restore
  run_subscription
  run_pgcopydb
  run_limit
done

echo
echo "== wall time until the target is ready (data + indexes), median of $REPEAT, jobs $JOBS"
P=$(median "${TIMES[pgbaton]}")
best=""
for k in pgbaton pgbaton_text pg_dump_restore subscription pgcopydb limit_data_only; do
  m=$(median "${TIMES[$k]}")
  ratio=$(python3 -c "print(f'{$m / $P:.2f}')")
  if [ -n "${WRONG[$k]:-}" ]; then
    printf '  %-18s %8.2f s   WRONG target (excluded)\n' "$k" "$m"
    continue
  fi
  printf '  %-18s %8.2f s   %sx pgbaton\n' "$k" "$m" "$ratio"
  if [ "${k#pgbaton}" = "$k" ] && [ "$k" != limit_data_only ]; then
    if [ -z "$best" ] || python3 -c "import sys; sys.exit(0 if $m < $best else 1)"; then best=$m; bestname=$k; fi
  fi
done
PT=$(median "${TIMES[pgbaton_text]}")
if [ -n "${WRONG[pgbaton]:-}${WRONG[pgbaton_text]:-}" ]; then
  echo "  no ratio: pgbaton's own target was wrong"
elif [ -z "$best" ]; then
  echo "  no ratio: every peer left a wrong target"
else
  echo "  best peer: $bestname, $(python3 -c "print(f'{$best / $P:.2f}')")x the time of pgbaton (goal: >= 1.30x), $(python3 -c "print(f'{$best / $PT:.2f}')")x the time of pgbaton --text"
fi
if [ ${#WRONG[@]} -gt 0 ]; then
  echo "FAILED: wrong target left by: ${!WRONG[*]}"
  exit 1
fi

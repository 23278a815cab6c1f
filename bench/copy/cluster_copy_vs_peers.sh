#!/usr/bin/env bash
# A whole cluster's initial copy, pgbaton vs its peers, on the same cluster in one run:
#   pgbaton copy --databases all --jobs N: the roles and the databases first (as `pgbaton
#     globals --apply`), then each database in turn with all N jobs
#   pg_dumpall | psql: roles, databases and their contents in one stream, one session
#   pgcopydb clone --table-jobs N --index-jobs N once per database, after
#     `pg_dumpall --globals-only | psql` and a CREATE DATABASE per database (both counted)
# The cluster: DATABASES databases (default 10), each pgbench at SCALE (default 3) with foreign
# keys, owned in turn by two roles with a per-role setting. Each contender starts from a target
# without those databases and roles and ends when every database is ready (data and indexes).
# Every database of every target is compared with the source row for row (bench/lib/digest.sh),
# plus the owner of each database: a contender that leaves a different target is WRONG, gets no
# ratio and the script exits 1. Both clusters are checkpointed and the previous contender's
# databases and roles dropped before each contender; the order rotates between rounds; medians
# of ROUNDS.
#
# Usage: bench/copy/cluster_copy_vs_peers.sh [PGBATON_BIN]
#        (env: DATABASES=10 SCALE=3 JOBS=2 ROUNDS=3 SOURCE_MAJOR=15 TARGET_MAJOR=17 KEEP=0)
set -euo pipefail
. "$(dirname "$0")/../lib/bench.sh" # cd to ROOT; PGBATON from $1; the clusters
DATABASES=${DATABASES:-10}
SCALE=${SCALE:-3}
JOBS=${JOBS:-2}
ROUNDS=${ROUNDS:-3}
SOURCE_MAJOR=${SOURCE_MAJOR:-15}
TARGET_MAJOR=${TARGET_MAJOR:-17}

require_tools pg_dumpall psql pgbench pgcopydb

bench_workdir cluster-copy
CLUSTER_SETTINGS=("max_replication_slots = $((DATABASES + 4))" "max_wal_senders = $((DATABASES + 4))"
  "shared_buffers = 512MB" "maintenance_work_mem = 256MB")
SP=$(free_port)
DP=$(free_port)
start_cluster src "$SOURCE_MAJOR" "$SP" "${CLUSTER_SETTINGS[@]}"
start_cluster dst "$TARGET_MAJOR" "$DP" "${CLUSTER_SETTINGS[@]}"
src_ci() { echo "host=127.0.0.1 port=$SP user=postgres dbname=$1"; }
dst_ci() { echo "host=127.0.0.1 port=$DP user=postgres dbname=$1"; }
uri() { echo "postgres://postgres@127.0.0.1:$1/$2"; }
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }
DBS=()
for i in $(seq -w 1 "$DATABASES"); do DBS+=("db$i"); done

echo "== source PostgreSQL $SOURCE_MAJOR, target PostgreSQL $TARGET_MAJOR, $DATABASES databases of pgbench scale $SCALE, jobs $JOBS, $ROUNDS rounds"
psql -X -q "$(src_ci postgres)" <<'SQL'
CREATE ROLE team_a LOGIN PASSWORD 'a';
CREATE ROLE team_b LOGIN PASSWORD 'b';
ALTER ROLE team_a SET statement_timeout = '10s';
ALTER ROLE team_b SET statement_timeout = '20s';
SQL
n=0
for db in "${DBS[@]}"; do
  owner=team_a
  [ $((n % 2)) = 1 ] && owner=team_b
  n=$((n + 1))
  psql -X -q "$(src_ci postgres)" -c "CREATE DATABASE $db OWNER $owner"
  pgbench -i -q -s "$SCALE" --foreign-keys "$(src_ci "$db")" >/dev/null 2>&1
  # pgbench_history has no key: pgbaton refuses tables whose updates could not be replicated.
  psql -X -q "$(src_ci "$db")" -c "ALTER TABLE pgbench_history REPLICA IDENTITY FULL" -c "VACUUM ANALYZE"
done
psql -X -At "$(src_ci postgres)" -c "SELECT 'source size: ' || pg_size_pretty(sum(pg_database_size(datname))) FROM pg_database WHERE datname LIKE 'db%'"

. "$ROOT/bench/lib/digest.sh"
DIGEST_SQL=$(digest_query "$(src_ci db01)")
declare -A EXPECT
for db in "${DBS[@]}"; do EXPECT[$db]=$(digest_of "$(src_ci "$db")" "$DIGEST_SQL"); done
OWNERS_SQL="SELECT string_agg(datname || '=' || pg_get_userbyid(datdba), ',' ORDER BY datname) FROM pg_database WHERE datname LIKE 'db%'"
EXPECT_OWNERS=$(psql -X -At "$(src_ci postgres)" -c "$OWNERS_SQL")

declare -A TIMES WRONG=()
record() {
  TIMES[$1]="${TIMES[$1]:-} $2"
  echo "   $1: $2 s"
}
verify() { # contender: every database row for row, and the databases' owners
  local db rows owners
  for db in "${DBS[@]}"; do
    rows=$(digest_of "$(dst_ci "$db")" "$DIGEST_SQL")
    if [ "$rows" != "${EXPECT[$db]}" ]; then
      WRONG[$1]=1
      echo "   !! $1 left a different $db:"
      diff <(echo "${EXPECT[$db]}") <(echo "$rows") | sed -n 's/^< /      source: /p; s/^> /      target: /p' | head -10 || true
    fi
  done
  owners=$(psql -X -At "$(dst_ci postgres)" -c "$OWNERS_SQL")
  if [ "$owners" != "$EXPECT_OWNERS" ]; then
    WRONG[$1]=1
    echo "   !! $1 left other database owners: $owners (source: $EXPECT_OWNERS)"
  fi
}
# The target as before any contender: no bench databases or roles, pgbaton's records gone; the
# source without slots or publications; both checkpointed.
reset_sides() {
  local db
  export PGOPTIONS="-c client_min_messages=warning"
  for db in "${DBS[@]}"; do
    psql -X -q "$(dst_ci postgres)" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
    psql -X -q "$(src_ci "$db")" -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database()" \
      -c "DO \$\$ DECLARE p text; BEGIN FOR p IN SELECT pubname FROM pg_publication LOOP EXECUTE format('DROP PUBLICATION %I', p); END LOOP; END \$\$" >/dev/null
  done
  psql -X -q "$(dst_ci postgres)" -c "DROP ROLE IF EXISTS team_a" -c "DROP ROLE IF EXISTS team_b" \
    -c "DROP SCHEMA IF EXISTS pgbaton CASCADE" -c "CHECKPOINT"
  psql -X -q "$(src_ci postgres)" -c "CHECKPOINT"
  unset PGOPTIONS
}

run_pgbaton() {
  reset_sides
  local q=$WORK/queue.$RANDOM t0 t1
  t0=$(now)
  "$PGBATON" --name bench copy --source "$(src_ci postgres)" --target "$(dst_ci postgres)" \
    --queue-dir "$q" --databases all --jobs "$JOBS" --progress json >"$WORK/pgbaton.out" 2>&1 ||
    {
      tail -20 "$WORK/pgbaton.out"
      exit 1
    }
  t1=$(now)
  record pgbaton "$(secs "$t0" "$t1")"
  verify pgbaton
  rm -rf "$q"
}

run_dumpall() {
  reset_sides
  local t0 t1
  t0=$(now)
  # The roles and the postgres database exist on the target: those errors are expected; psql
  # goes on (no ON_ERROR_STOP), as a DBA running this would.
  pg_dumpall -h 127.0.0.1 -p "$SP" -U postgres | psql -X -q "$(dst_ci postgres)" >"$WORK/dumpall.out" 2>&1 || true
  t1=$(now)
  record pg_dumpall_psql "$(secs "$t0" "$t1")"
  verify pg_dumpall_psql
}

run_pgcopydb() {
  reset_sides
  local t0 t1 db d
  t0=$(now)
  pg_dumpall -h 127.0.0.1 -p "$SP" -U postgres --globals-only | psql -X -q "$(dst_ci postgres)" >"$WORK/globals.out" 2>&1 || true
  for db in "${DBS[@]}"; do
    psql -X -q "$(dst_ci postgres)" -c "CREATE DATABASE $db OWNER $(psql -X -At "$(src_ci postgres)" -c "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '$db'")"
    d=$WORK/pgcopydb.$db.$RANDOM
    pgcopydb clone --source "$(uri "$SP" "$db")" --target "$(uri "$DP" "$db")" --dir "$d" \
      --table-jobs "$JOBS" --index-jobs "$JOBS" >"$WORK/pgcopydb.out" 2>&1 ||
      {
        tail -20 "$WORK/pgcopydb.out"
        exit 1
      }
    rm -rf "$d"
  done
  t1=$(now)
  record pgcopydb_per_database "$(secs "$t0" "$t1")"
  verify pgcopydb_per_database
}

CONTENDERS=(run_pgbaton run_dumpall run_pgcopydb)
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r of $ROUNDS"
  for k in $(seq 0 $((${#CONTENDERS[@]} - 1))); do
    "${CONTENDERS[$(((k + r - 1) % ${#CONTENDERS[@]}))]}"
  done
done

echo
echo "== wall time until every database is ready (roles, databases, data, indexes), median of $ROUNDS, jobs $JOBS"
P=$(median "${TIMES[pgbaton]}")
best=""
for k in pgbaton pg_dumpall_psql pgcopydb_per_database; do
  m=$(median "${TIMES[$k]}")
  if [ -n "${WRONG[$k]:-}" ]; then
    echo "   $k: $m s  (rounds:${TIMES[$k]})  WRONG: left a different target"
    continue
  fi
  echo "   $k: $m s  (rounds:${TIMES[$k]})  $(python3 -c "print(f'{$m / $P:.2f}')")x pgbaton's time"
  if [ "$k" != pgbaton ] && { [ -z "$best" ] || python3 -c "import sys; sys.exit(0 if $m < $best else 1)"; }; then best=$m; fi
done
[ -n "$best" ] && echo "   pgbaton vs the best peer: $(python3 -c "print(f'{$best / $P:.2f}')")x faster"
[ ${#WRONG[@]} -eq 0 ] || exit 1

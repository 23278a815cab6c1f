# Row-for-row comparison of a contender's target with the source, for the end-to-end benches
# (sourced, not run). A bench names a contender wrong when any table of the source differs on its
# target: contents, not counts.
#
#   digest_query SOURCE_CONNINFO [TABLE_FILTER_SQL]
#       -> one SQL query (printed) that yields, per user table of the source, a line
#          "schema.table <rows> <md5 of the md5 of each row's text, in key order>"
#          (rows of tables without a primary key are ordered by their text). The same query is
#          then run on the source and on each target, so a table missing on a target is an
#          error there, and tables only on a target (a tool's own bookkeeping) do not count.
#          TABLE_FILTER_SQL, optional, is an extra condition on pg_class c / pg_namespace n.
#   digest_of CONNINFO QUERY   -> the lines, or "error: ..." when the query fails there
#   bench_corrupt_if NAME CONNINFO
#       -> when BENCH_CORRUPT=NAME, changes one value of one row on that target (row counts stay
#          the same): the test hook that shows a wrong target is caught.
digest_query() {
  local filter=${2:-true}
  psql -X -At -v ON_ERROR_STOP=1 "$1" <<SQL
SELECT string_agg(format(
  'SELECT %L || '' '' || count(*) || '' '' || coalesce(md5(string_agg(md5(t::text), '''' ORDER BY %s)), ''-'') FROM %s t',
  q.name, q.ord, q.name), E'\nUNION ALL\n' ORDER BY q.name) || E'\nORDER BY 1'
FROM (
  SELECT format('%I.%I', n.nspname, c.relname) AS name,
         coalesce((SELECT string_agg(format('t.%I', a.attname), ', ' ORDER BY k.i)
                   FROM pg_index x
                   CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY k(attnum, i)
                   JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
                   WHERE x.indrelid = c.oid AND x.indisprimary), 't::text') AS ord
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname !~ '^pg_toast' AND ($filter)) q
SQL
}

digest_of() {
  local out
  if out=$(psql -X -At -v ON_ERROR_STOP=1 "$1" -c "$2" 2>&1); then
    echo "$out"
  else
    echo "error: $out" | head -3
  fi
}

bench_corrupt_if() {
  [ "${BENCH_CORRUPT:-}" = "$1" ] || return 0
  # The first table of the source's list that has a row: one value changed, the count the same.
  local q t
  q=$(psql -X -At -v ON_ERROR_STOP=1 "$2" -c "
    SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND n.nspname = 'public' AND c.relname LIKE 'pgbench_%'
      AND c.relname <> 'pgbench_history' ORDER BY 1 LIMIT 1")
  t=${q:-}
  [ -n "$t" ] || { echo "BENCH_CORRUPT: no pgbench table on $1's target" >&2; return 1; }
  echo "   (BENCH_CORRUPT: changing one row of $t on $1's target)"
  psql -X -q -v ON_ERROR_STOP=1 "$2" -c "
    UPDATE $t SET filler = 'corrupted by BENCH_CORRUPT'
    WHERE ctid = (SELECT ctid FROM $t LIMIT 1)" >/dev/null
}

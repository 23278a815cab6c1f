#include "tests/support/copy_fixture.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "queue/work_queue.h"
#include "tests/support/pg_test.h"

namespace pgbaton::testing::copy {
namespace {

constexpr const char* kSchema = R"SQL(
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE pair AS (a int, b text);
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE TABLE types (
  id bigserial PRIMARY KEY, i2 smallint, i4 int, i8 bigint, num numeric(20,5), f4 real,
  f8 double precision, b bool, t text, vc varchar(20), c char(5), by bytea, d date, tm time,
  tmtz timetz, ts timestamp, tstz timestamptz, iv interval, u uuid, j json, jb jsonb, ip inet,
  net cidr, mac macaddr, arr int[], tarr text[], m mood, pr pair, dom posint, r int4range,
  tr tstzrange, pt point, bx box, bits bit(8), vb varbit, tsv tsvector, mon money,
  gen int GENERATED ALWAYS AS (i4 * 2) STORED, big text);
INSERT INTO types (i2, i4, i8, num, f4, f8, b, t, vc, c, by, d, tm, tmtz, ts, tstz, iv, u, j, jb,
  ip, net, mac, arr, tarr, m, pr, dom, r, tr, pt, bx, bits, vb, tsv, mon, big)
SELECT i % 32000, i, i::bigint * 1000003, i / 7.0, i / 3.0, i / 11.0, i % 2 = 0,
  CASE WHEN i % 10 = 0 THEN NULL ELSE E'row\t' || i || E'\n"q" \\ ü€' END,
  'vc' || i, 'c' || (i % 100), decode(md5(i::text), 'hex'), date '2000-01-01' + i,
  time '00:00' + i * interval '1 second', '12:00+02'::timetz, timestamp '2020-01-01' + i * interval '1 minute',
  timestamptz '2020-01-01 00:00+00' + i * interval '1 hour', i * interval '1 day 3 seconds',
  md5(i::text)::uuid, json_build_object('i', i, 's', 'x"y'), jsonb_build_object('k', i, 'a', ARRAY[i, i + 1]),
  ('10.0.' || (i % 256) || '.1')::inet, '192.168.0.0/16', '08:00:2b:01:02:03', ARRAY[i, NULL, 3],
  ARRAY['a,b', NULL, 'c"d'], (ARRAY['sad', 'ok', 'happy'])[1 + i % 3]::mood, ROW(i, 'p' || i)::pair,
  1 + i % 50, int4range(i, i + 10), tstzrange('2020-01-01', '2021-01-01'), point(i, -i),
  box(point(0, 0), point(i, i)), (i % 256)::bit(8), B'1011', to_tsvector('simple', 'hello world ' || i),
  (i / 100.0)::numeric::money, CASE WHEN i % 500 = 0 THEN repeat('toast ', 5000) END
FROM generate_series(1, 1500) i;
INSERT INTO types (id) VALUES (100000);  -- a row of NULLs

CREATE TABLE events (id int, at date, payload text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE events_2020 PARTITION OF events FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
CREATE TABLE events_2021 PARTITION OF events FOR VALUES FROM ('2021-01-01') TO ('2022-01-01');
CREATE TABLE events_other PARTITION OF events DEFAULT;
CREATE INDEX events_payload ON events (payload);
INSERT INTO events SELECT i, date '2020-01-01' + (i % 900), 'e' || i FROM generate_series(1, 3000) i;

CREATE TABLE big (id int PRIMARY KEY, filler text NOT NULL);
INSERT INTO big SELECT i, repeat(md5(i::text), 3) FROM generate_series(1, 20000) i;
CREATE INDEX big_filler ON big (filler);
CREATE TABLE child (id int PRIMARY KEY, big_id int REFERENCES big (id), note text UNIQUE);
INSERT INTO child SELECT i, i * 3, 'n' || i FROM generate_series(1, 500) i;

CREATE TABLE ident (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text CHECK (v <> ''));
INSERT INTO ident (v) SELECT 'v' || i FROM generate_series(1, 77) i;
CREATE SEQUENCE standalone_seq START 5;
SELECT setval('standalone_seq', 1234);
CREATE TABLE empty_t (id int PRIMARY KEY);
CREATE TABLE full_identity (a int, b text);
ALTER TABLE full_identity REPLICA IDENTITY FULL;
INSERT INTO full_identity SELECT i, 'f' || i FROM generate_series(1, 10) i;

CREATE SCHEMA sales;
CREATE TABLE sales.order_2024 (id int PRIMARY KEY, amount numeric);
INSERT INTO sales.order_2024 SELECT i, i * 1.5 FROM generate_series(1, 300) i;
CREATE TABLE sales.notes ("Mixed Case" int PRIMARY KEY, "sp ace" text);
INSERT INTO sales.notes VALUES (1, 'one'), (2, NULL);
-- Names of objects whose OIDs differ on the target: they must travel as text.
CREATE TABLE refs (id int PRIMARY KEY, rel regclass, typ regtype[]);
INSERT INTO refs VALUES (1, 'big', ARRAY['mood', 'pair']::regtype[]), (2, 'sales.notes', NULL);

CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER types_touch BEFORE UPDATE ON types FOR EACH ROW EXECUTE FUNCTION touch();
CREATE VIEW big_view AS SELECT id FROM big WHERE id < 10;
CREATE MATERIALIZED VIEW big_mv AS SELECT count(*) AS n FROM big;
)SQL";

std::string Q(PgServer& s, const std::string& db, const std::string& sql) {
  auto r = s.Query(sql, db);
  EXPECT_TRUE(r.ok()) << r.status().ToString() << "\n" << sql;
  return r.ok() ? *r : std::string("<error>");
}

}  // namespace

void CreateSourceSchema(PgServer& server, const std::string& db) {
  ASSERT_TRUE(server.Exec("CREATE DATABASE " + db).ok());
  Status st = server.Exec(kSchema, db);
  ASSERT_TRUE(st.ok()) << st.ToString();
}

// pgbaton's own bookkeeping (schema pgbaton: the migration record, progress) is not a user table.
std::vector<std::string> UserTables(PgServer& server, const std::string& db) {
  std::string list = Q(server, db,
                       "SELECT coalesce(string_agg(n.nspname || '.' || c.relname, ',' ORDER BY "
                       "n.nspname || '.' || c.relname), "
                       "'') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                       "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', "
                       "'information_schema', 'pgbaton') AND n.nspname !~ '^pg_toast'");
  std::vector<std::string> out;
  size_t at = 0;
  while (!list.empty() && at <= list.size()) {
    size_t comma = list.find(',', at);
    out.push_back(list.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

std::string TableDigest(PgServer& server, const std::string& db, const std::string& table) {
  size_t dot = table.find('.');
  return pgbaton::testing::TableDigest(
      server, db, "\"" + table.substr(0, dot) + "\".\"" + table.substr(dot + 1) + "\"");
}

void ExpectSameDatabase(PgServer& source, const std::string& source_db, PgServer& target,
                        const std::string& target_db) {
  auto tables = UserTables(source, source_db);
  ASSERT_FALSE(tables.empty());
  EXPECT_EQ(tables, UserTables(target, target_db));
  for (const auto& t : tables) {
    EXPECT_EQ(TableDigest(source, source_db, t), TableDigest(target, target_db, t)) << t;
  }
  const char* seqs =
      "SELECT string_agg(schemaname || '.' || sequencename || '=' || coalesce(last_value, 0), ',' "
      "ORDER BY schemaname, sequencename) FROM pg_sequences";
  EXPECT_EQ(Q(source, source_db, seqs), Q(target, target_db, seqs));
  const char* indexes =
      "SELECT string_agg(schemaname || '.' || indexname, ',' ORDER BY schemaname, indexname) FROM "
      "pg_indexes "
      "WHERE schemaname NOT IN ('pg_catalog', 'information_schema', 'pgbaton')";
  EXPECT_EQ(Q(source, source_db, indexes), Q(target, target_db, indexes));
  const char* invalid = "SELECT count(*) FROM pg_index WHERE NOT indisvalid";
  EXPECT_EQ("0", Q(target, target_db, invalid));
  // 18 records NOT NULL as constraints ('n'); compare the kinds every major has.
  const char* constraints =
      "SELECT string_agg(conname || ':' || contype::text, ',' ORDER BY conname) FROM pg_constraint "
      "c "
      "JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname NOT IN ('pg_catalog', "
      "'information_schema', 'pgbaton') AND contype <> 'n'";
  EXPECT_EQ(Q(source, source_db, constraints), Q(target, target_db, constraints));
  const char* triggers =
      "SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger WHERE NOT tgisinternal";
  EXPECT_EQ(Q(source, source_db, triggers), Q(target, target_db, triggers));
  EXPECT_EQ(Q(source, source_db, "SELECT n FROM big_mv"),
            Q(target, target_db, "SELECT n FROM big_mv"));
}

void StreamAndApplyToSentinel(PgServer& source, PgServer& target, const std::string& queue_dir) {
  // Every writer transaction ended before l1; the sentinel commits after it and before l2.
  std::string l1 = *source.Query("SELECT pg_current_wal_insert_lsn()::text", "app");
  ASSERT_TRUE(source.Exec("INSERT INTO sentinel VALUES (1)", "app").ok());
  std::string l2 = *source.Query("SELECT pg_current_wal_lsn()::text", "app");
  ProcessOptions po;
  po.stdout_path = queue_dir + ".stream.log";
  ChildProcess stream({PgbatonBinary(), "--name", "pgbaton", "stream", "--source",
                       source.Conninfo("app"), "--queue-dir", queue_dir},
                      po);
  bool caught_up = false;
  for (int i = 0; i < 600 && !caught_up; ++i) {
    auto r = source.Query("SELECT confirmed_flush_lsn > '" + l1 +
                              "'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'pgbaton'",
                          "app");
    caught_up = r.ok() && *r == "t";
    if (!caught_up) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stream.Signal(SIGTERM);
  if (stream.Wait(15000) == -2) stream.Kill();
  ASSERT_TRUE(caught_up) << "the stream did not reach " << l2 << ": " << ReadFile(po.stdout_path);
  CommandResult apply =
      RunCommand({PgbatonBinary(), "--name", "pgbaton", "apply", "--target", target.Conninfo("app"),
                  "--queue-dir", queue_dir, "--stop-at", l2});
  ASSERT_EQ(apply.exit_code, 0) << apply.output;
}

CommandResult RunCopy(PgServer& source, const std::string& source_db, PgServer& target,
                      const std::string& target_db, const std::string& queue_dir,
                      const std::string& name, const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {PgbatonBinary(),
                                   "--name",
                                   name,
                                   "copy",
                                   "--source",
                                   source.Conninfo(source_db),
                                   "--target",
                                   target.Conninfo(target_db),
                                   "--queue-dir",
                                   queue_dir};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return RunCommand(argv);
}

QueueDir::~QueueDir() {
  if (path_.empty()) return;
  // The directory and its siblings "<dir>.<suffix>" (logs the tests write beside it).
  std::filesystem::path dir(path_);
  const std::string prefix = dir.filename().string() + ".";
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir.parent_path(), ec)) {
    if (e.path().filename().string().rfind(prefix, 0) == 0) RemoveTree(e.path().string());
  }
  RemoveTree(path_);
}

std::map<std::string, std::string> QueueMeta(const std::string& queue_dir, const std::string& name,
                                             const std::string& prefix) {
  queue::QueueOptions o;
  o.dir = queue_dir;
  o.migration_name = name;
  o.read_only = true;
  auto q = queue::WorkQueue::Open(o);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  if (!q.ok()) return {};
  auto m = (*q)->ListMeta(prefix);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? *m : std::map<std::string, std::string>{};
}

}  // namespace pgbaton::testing::copy

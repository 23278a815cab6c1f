// DDL during the migration (--ddl replicate), against real servers: a DDL script runs on the
// source while an application keeps writing to the tables it changes; the target ends equal to
// the source row for row and in schema (columns with types, defaults and nullability, indexes,
// views, sequences, functions, types, comments, table privileges, replica identity). Names need
// quotes everywhere. The applier killed (-9) inside a DDL transaction, before and after its commit,
// ends the same with each DDL applied once; a statement the target rejects stops it with
// schema_changed (exit 32) naming the statement and its commit LSN, nothing later applied, and
// --skip-ddl goes on after a manual fix; with --ddl stop a schema change still stops it as before.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/copy_fixture.h"
#include "tests/support/pg_test.h"

namespace pgbaton::testing {
namespace {

using copy::QueueDir;

constexpr const char* kSchema = R"SQL(
CREATE SCHEMA "Sales Data";
CREATE TABLE "Sales Data"."Order" (id int PRIMARY KEY, "Amount" int NOT NULL, note text);
INSERT INTO "Sales Data"."Order" SELECT i, 0, 'n' || i FROM generate_series(1, 3000) i;
CREATE TABLE hist (id bigserial PRIMARY KEY, order_id int, delta int, "select" text);
)SQL";

// The application: only columns the DDL script leaves alone (it retypes delta under the writes).
std::string NextWrite(std::mt19937& rng, int committed) {
  int id = 1 + static_cast<int>(rng() % 3000);
  int d = static_cast<int>(rng() % 100) - 50;
  return fmt::format(
      "BEGIN; UPDATE \"Sales Data\".\"Order\" SET \"Amount\" = \"Amount\" + {1} WHERE id = {0}; "
      "INSERT INTO hist (order_id, delta, \"select\") VALUES ({0}, {1}, 'w{2}'); COMMIT",
      id, d, committed);
}

// One statement per query string, as psql -f sends a script (a string of several statements is
// refused by replay: see RefusesAMultiStatementString).
const std::vector<std::string> kDdlScript = {
    // Columns of a table under writes: added with a default and filled at once, retyped,
    // renamed, added and dropped.
    R"(ALTER TABLE "Sales Data"."Order" ADD COLUMN "Added" int DEFAULT 7)",
    R"(UPDATE "Sales Data"."Order" SET "Added" = id % 13 WHERE id <= 300)",
    R"(ALTER TABLE "Sales Data"."Order" ALTER COLUMN note TYPE varchar(200))",
    R"(ALTER TABLE "Sales Data"."Order" RENAME COLUMN note TO "Note Text")",
    R"(ALTER TABLE hist ALTER COLUMN delta TYPE bigint)",
    R"(ALTER TABLE hist ADD COLUMN "Mixed Case" text DEFAULT 'd' NOT NULL)",
    R"(ALTER TABLE "Sales Data"."Order" ADD COLUMN "select" int)",
    R"(ALTER TABLE "Sales Data"."Order" DROP COLUMN "select")",
    // New tables: plain, then written; created with rows (CTAS and SELECT INTO), then written.
    R"(CREATE TABLE "Sales Data"."New Items" (id int PRIMARY KEY, "select" text NOT NULL))",
    R"(INSERT INTO "Sales Data"."New Items" SELECT i, 'item ' || i FROM generate_series(1, 50) i)",
    R"(CREATE TABLE "Sales Data"."Big Copy" AS SELECT id, "Amount" FROM "Sales Data"."Order" WHERE id <= 500)",
    R"(ALTER TABLE "Sales Data"."Big Copy" ADD PRIMARY KEY (id))",
    R"(INSERT INTO "Sales Data"."Big Copy" VALUES (100001, 1))",
    R"(SELECT id, "select" INTO public.into_t FROM "Sales Data"."New Items" WHERE id <= 10)",
    // Indexes (CONCURRENTLY replays as a plain build), views, sequences, functions, types.
    R"(CREATE INDEX hist_order_idx ON hist (order_id))",
    R"(CREATE INDEX CONCURRENTLY "Order Amount" ON "Sales Data"."Order" ("Amount"))",
    R"(CREATE INDEX dropped_idx ON hist (delta))",
    R"(DROP INDEX dropped_idx)",
    R"(CREATE VIEW "Sales Data"."Big Orders" AS SELECT id, "Amount" FROM "Sales Data"."Order" WHERE "Amount" > 10)",
    R"(CREATE VIEW gone AS SELECT 1 AS one)",
    R"(DROP VIEW gone)",
    R"(CREATE SEQUENCE "Sales Data"."Ticket Seq" START 100 INCREMENT 5)",
    R"(CREATE FUNCTION "Sales Data".plus_one(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x + 1')",
    R"(CREATE TYPE mood AS ENUM ('sad', 'ok'))",
    R"(ALTER TYPE mood ADD VALUE 'happy')",
    R"(CREATE TYPE pair AS (a int, "B" text))",
    R"(CREATE DOMAIN posint AS int CHECK (VALUE > 0))",
    R"(CREATE SCHEMA "Empty Schema")",
    R"(COMMENT ON TABLE hist IS 'the history; with a semicolon')",
    R"(GRANT SELECT ON hist TO PUBLIC)",
    R"(ALTER TABLE "Sales Data"."New Items" REPLICA IDENTITY FULL)",
    R"(UPDATE "Sales Data"."New Items" SET "select" = 'updated' WHERE id = 7)",
};

// Tables compared row for row at the end.
const std::vector<std::string> kTables = {"\"Sales Data\".\"Order\"", "public.hist",
                                          "\"Sales Data\".\"New Items\"",
                                          "\"Sales Data\".\"Big Copy\"", "public.into_t"};

// The user schemas as catalogue rows, the same text on every major for what the script makes
// (privileges as whether PUBLIC may SELECT, since ACL letters grow with the major; views by
// their columns, since deparsed definitions differ between majors).
constexpr const char* kSchemaSummary = R"SQL(
with ns as (select oid, nspname from pg_namespace
            where nspname not in ('pg_catalog', 'information_schema', 'pgbaton')
              and nspname !~ '^pg_(toast|temp)')
select string_agg(line, E'\n' order by line) from (
  select format('schema %I', nspname) as line from ns
  union all
  select format('relation %I.%I kind %s identity %s public_select %s comment %s', n.nspname,
                c.relname, c.relkind, c.relreplident,
                case when c.relkind in ('r', 'p', 'v') then
                  has_table_privilege('public', c.oid, 'SELECT')::text else '-' end,
                coalesce(obj_description(c.oid, 'pg_class'), '-'))
  from pg_class c join ns n on n.oid = c.relnamespace
  where c.relkind in ('r', 'p', 'v', 'm', 'S', 'i')
  union all
  select format('column %I.%I %s %s %s notnull=%s default=%s', n.nspname, c.relname,
                (select count(*) from pg_attribute b where b.attrelid = c.oid and b.attnum > 0
                   and not b.attisdropped and b.attnum <= a.attnum),
                a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                coalesce(pg_get_expr(d.adbin, d.adrelid), '-'))
  from pg_attribute a join pg_class c on c.oid = a.attrelid join ns n on n.oid = c.relnamespace
  left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
  where c.relkind in ('r', 'p', 'v', 'c') and a.attnum > 0 and not a.attisdropped
  union all
  select format('index %s', indexdef) from pg_indexes i join ns n on n.nspname = i.schemaname
  union all
  select format('sequence %I.%I %s %s', schemaname, sequencename, start_value, increment_by)
  from pg_sequences s join ns n on n.nspname = s.schemaname
  union all
  select format('function %I.%I(%s) %s', n.nspname, p.proname,
                pg_get_function_arguments(p.oid), p.prosrc)
  from pg_proc p join ns n on n.oid = p.pronamespace
  union all
  select format('type %I.%I %s %s', n.nspname, t.typname, t.typtype,
                coalesce((select string_agg(enumlabel, ',' order by enumsortorder) from pg_enum
                          where enumtypid = t.oid),
                         (select string_agg(conname || ':' || pg_get_constraintdef(oid), ',')
                          from pg_constraint where contypid = t.oid), '-'))
  from pg_type t join ns n on n.oid = t.typnamespace
  where t.typtype in ('e', 'd', 'c') and (t.typtype <> 'c' or t.typrelid in
        (select oid from pg_class where relkind = 'c'))
) lines
)SQL";

class DdlFixture : public ::testing::Test {
 protected:
  void Start(int source, int target) {
    src_ = StartServer(source);
    dst_ = StartServer(target);
    ASSERT_TRUE(src_ && dst_);
    ASSERT_TRUE(src_->Exec("CREATE DATABASE app").ok());
    ASSERT_TRUE(src_->Exec(kSchema, "app").ok());
    ASSERT_TRUE(dst_->Exec("CREATE DATABASE app").ok());
  }

  std::vector<std::string> Verb(const std::string& verb, const std::vector<std::string>& extra) {
    std::vector<std::string> args = {PgbatonBinary(), "--name",
                                     "pgbaton",       verb,
                                     "--source",      src_->Conninfo("app"),
                                     "--target",      dst_->Conninfo("app"),
                                     "--queue-dir",   qdir_.path()};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  void Copy() {
    CommandResult r = RunCommand(Verb("copy", {"--ddl", "replicate", "--progress", "json"}));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  // Runs the statements on the source one query string each, a little apart, so that the
  // application's writes fall between them.
  void RunScript(const std::vector<std::string>& script) {
    for (const auto& sql : script) {
      Status s = src_->Exec(sql, "app");
      ASSERT_TRUE(s.ok()) << sql << ": " << s.message();
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
    }
  }

  std::string Summary(const PgServer& server) {
    auto r = server.Query(kSchemaSummary, "app");
    return r.ok() ? *r : r.status().message();
  }

  // `run --stop-at` now, then both sides compared row for row and in schema.
  void ExpectIdentical(const std::vector<std::string>& tables = kTables) {
    CommandResult r = RunCommand(StopAtNow(Verb("run", {"--ddl", "replicate"}), *src_));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(TablesDigest(*src_, "app", tables), TablesDigest(*dst_, "app", tables));
    EXPECT_EQ(Summary(*src_), Summary(*dst_));
  }

  std::unique_ptr<PgServer> src_;
  std::unique_ptr<PgServer> dst_;
  QueueDir qdir_;
};

struct Pair {
  int source;
  int target;
};

class DdlReplicateTest : public DdlFixture, public ::testing::WithParamInterface<Pair> {
 protected:
  void SetUp() override { Start(GetParam().source, GetParam().target); }
};

class DdlOnceTest : public DdlFixture {
 protected:
  void SetUp() override { Start(15, 17); }
};

// copy, then `run --ddl replicate` in the background while the script and the writes run.
TEST_P(DdlReplicateTest, ScriptUnderWritesEndsIdenticalInRowsAndSchema) {
  ASSERT_NO_FATAL_FAILURE(Copy());
  ProcessOptions po;
  po.stdout_path = qdir_.path() + ".run.log";
  ChildProcess run(Verb("run", {"--ddl", "replicate", "--apply-jobs", "3"}), po);
  BackgroundWriter writer(src_->Conninfo("app"), 7, NextWrite);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_NO_FATAL_FAILURE(RunScript(kDdlScript));
  // DDL and rows in one transaction: a column added and written before the commit.
  {
    auto conn = PgConn::Connect(src_->Conninfo("app"));
    ASSERT_TRUE(conn.ok());
    for (const char* sql :
         {"BEGIN", R"(ALTER TABLE "Sales Data"."New Items" ADD COLUMN qty int DEFAULT 1)",
          R"(INSERT INTO "Sales Data"."New Items" VALUES (999, 'in the ddl txn', 5))",
          R"(UPDATE "Sales Data"."New Items" SET qty = 2 WHERE id = 3)", "COMMIT"}) {
      ASSERT_TRUE(conn->Run(sql).ok()) << sql;
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_GT(writer.committed(), 20);
  writer.Stop();
  ASSERT_EQ(writer.error(), "");
  // The background run applied DDL while the writes went on.
  ASSERT_TRUE(WaitFor(
      [&] { return ReadFile(po.stdout_path).find("replayed ddl") != std::string::npos; }, 60))
      << ReadFile(po.stdout_path);
  run.Signal(SIGTERM);
  EXPECT_EQ(run.Wait(60000), 0) << ReadFile(po.stdout_path);
  ExpectIdentical();
  // What the script made is there (the comparison is not of two empty summaries).
  const std::string target = Summary(*dst_);
  for (const char* made :
       {"column \"Sales Data\".\"Order\" 3 Note Text character varying(200)",
        "column public.hist 3 delta bigint", "relation \"Sales Data\".\"Big Copy\" kind r",
        "CREATE INDEX \"Order Amount\"", "type public.mood e sad,ok,happy",
        "relation \"Sales Data\".\"New Items\" kind r identity f",
        "column \"Sales Data\".\"New Items\" 3 qty integer", "schema \"Empty Schema\"",
        "comment the history; with a semicolon", "sequence \"Sales Data\".\"Ticket Seq\" 100 5",
        "function \"Sales Data\".plus_one(x integer)"}) {
    EXPECT_NE(target.find(made), std::string::npos) << made << "\n" << target;
  }
  EXPECT_EQ(target.find("dropped_idx"), std::string::npos) << target;
  // Nothing of pgbaton's capture reached the target.
  EXPECT_EQ(*dst_->Query("SELECT count(*) FROM pg_event_trigger", "app"), "0");
}

INSTANTIATE_TEST_SUITE_P(Majors, DdlReplicateTest, ::testing::Values(Pair{15, 17}, Pair{13, 18}),
                         [](const auto& info) {
                           return fmt::format("From{}To{}", info.param.source, info.param.target);
                         });

// migrate --ddl replicate: the capture is installed before the slot; DDL while it runs.
TEST_F(DdlOnceTest, MigrateReplicatesDdlWhileCatchingUp) {
  BackgroundWriter writer(src_->Conninfo("app"), 3, NextWrite);
  ProcessOptions po;
  po.stdout_path = qdir_.path() + ".migrate.log";
  ChildProcess migrate(Verb("migrate", {"--ddl", "replicate", "--progress", "json"}), po);
  ASSERT_TRUE(
      WaitFor([&] { return ReadFile(po.stdout_path).find("caught up") != std::string::npos; }, 240))
      << ReadFile(po.stdout_path);
  ASSERT_NO_FATAL_FAILURE(RunScript(kDdlScript));
  ASSERT_TRUE(WaitFor(
      [&] { return ReadFile(po.stdout_path).find("replayed ddl") != std::string::npos; }, 60))
      << ReadFile(po.stdout_path);
  writer.Stop();
  ASSERT_EQ(writer.error(), "");
  migrate.Signal(SIGTERM);
  migrate.Wait(60000);
  ExpectIdentical();
}

// kill -9 inside DDL transactions, before and after the commit that holds the DDL and the
// position: each restart applies every DDL exactly once (twice would fail: "already exists").
TEST_F(DdlOnceTest, KilledAroundADdlCommitAppliesItOnce) {
  ASSERT_NO_FATAL_FAILURE(Copy());
  BackgroundWriter writer(src_->Conninfo("app"), 5, NextWrite);
  for (int round = 0; round < 4; ++round) {
    ASSERT_TRUE(
        src_->Exec(fmt::format("ALTER TABLE hist ADD COLUMN \"c {}\" int DEFAULT {}", round, round),
                   "app")
            .ok());
    ASSERT_TRUE(
        src_->Exec(fmt::format("UPDATE hist SET \"c {0}\" = id WHERE id % 7 = {0}", round), "app")
            .ok());
    // An index built CONCURRENTLY on the source replays as a plain build inside the
    // transaction that records the position: the same exactly-once.
    ASSERT_TRUE(
        src_->Exec(fmt::format("CREATE INDEX CONCURRENTLY \"idx {0}\" ON hist (\"c {0}\")", round),
                   "app")
            .ok());
    const char* point = round % 2 == 0 ? "ddl-before-commit" : "ddl-after-commit";
    CommandResult killed = RunCommand(
        StopAtNow(Verb("run", {"--ddl", "replicate", "--apply-crash-at", point}), *src_));
    EXPECT_EQ(killed.signal, SIGKILL) << point << "\n" << killed.output;
  }
  writer.Stop();
  ASSERT_EQ(writer.error(), "");
  ExpectIdentical({"\"Sales Data\".\"Order\"", "public.hist"});
}

// A statement the target rejects: exit 32 naming it and its commit LSN; a write committed after
// it is not applied; after the operator's fix, --skip-ddl LSN goes on and records the skip.
TEST_F(DdlOnceTest, RejectedStatementStopsThenSkipDdlGoesOn) {
  ASSERT_NO_FATAL_FAILURE(Copy());
  // In the way on the target only.
  ASSERT_TRUE(dst_->Exec("CREATE TABLE \"Clash\" (a int)", "app").ok());
  ASSERT_TRUE(src_->Exec("INSERT INTO hist (order_id, delta) VALUES (1, 1)", "app").ok());
  ASSERT_TRUE(src_->Exec("CREATE TABLE \"Clash\" (a int PRIMARY KEY, b text)", "app").ok());
  ASSERT_TRUE(src_->Exec("INSERT INTO \"Clash\" VALUES (1, 'one')", "app").ok());
  ASSERT_TRUE(
      src_->Exec("INSERT INTO hist (order_id, delta, \"select\") VALUES (2, 2, 'after')", "app")
          .ok());
  CommandResult r = RunCommand(StopAtNow(Verb("run", {"--ddl", "replicate"}), *src_));
  EXPECT_EQ(r.exit_code, 32) << r.output;
  EXPECT_NE(r.output.find("CREATE TABLE \"Clash\" (a int PRIMARY KEY, b text)"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("already exists"), std::string::npos) << r.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex("commit LSN ([0-9A-F]+/[0-9A-F]+)")))
      << r.output;
  const std::string lsn = m[1];
  // Everything before it applied, nothing after it.
  EXPECT_EQ(*dst_->Query("SELECT count(*) FROM hist WHERE order_id = 1", "app"), "1");
  EXPECT_EQ(*dst_->Query("SELECT count(*) FROM hist WHERE \"select\" = 'after'", "app"), "0");

  // The operator brings the table level by hand and skips that record.
  ASSERT_TRUE(dst_->Exec("DROP TABLE \"Clash\"; CREATE TABLE \"Clash\" (a int PRIMARY KEY, b "
                         "text)",
                         "app")
                  .ok());
  CommandResult skipped =
      RunCommand(StopAtNow(Verb("run", {"--ddl", "replicate", "--skip-ddl", lsn}), *src_));
  ASSERT_EQ(skipped.exit_code, 0) << skipped.output;
  EXPECT_NE(skipped.output.find("skipped a ddl record"), std::string::npos) << skipped.output;
  EXPECT_EQ(copy::QueueMeta(qdir_.path(), "pgbaton", "ddl/skipped/").count("ddl/skipped/" + lsn),
            1u);
  EXPECT_EQ(TablesDigest(*src_, "app", {"public.hist", "public.\"Clash\""}),
            TablesDigest(*dst_, "app", {"public.hist", "public.\"Clash\""}));
}

// A query string holding several statements is not replayed (the others would run twice).
TEST_F(DdlOnceTest, RefusesAMultiStatementString) {
  ASSERT_NO_FATAL_FAILURE(Copy());
  ASSERT_TRUE(src_->Exec("ALTER TABLE hist ADD COLUMN x int; INSERT INTO hist (order_id) VALUES "
                         "(5)",
                         "app")
                  .ok());
  CommandResult r = RunCommand(StopAtNow(Verb("run", {"--ddl", "replicate"}), *src_));
  EXPECT_EQ(r.exit_code, 32) << r.output;
  EXPECT_NE(r.output.find("holds 2 statements"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--skip-ddl"), std::string::npos) << r.output;
}

// pgbaton's own DDL on the source (cutover's sentinel table, in one query string of two
// statements) and statements that change nothing are not recorded, so they stop nothing.
TEST_F(DdlOnceTest, PgbatonsOwnAndNoOpDdlAreNotRecorded) {
  ASSERT_NO_FATAL_FAILURE(Copy());
  ASSERT_TRUE(src_->Exec("create schema if not exists pgbaton; create table if not exists "
                         "pgbaton.cutover_sentinel (id text primary key, at timestamptz)",
                         "app")
                  .ok());
  ASSERT_TRUE(src_->Exec("CREATE TABLE IF NOT EXISTS hist (a int)", "app").ok());
  ASSERT_TRUE(src_->Exec("DROP TABLE IF EXISTS no_such_table", "app").ok());
  ASSERT_TRUE(src_->Exec("CREATE TEMP TABLE scratch (a int)", "app").ok());
  ASSERT_TRUE(src_->Exec("INSERT INTO hist (order_id) VALUES (42)", "app").ok());
  CommandResult r = RunCommand(StopAtNow(Verb("run", {"--ddl", "replicate"}), *src_));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("replaying ddl"), std::string::npos) << r.output;
  EXPECT_EQ(TablesDigest(*src_, "app", {"public.hist"}),
            TablesDigest(*dst_, "app", {"public.hist"}));
}

// --ddl stop on the applier: DDL records are ignored and a changed table stops it as before.
TEST_F(DdlOnceTest, DdlStopKeepsSchemaChanged) {
  ASSERT_NO_FATAL_FAILURE(Copy());
  ASSERT_TRUE(src_->Exec("CREATE INDEX hist_delta ON hist (delta)", "app").ok());
  ASSERT_TRUE(src_->Exec("INSERT INTO hist (order_id, delta) VALUES (1, 1)", "app").ok());
  ASSERT_TRUE(src_->Exec("ALTER TABLE hist ADD COLUMN extra int", "app").ok());
  ASSERT_TRUE(src_->Exec("INSERT INTO hist (order_id, delta, extra) VALUES (2, 2, 2)", "app").ok());
  CommandResult r = RunCommand(StopAtNow(Verb("run", {}), *src_));
  EXPECT_EQ(r.exit_code, 32) << r.output;
  EXPECT_NE(r.output.find("extra"), std::string::npos) << r.output;
  // The index was not replayed either.
  EXPECT_EQ(*dst_->Query("SELECT count(*) FROM pg_indexes WHERE indexname = 'hist_delta'", "app"),
            "0");
}

// A source role that is not a superuser cannot create the event triggers: preflight says so
// (a blocker with --ddl replicate, information without) and copy --ddl replicate refuses before
// it creates the slot.
TEST_F(DdlOnceTest, WithoutASuperuserPreflightAndCopySaySo) {
  ASSERT_TRUE(src_->Exec("CREATE ROLE mover LOGIN REPLICATION; GRANT ALL ON SCHEMA public, "
                         "\"Sales Data\" TO mover; GRANT SELECT ON ALL TABLES IN SCHEMA public, "
                         "\"Sales Data\" TO mover; GRANT CREATE ON DATABASE app TO mover",
                         "app")
                  .ok());
  const std::string source = src_->Conninfo("app", "mover");
  auto preflight = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {PgbatonBinary(), "preflight", "--source",
                                     source,          "--target",  dst_->Conninfo("app")};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunCommand(args);
  };
  CommandResult strict = preflight({"--ddl", "replicate"});
  EXPECT_EQ(strict.exit_code, 3) << strict.output;
  EXPECT_NE(strict.output.find("cannot create the event trigger"), std::string::npos)
      << strict.output;
  CommandResult lenient = preflight({});
  EXPECT_NE(lenient.output.find("cannot create the event trigger"), std::string::npos)
      << lenient.output;
  // (A FOR ALL TABLES publication needs a superuser too: made beforehand, as a DBA would.)
  ASSERT_TRUE(src_->Exec("CREATE PUBLICATION pgbaton FOR ALL TABLES", "app").ok());
  std::vector<std::string> copy = Verb("copy", {"--ddl", "replicate", "--progress", "json"});
  copy[5] = source;  // --source
  CommandResult c = RunCommand(copy);
  EXPECT_EQ(c.exit_code, ExitCodeOf(ErrorCode::kPermission)) << c.output;
  EXPECT_NE(c.output.find("not a superuser"), std::string::npos) << c.output;
  EXPECT_EQ(*src_->Query("SELECT count(*) FROM pg_replication_slots", "app"), "0");
}

// cleanup removes the capture from the source.
TEST_F(DdlOnceTest, CleanupRemovesTheCapture) {
  ASSERT_NO_FATAL_FAILURE(Copy());
  EXPECT_EQ(
      *src_->Query("SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'pgbaton%'", "app"),
      "2");
  CommandResult r = RunCommand({PgbatonBinary(), "--name", "pgbaton", "cleanup", "--source",
                                src_->Conninfo("app"), "--target", dst_->Conninfo("app"),
                                "--queue-dir", qdir_.path()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("ddl capture on source: event triggers dropped"), std::string::npos)
      << r.output;
  EXPECT_EQ(*src_->Query("SELECT count(*) FROM pg_event_trigger", "app"), "0");
  EXPECT_EQ(*src_->Query("SELECT count(*) FROM pg_namespace WHERE nspname = 'pgbaton'", "app"),
            "0");
}

// Transactions larger than --big-txn-changes: one created with its rows (CTAS, the rows before
// the record), one whose DDL comes before its rows, and one without DDL (read twice: scanned for
// records, then streamed).
TEST_F(DdlOnceTest, LargeTransactionsHoldingDdl) {
  ASSERT_NO_FATAL_FAILURE(Copy());
  ASSERT_TRUE(src_->Exec("CREATE TABLE \"Big CTAS\" AS SELECT g AS id, md5(g::text) AS v FROM "
                         "generate_series(1, 3000) g",
                         "app")
                  .ok());
  ASSERT_TRUE(
      src_->Exec("UPDATE \"Sales Data\".\"Order\" SET \"Amount\" = \"Amount\" + 1", "app").ok());
  {
    auto conn = PgConn::Connect(src_->Conninfo("app"));
    ASSERT_TRUE(conn.ok());
    for (const char* sql : {"BEGIN", "ALTER TABLE hist ADD COLUMN big int",
                            "INSERT INTO hist (order_id, big) SELECT g, g FROM "
                            "generate_series(1, 1500) g",
                            "CREATE INDEX hist_big ON hist (big)", "COMMIT"}) {
      ASSERT_TRUE(conn->Run(sql).ok()) << sql;
    }
  }
  CommandResult r = RunCommand(StopAtNow(
      Verb("run", {"--ddl", "replicate", "--big-txn-changes", "200", "--apply-jobs", "2"}), *src_));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::vector<std::string> tables = {"\"Sales Data\".\"Order\"", "public.hist",
                                           "public.\"Big CTAS\""};
  EXPECT_EQ(TablesDigest(*src_, "app", tables), TablesDigest(*dst_, "app", tables));
  EXPECT_EQ(Summary(*src_), Summary(*dst_));
  EXPECT_EQ(*dst_->Query("SELECT count(*) FROM \"Big CTAS\"", "app"), "3000");
}

// DDL on a table the copy left out (--exclude) is not replayed; on the others it is.
TEST_F(DdlOnceTest, DdlOnExcludedTablesIsNotReplayed) {
  CommandResult c = RunCommand(
      Verb("copy", {"--ddl", "replicate", "--progress", "json", "--exclude", "public.hist"}));
  ASSERT_EQ(c.exit_code, 0) << c.output;
  ASSERT_NO_FATAL_FAILURE(
      RunScript({"ALTER TABLE hist ADD COLUMN z int", "CREATE INDEX hist_z ON hist (z)",
                 "ALTER TABLE \"Sales Data\".\"Order\" ADD COLUMN w int",
                 "UPDATE \"Sales Data\".\"Order\" SET w = 1 WHERE id < 10"}));
  CommandResult r = RunCommand(StopAtNow(Verb("run", {"--ddl", "replicate"}), *src_));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("ddl on a table left out by --include/--exclude"), std::string::npos)
      << r.output;
  EXPECT_EQ(*dst_->Query("SELECT to_regclass('public.hist') IS NULL", "app"), "t");
  EXPECT_EQ(TablesDigest(*src_, "app", {"\"Sales Data\".\"Order\""}),
            TablesDigest(*dst_, "app", {"\"Sales Data\".\"Order\""}));
}

// 17 -> 18 without a copy (the test machine's pg_dump is 15): both sides start with the same
// schema and rows, `run --ddl replicate` installs the capture and creates the slot, then the
// script runs under writes.
TEST(DdlNoCopyTest, From17To18RunInstallsTheCaptureAndReplicates) {
  std::unique_ptr<PgServer> src = StartServer(17);
  std::unique_ptr<PgServer> dst = StartServer(18);
  ASSERT_TRUE(src && dst);
  for (PgServer* s : {src.get(), dst.get()}) {
    ASSERT_TRUE(s->Exec("CREATE DATABASE app").ok());
    ASSERT_TRUE(s->Exec(kSchema, "app").ok());
  }
  QueueDir qdir;
  auto verb = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {PgbatonBinary(), "--name",
                                     "pgbaton",       "run",
                                     "--source",      src->Conninfo("app"),
                                     "--target",      dst->Conninfo("app"),
                                     "--queue-dir",   qdir.path(),
                                     "--ddl",         "replicate"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  ProcessOptions po;
  po.stdout_path = qdir.path() + ".run.log";
  ChildProcess run(verb({}), po);
  ASSERT_TRUE(WaitForSlot(*src, "pgbaton")) << ReadFile(po.stdout_path);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto n = src->Query("SELECT count(*) FROM pg_event_trigger", "app");
        return n.ok() && *n == "2";
      },
      30));
  {
    BackgroundWriter writer(src->Conninfo("app"), 9, NextWrite);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    for (const auto& sql : kDdlScript) {
      ASSERT_TRUE(src->Exec(sql, "app").ok()) << sql;
    }
    writer.Stop();
    ASSERT_EQ(writer.error(), "");
  }
  run.Signal(SIGTERM);
  EXPECT_EQ(run.Wait(60000), 0) << ReadFile(po.stdout_path);
  CommandResult r = RunCommand(StopAtNow(verb({}), *src));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(TablesDigest(*src, "app", kTables), TablesDigest(*dst, "app", kTables));
  auto summary = [](const PgServer& s) {
    auto q = s.Query(kSchemaSummary, "app");
    return q.ok() ? *q : q.status().message();
  };
  EXPECT_EQ(summary(*src), summary(*dst));
}

}  // namespace
}  // namespace pgbaton::testing

// `pgbaton preflight` against real clusters set up right and wrong: each finding and exit code.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/error_code.h"
#include "tests/support/pg_server.h"
#include "tests/support/pg_test.h"
#include "tests/support/process.h"

namespace pgbaton::testing {
namespace {

// Options that send the command's stderr to `path` (stdout is captured).
ProcessOptions StderrTo(const std::string& path) {
  ProcessOptions o;
  o.stderr_path = path;
  return o;
}

CommandResult Preflight(const std::string& source, const std::string& target, bool json) {
  std::vector<std::string> argv = {PgbatonBinary(), "preflight", "--source",
                                   source,          "--target",  target};
  if (json) argv.push_back("--json");
  ProcessOptions o;
  o.stderr_path = "/dev/null";
  return RunCommand(argv, o);
}

nlohmann::json ParseJson(const CommandResult& r) {
  auto j = nlohmann::json::parse(r.output, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "not JSON: " << r.output;
  return j;
}

// Findings of `check` with `severity`.
std::vector<nlohmann::json> FindingsOf(const nlohmann::json& j, const std::string& check,
                                       const std::string& severity) {
  std::vector<nlohmann::json> out;
  for (const auto& f : j["findings"]) {
    if (f["check"] == check && f["severity"] == severity) out.push_back(f);
  }
  return out;
}

// What `preflight --json` printed and its run.
struct JsonReport {
  CommandResult run;
  nlohmann::json doc;
};

// `preflight --json` from `src` to `tgt` (their default databases), which must exit with
// `exit_code` (0: ready).
JsonReport PreflightJson(const PgServer& src, const PgServer& tgt, int exit_code) {
  JsonReport p;
  p.run = Preflight(src.Conninfo(), tgt.Conninfo(), /*json=*/true);
  EXPECT_EQ(p.run.exit_code, exit_code) << p.run.output;
  p.doc = ParseJson(p.run);
  return p;
}

const int kBlocked = ExitCodeOf(ErrorCode::kPreflightFailed);

// PostgreSQL `source_major` in `src` and `target_major` in `tgt`; `source_sql`, when given, runs
// in the source's default database. Call it in ASSERT_NO_FATAL_FAILURE.
void StartPair(int source_major, int target_major, std::unique_ptr<PgServer>* src,
               std::unique_ptr<PgServer>* tgt, const std::string& source_sql = "") {
  *src = StartServer(source_major);
  *tgt = StartServer(target_major);
  ASSERT_TRUE(*src && *tgt);
  if (!source_sql.empty()) {
    Status st = (*src)->Exec(source_sql);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
}

TEST(Preflight, ReadyPairPassesWithExitZero) {
  std::unique_ptr<PgServer> src, tgt;
  ASSERT_NO_FATAL_FAILURE(StartPair(15, 17, &src, &tgt,
                                    "create table accounts (id int primary key, v text); "
                                    "create extension pgcrypto"));
  JsonReport p = PreflightJson(*src, *tgt, 0);
  EXPECT_EQ(p.doc["ready"], true);
  EXPECT_EQ(p.doc["errors"], 0);
  EXPECT_EQ(p.doc["source"]["version_num"].get<int>() / 10000, 15);
  EXPECT_EQ(p.doc["target"]["version_num"].get<int>() / 10000, 17);
  EXPECT_EQ(FindingsOf(p.doc, "source.wal_level", "ok").size(), 1u);
  EXPECT_EQ(FindingsOf(p.doc, "target.extensions", "ok").size(), 1u);

  CommandResult human = Preflight(src->Conninfo(), tgt->Conninfo(), /*json=*/false);
  EXPECT_EQ(human.exit_code, 0);
  EXPECT_NE(human.output.find("result: ready"), std::string::npos) << human.output;
}

// Large objects are copied and re-synced in the cutover fence: information, not a blocker.
TEST(Preflight, LargeObjectsAreInformationNotABlocker) {
  std::unique_ptr<PgServer> src, tgt;
  ASSERT_NO_FATAL_FAILURE(
      StartPair(15, 17, &src, &tgt,
                "create table docs (id int primary key, body oid); "
                "select lo_from_bytea(0, 'x'::bytea) from generate_series(1, 3)"));
  JsonReport p = PreflightJson(*src, *tgt, 0);
  EXPECT_EQ(p.doc["ready"], true);
  EXPECT_TRUE(FindingsOf(p.doc, "source.large_objects", "error").empty()) << p.run.output;
  auto f = FindingsOf(p.doc, "source.large_objects", "info");
  ASSERT_EQ(f.size(), 1u) << p.run.output;
  std::string message = f[0]["message"].get<std::string>();
  EXPECT_NE(message.find("holds 3 large objects"), std::string::npos) << message;
  EXPECT_NE(message.find("re-syncs"), std::string::npos) << message;
  EXPECT_NE(message.find("cutover fence"), std::string::npos) << message;
}

TEST(Preflight, WalLevelReplicaIsABlocker) {
  auto src = StartServer(15, {.settings = {{"wal_level", "replica"}}});
  auto tgt = StartServer(17);
  ASSERT_TRUE(src && tgt);
  JsonReport p = PreflightJson(*src, *tgt, kBlocked);
  EXPECT_EQ(p.doc["ready"], false);
  auto f = FindingsOf(p.doc, "source.wal_level", "error");
  ASSERT_EQ(f.size(), 1u) << p.run.output;
  EXPECT_NE(f[0]["message"].get<std::string>().find("\"replica\""), std::string::npos);
  EXPECT_NE(f[0]["fix"].get<std::string>().find("wal_level = logical"), std::string::npos);

  CommandResult human = Preflight(src->Conninfo(), tgt->Conninfo(), false);
  EXPECT_EQ(human.exit_code, ExitCodeOf(ErrorCode::kPreflightFailed));
  EXPECT_NE(human.output.find("FAIL  source wal_level is \"replica\""), std::string::npos)
      << human.output;
  EXPECT_NE(human.output.find("fix: ALTER SYSTEM SET wal_level = logical"), std::string::npos);
}

TEST(Preflight, RoleWithoutReplicationIsABlocker) {
  std::unique_ptr<PgServer> src, tgt;
  ASSERT_NO_FATAL_FAILURE(StartPair(15, 17, &src, &tgt, "create role app login"));
  CommandResult r = Preflight(src->Conninfo("postgres", "app"), tgt->Conninfo(), true);
  EXPECT_EQ(r.exit_code, ExitCodeOf(ErrorCode::kPreflightFailed)) << r.output;
  auto f = FindingsOf(ParseJson(r), "source.replication_privilege", "error");
  ASSERT_EQ(f.size(), 1u) << r.output;
  EXPECT_EQ(f[0]["object"], "app");
  EXPECT_NE(f[0]["fix"].get<std::string>().find("ALTER ROLE app REPLICATION"), std::string::npos);

  // Granting the privilege clears the finding.
  ASSERT_TRUE(src->Exec("alter role app replication").ok());
  r = Preflight(src->Conninfo("postgres", "app"), tgt->Conninfo(), true);
  EXPECT_EQ(FindingsOf(ParseJson(r), "source.replication_privilege", "ok").size(), 1u) << r.output;
}

TEST(Preflight, TableWithoutPrimaryKeyIsNamedWithItsFix) {
  std::unique_ptr<PgServer> src, tgt;
  ASSERT_NO_FATAL_FAILURE(
      StartPair(15, 17, &src, &tgt,
                "create table has_pk (id int primary key); "
                "create schema sales; create table sales.\"Order Lines\" (a int, b text); "
                "create table full_ident (a int); "
                "alter table full_ident replica identity full; "
                "create unlogged table scratch (id int primary key)"));
  JsonReport p = PreflightJson(*src, *tgt, kBlocked);
  auto f = FindingsOf(p.doc, "source.replica_identity", "error");
  ASSERT_EQ(f.size(), 1u) << p.run.output;  // has_pk and full_ident are fine
  EXPECT_EQ(f[0]["object"], "sales.\"Order Lines\"");
  EXPECT_NE(f[0]["fix"].get<std::string>().find(
                "ALTER TABLE sales.\"Order Lines\" REPLICA IDENTITY FULL"),
            std::string::npos);
  auto u = FindingsOf(p.doc, "source.unlogged_tables", "error");
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0]["object"], "public.scratch");
}

TEST(Preflight, ATwelveSourceIsReadyAndToldWhatItCannotDo) {
  auto src = StartServer(12);
  auto tgt = StartServer(17);
  ASSERT_TRUE(src && tgt);
  ASSERT_TRUE(src->Exec("create table accounts (id int primary key, v text)").ok());
  CommandResult r = Preflight(src->Conninfo(), tgt->Conninfo(), true);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  auto j = ParseJson(r);
  EXPECT_EQ(j["ready"], true) << r.output;
  EXPECT_EQ(j["source"]["version_num"].get<int>() / 10000, 12);
  EXPECT_EQ(FindingsOf(j, "source.version", "ok").size(), 1u) << r.output;
  auto limits = FindingsOf(j, "source.version_limits", "info");
  ASSERT_EQ(limits.size(), 1u) << r.output;
  const std::string message = limits[0]["message"].get<std::string>();
  for (const char* says : {"end of life", "only at its commit", "4096 changes", "partitioned table",
                           "max_slot_wal_keep_size"}) {
    EXPECT_NE(message.find(says), std::string::npos) << says << " not in: " << message;
  }

  // A 13 source is not told 12's limits.
  auto src13 = StartServer(13);
  ASSERT_TRUE(src13);
  CommandResult r13 = Preflight(src13->Conninfo(), tgt->Conninfo(), true);
  EXPECT_EQ(r13.exit_code, 0) << r13.output;
  EXPECT_TRUE(FindingsOf(ParseJson(r13), "source.version_limits", "info").empty()) << r13.output;
}

// How much WAL the slot will keep: about a second where a 16+ source lets pgbaton ask for
// running-transactions records, a warning with the GRANT where the role may not, information
// before 16.
TEST(Preflight, SaysHowMuchWalTheSlotWillKeep) {
  auto src = StartServer(17);
  auto tgt = StartServer(18);
  ASSERT_TRUE(src && tgt);
  auto j = ParseJson(Preflight(src->Conninfo(), tgt->Conninfo(), true));
  EXPECT_EQ(FindingsOf(j, "source.slot_wal_hold", "ok").size(), 1u) << j.dump(2);

  ASSERT_TRUE(src->Exec("CREATE ROLE mover LOGIN REPLICATION").ok());
  auto as_mover = ParseJson(Preflight(src->Conninfo("postgres", "mover"), tgt->Conninfo(), true));
  auto warned = FindingsOf(as_mover, "source.slot_wal_hold", "warning");
  ASSERT_EQ(warned.size(), 1u) << as_mover.dump(2);
  EXPECT_NE(warned[0]["fix"].get<std::string>().find("GRANT EXECUTE"), std::string::npos);
  ASSERT_TRUE(
      src->Exec("GRANT EXECUTE ON FUNCTION pg_catalog.pg_log_standby_snapshot() TO mover").ok());
  as_mover = ParseJson(Preflight(src->Conninfo("postgres", "mover"), tgt->Conninfo(), true));
  EXPECT_EQ(FindingsOf(as_mover, "source.slot_wal_hold", "ok").size(), 1u) << as_mover.dump(2);

  auto src15 = StartServer(15);
  ASSERT_TRUE(src15);
  auto old = ParseJson(Preflight(src15->Conninfo(), tgt->Conninfo(), true));
  EXPECT_EQ(FindingsOf(old, "source.slot_wal_hold", "info").size(), 1u) << old.dump(2);
}

TEST(Preflight, TargetOlderThanSourceIsRefused) {
  std::unique_ptr<PgServer> src, tgt;
  ASSERT_NO_FATAL_FAILURE(StartPair(17, 13, &src, &tgt));
  JsonReport p = PreflightJson(*src, *tgt, kBlocked);
  auto f = FindingsOf(p.doc, "target.version", "error");
  ASSERT_EQ(f.size(), 1u) << p.run.output;
  EXPECT_NE(f[0]["message"].get<std::string>().find("downgrade"), std::string::npos);
}

TEST(Preflight, TargetWithForeignTablesAndMissingExtension) {
  std::unique_ptr<PgServer> src, tgt;
  ASSERT_NO_FATAL_FAILURE(StartPair(
      15, 18, &src, &tgt, "create extension pg_trgm; create table t (id int primary key)"));
  ASSERT_TRUE(tgt->Exec("create table unrelated (id int)").ok());
  JsonReport p = PreflightJson(*src, *tgt, kBlocked);
  auto schema = FindingsOf(p.doc, "target.schema", "error");
  ASSERT_EQ(schema.size(), 1u) << p.run.output;
  EXPECT_NE(schema[0]["message"].get<std::string>().find("public.unrelated"), std::string::npos);
  // The npm build of 18 ships contrib: pg_trgm is available there, so no extension blocker.
  EXPECT_EQ(FindingsOf(p.doc, "target.extensions", "error").size(), 0u) << p.run.output;
}

TEST(Preflight, UnreachableTargetExitsWithConnectionCodeAndNoPassword) {
  auto src = StartServer(15);
  ASSERT_TRUE(src);
  int dead_port = FreePort();
  std::string target =
      "host=127.0.0.1 port=" + std::to_string(dead_port) + " user=x password=s3cr3t-Pa55 dbname=y";
  std::string source = src->Conninfo() + " password=an0ther-Secret";
  for (bool json : {true, false}) {
    std::vector<std::string> argv = {PgbatonBinary(), "preflight", "--source",
                                     source,          "--target",  target};
    if (json) argv.push_back("--json");
    CommandResult r = RunCommand(argv);  // stdout and stderr together
    EXPECT_EQ(r.exit_code, ExitCodeOf(ErrorCode::kConnection)) << r.output;
    EXPECT_NE(r.output.find("cannot connect to target (127.0.0.1:" + std::to_string(dead_port)),
              std::string::npos)
        << r.output;
    EXPECT_EQ(r.output.find("s3cr3t-Pa55"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("an0ther-Secret"), std::string::npos) << r.output;
  }
}

// The roles the restored schema names (owners, grantees) must exist on the target: preflight used
// to say "ready" and the copy then failed with `role "app_owner" does not exist`.
TEST(Preflight, RolesTheSchemaNeedsMustExistOnTheTarget) {
  std::unique_ptr<PgServer> src, tgt;
  ASSERT_NO_FATAL_FAILURE(
      StartPair(15, 17, &src, &tgt,
                "create role app_owner; create role app_ro; create role app_fn;"
                "create schema app authorization app_owner;"
                "create table app.accounts (id int primary key, v text);"
                "alter table app.accounts owner to app_owner;"
                "grant select on app.accounts to app_ro;"
                "create function app.f() returns int language sql as 'select 1';"
                "alter function app.f() owner to app_fn"));
  JsonReport p = PreflightJson(*src, *tgt, kBlocked);
  auto f = FindingsOf(p.doc, "target.roles", "error");
  ASSERT_EQ(f.size(), 1u) << p.run.output;
  std::string message = f[0]["message"], fix = f[0]["fix"];
  EXPECT_NE(message.find("3 role(s)"), std::string::npos) << message;
  EXPECT_NE(message.find("app_owner (owner of schema app"), std::string::npos) << message;
  EXPECT_NE(message.find("app_ro (granted privileges on table app.accounts)"), std::string::npos)
      << message;
  EXPECT_NE(message.find("app_fn (owner of function app.f()"), std::string::npos) << message;
  EXPECT_NE(fix.find("pg_dumpall --roles-only"), std::string::npos) << fix;
  EXPECT_NE(fix.find("app_fn, app_owner, app_ro"), std::string::npos) << fix;

  // Copying without owners still needs the grantee.
  CommandResult no_owner = RunCommand({PgbatonBinary(), "preflight", "--source", src->Conninfo(),
                                       "--target", tgt->Conninfo(), "--json", "--no-owner"},
                                      StderrTo("/dev/null"));
  EXPECT_EQ(no_owner.exit_code, ExitCodeOf(ErrorCode::kPreflightFailed)) << no_owner.output;
  auto nf = FindingsOf(ParseJson(no_owner), "target.roles", "error");
  ASSERT_EQ(nf.size(), 1u) << no_owner.output;
  EXPECT_EQ(nf[0]["object"], "app_ro") << no_owner.output;

  // Once the roles exist, preflight is ready and the copy goes through with the owners.
  ASSERT_TRUE(tgt->Exec("create role app_owner; create role app_ro; create role app_fn").ok());
  CommandResult ready = Preflight(src->Conninfo(), tgt->Conninfo(), true);
  EXPECT_EQ(ready.exit_code, 0) << ready.output;
  EXPECT_EQ(FindingsOf(ParseJson(ready), "target.roles", "ok").size(), 1u) << ready.output;
}

// A target database that does not exist is a wrong dbname, not a network problem: the code is
// not_found and the hint names the dbname, not "check that the server is running".
TEST(Preflight, MissingTargetDatabaseGetsAHintAboutTheDatabase) {
  std::unique_ptr<PgServer> src, tgt;
  ASSERT_NO_FATAL_FAILURE(StartPair(15, 17, &src, &tgt));
  CommandResult r = RunCommand({PgbatonBinary(), "preflight", "--source", src->Conninfo(),
                                "--target", tgt->Conninfo("app3")});
  EXPECT_EQ(r.exit_code, ExitCodeOf(ErrorCode::kNotFound)) << r.output;
  EXPECT_NE(r.output.find("database \"app3\" does not exist"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("check the dbname in the target conninfo"), std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("server is running"), std::string::npos) << r.output;
}

TEST(Preflight, MissingRequiredFlagIsAUsageError) {
  CommandResult r = RunCommand({PgbatonBinary(), "preflight", "--source", "host=127.0.0.1"});
  EXPECT_EQ(r.exit_code, ExitCodeOf(ErrorCode::kUsage)) << r.output;
  EXPECT_NE(r.output.find("--target"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace pgbaton::testing

// docs/guide/least-privilege.md end to end: `pgbaton run` with a source role that has only LOGIN
// REPLICATION and SELECT (a superuser created the publication once; run finds it by --name) and a
// target role that is no superuser, owns the database and may SET session_replication_role.
// Without EXECUTE on the replication origin functions the applier falls back to the table
// pgbaton.progress; with it (granted by a superuser) it uses origins. Both on two pairs of majors;
// the result must be identical.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <thread>

#include "tests/support/pg_server.h"
#include "tests/support/pg_test.h"
#include "tests/support/process.h"

namespace pgbaton::testing::faults {
namespace {

std::string Rows(PgServer* s) { return TableDigest(*s, "app", "t"); }

struct Case {
  int source;
  int target;
  bool grant_origins;  // EXECUTE on the origin functions for the target role
};

class LeastPrivilegeTest : public ::testing::TestWithParam<Case> {};

TEST_P(LeastPrivilegeTest, RunWithReplicationSelectSourceRoleAndNonSuperuserTargetOwner) {
  auto source = StartServer(GetParam().source);
  auto target = StartServer(GetParam().target);
  ASSERT_TRUE(source && target);
  PgServer* src = source.get();
  PgServer* dst = target.get();
  ASSERT_TRUE(src->Exec("create database app").ok());
  ASSERT_TRUE(src->Exec("create role mig_src login replication").ok());
  ASSERT_TRUE(src->Exec("create table t (id int primary key, v text); "
                        "grant select on t to mig_src; "
                        "create publication pgbaton for all tables",
                        "app")
                  .ok());
  ASSERT_TRUE(dst->Exec("create role mig_dst login").ok());
  ASSERT_TRUE(dst->Exec("create database app owner mig_dst").ok());
  // The applier sets session_replication_role = replica (no triggers, no FK checks on replay):
  // a superuser grants that one parameter (PostgreSQL 15+).
  ASSERT_TRUE(dst->Exec("grant set on parameter session_replication_role to mig_dst").ok());
  if (GetParam().grant_origins) {
    ASSERT_TRUE(dst->Exec("grant execute on function pg_replication_origin_create(text), "
                          "pg_replication_origin_session_setup(text), "
                          "pg_replication_origin_xact_setup(pg_lsn, timestamptz), "
                          "pg_replication_origin_progress(text, boolean) to mig_dst",
                          "app")  // function privileges live in each database
                    .ok());
  }
  auto c = dst->Connect("app", "mig_dst");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE(c->Run("create table t (id int primary key, v text)").ok());

  std::string dir = MakeTempDir("pgbaton-faults-roles");
  ProcessOptions po;
  po.stdout_path = dir + "/run.log";
  ChildProcess run({PgbatonBinary(), "run", "--source", src->Conninfo("app", "mig_src"), "--target",
                    dst->Conninfo("app", "mig_dst"), "--queue-dir", dir + "/queue"},
                   po);
  bool slot = false;
  for (int i = 0; i < 300 && !slot && run.running(); ++i) {
    slot = *src->Query("select count(*) from pg_replication_slots") == "1";
    if (!slot) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(slot) << ReadFile(dir + "/run.log");
  ASSERT_TRUE(src->Exec("insert into t select g, md5(g::text) from generate_series(1, 500) g; "
                        "update t set v = 'u' where id % 7 = 0; delete from t where id % 11 = 0",
                        "app")
                  .ok());
  std::string want = Rows(src);
  for (int i = 0; i < 600 && Rows(dst) != want && run.running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::string log = ReadFile(dir + "/run.log");
  EXPECT_EQ(Rows(dst), want) << log;
  EXPECT_EQ(want.substr(0, 4), "455:");
  if (GetParam().grant_origins) {
    // The granted origin functions are used: the exact, asynchronous-commit path.
    EXPECT_EQ(*dst->Query("select count(*) > 0 from pg_replication_origin"), "t") << log;
    EXPECT_EQ(*dst->Query("select to_regclass('pgbaton.progress') is null", "app"), "t") << log;
  } else {
    // Progress went to the table (no superuser, no grants: no replication origins).
    EXPECT_EQ(*dst->Query("select count(*) > 0 from pgbaton.progress", "app"), "t") << log;
    EXPECT_EQ(*dst->Query("select count(*) from pg_replication_origin"), "0");
  }
  run.Signal(SIGTERM);
  run.Wait(30000);
  RemoveTree(dir);
}

INSTANTIATE_TEST_SUITE_P(Majors, LeastPrivilegeTest,
                         ::testing::Values(Case{15, 17, false}, Case{13, 18, true},
                                           Case{13, 17, true}, Case{15, 18, false},
                                           Case{12, 18, false}),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           return fmt::format(
                               "From{}To{}{}", i.param.source, i.param.target,
                               i.param.grant_origins ? "WithOriginGrants" : "ProgressTable");
                         });

}  // namespace
}  // namespace pgbaton::testing::faults

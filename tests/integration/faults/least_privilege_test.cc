// docs/guide/least-privilege.md end to end: `pgbaton run` with a source role that has only LOGIN
// REPLICATION and SELECT (a superuser created the publication once; run finds it by --name) and a
// target role that is no superuser, owns the database and may SET session_replication_role
// (replication origins refused: the
// applier falls back to the table pgbaton.progress). The result must be identical.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <thread>

#include "tests/support/pg_server.h"
#include "tests/support/process.h"

namespace pgbaton::faults::testing {
namespace {

using pgbaton::testing::ChildProcess;
using pgbaton::testing::MakeTempDir;
using pgbaton::testing::PgbatonBinary;
using pgbaton::testing::PgServer;
using pgbaton::testing::PgServerOptions;
using pgbaton::testing::ProcessOptions;
using pgbaton::testing::ReadFile;
using pgbaton::testing::RemoveTree;

std::string Rows(PgServer* s) {
  auto v = s->Query(
      "select count(*) || ':' || coalesce(md5(string_agg(t::text, ',' order by t::text)), '-') "
      "from t",
      "app");
  return v.ok() ? *v : v.status().ToString();
}

TEST(LeastPrivilegeTest, RunWithReplicationSelectSourceRoleAndNonSuperuserTargetOwner) {
  PgServerOptions so;
  so.major = 15;
  auto source = PgServer::Start(so);
  PgServerOptions to;
  to.major = 17;
  auto target = PgServer::Start(to);
  ASSERT_TRUE(source.ok() && target.ok());
  PgServer* src = source->get();
  PgServer* dst = target->get();
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
  // Progress went to the table (no superuser: no replication origins).
  EXPECT_EQ(*dst->Query("select count(*) > 0 from pgbaton.progress", "app"), "t") << log;
  EXPECT_EQ(*dst->Query("select count(*) from pg_replication_origin"), "0");
  run.Signal(SIGTERM);
  run.Wait(30000);
  RemoveTree(dir);
}

}  // namespace
}  // namespace pgbaton::faults::testing

// `pgbaton cutover` against real clusters (15 -> 17) with `pgbaton run` streaming between them and
// writers running during the whole cutover: each fence and flip strategy once, each failure path
// (applier stopped, lag too high, target down after the fence, target down exactly at the flip,
// flip hook failing) undoing the fence so that the old cluster keeps serving writes, --dry-run
// fencing nothing, and --reverse (17 -> 18).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <functional>
#include <nlohmann/json.hpp>

#include "tests/support/cutover_fixture.h"

namespace pgbaton::testing::cutover {
namespace {

constexpr int kOld = 15;
constexpr int kNew = 17;

nlohmann::json ParseReport(const CommandResult& r) {
  size_t brace = r.output.find('{');
  size_t end = r.output.find("\nstderr:");
  if (brace == std::string::npos) return {};
  auto j = nlohmann::json::parse(r.output.substr(brace, end - brace), nullptr, false);
  return j.is_discarded() ? nlohmann::json{} : j;
}

// Every row the old cluster holds is on the new one: the old cluster accepted nothing after the
// fence that the drain did not carry over.
void ExpectOldIsSubsetOfNew(Migration& m, const std::string& table) {
  auto old_ids = Ids(*m.source, table);
  auto new_ids = Ids(*m.target, table);
  ASSERT_TRUE(old_ids.ok() && new_ids.ok());
  std::vector<int64_t> missing;
  for (int64_t id : *old_ids) {
    if (!new_ids->count(id)) missing.push_back(id);
  }
  EXPECT_TRUE(missing.empty()) << table << ": " << missing.size()
                               << " rows only on the old cluster, first " << missing.front();
}

void ExpectAcknowledgedOnNew(Migration& m, Probe& probe) {
  auto new_ids = Ids(*m.target, "probe");
  ASSERT_TRUE(new_ids.ok());
  std::set<int64_t> acked = probe.acknowledged();
  ASSERT_GT(acked.size(), 20u) << "the probe wrote almost nothing";
  int lost = 0;
  for (int64_t n : acked) lost += new_ids->count(n) == 0;
  EXPECT_EQ(lost, 0) << "acknowledged probe inserts missing on the new cluster";
}

// A probe's conninfo as `role`: the writer tries the new cluster first, where it can only log in
// once a roles flip is done, and stays there (`*use_new`) from then on.
std::function<std::string()> FollowNewOnceItLetsIn(Migration& m, const std::string& role,
                                                   std::atomic<bool>* use_new) {
  return [old_ci = m.source->Conninfo("app", role), new_ci = m.target->Conninfo("app", role),
          use_new] {
    ConnectOptions co;
    co.connect_timeout_seconds = 2;
    if (!*use_new && PgConn::Connect(new_ci, co).ok()) *use_new = true;
    return *use_new ? new_ci : old_ci;
  };
}

// Writes still work on the old cluster through `conninfo` (the fence was undone).
void ExpectOldServesWrites(Migration& m, const std::string& conninfo) {
  auto before = m.source->Query("select count(*) from probe", "app");
  ConnectOptions co;
  co.connect_timeout_seconds = 5;
  auto c = PgConn::Connect(conninfo, co);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE(c->Run("insert into probe (n) values (-1)").ok());
  auto after = m.source->Query("select count(*) from probe", "app");
  ASSERT_TRUE(before.ok() && after.ok());
  EXPECT_EQ(std::stoll(*after), std::stoll(*before) + 1);
}

// The timeline names each phase in order; the failed one says "failed: ...", then the undo.
void ExpectFailedAt(const nlohmann::json& report, const std::string& phase,
                    const std::string& message_part, const CommandResult& r) {
  ASSERT_TRUE(report.is_object() && report.contains("phases")) << r.output;
  std::vector<std::string> names;
  std::string failed_detail, undo_detail;
  for (const auto& p : report["phases"]) {
    names.push_back(p["name"].get<std::string>());
    if (names.back() == phase) failed_detail = p["detail"].get<std::string>();
    if (names.back() == "undo" && undo_detail.empty()) undo_detail = p["detail"].get<std::string>();
  }
  std::vector<std::string> want = {"check",     "fence",         "bypass-check",  "drain",
                                   "sequences", "large-objects", "bypass-recheck"};
  if (report.contains("reverse")) want.push_back("reverse");
  want.push_back(phase);
  want.push_back("undo");
  names.resize(std::min(names.size(), want.size()));
  EXPECT_EQ(names, want) << r.output;
  EXPECT_EQ(failed_detail.rfind("failed: ", 0), 0u) << failed_detail;
  EXPECT_NE(failed_detail.find(message_part), std::string::npos) << failed_detail;
  EXPECT_EQ(undo_detail, "fence undone: writers are back on the old cluster") << r.output;
  EXPECT_FALSE(report["ok"].get<bool>());
  EXPECT_TRUE(report["fence_undone"].get<bool>());
  EXPECT_EQ(report["error"]["code"].get<std::string>(), "flip_failed") << r.output;
  EXPECT_EQ(report["error"]["exit_code"].get<int>(), ExitCodeOf(ErrorCode::kFlipFailed));
  EXPECT_GE(report["write_pause_ms"].get<int64_t>(), 0);
  // The same timeline is stored beside the queue (`pgbaton run` holds the queue open).
  std::string stored = report.value("stored_at", "");
  ASSERT_EQ(stored.rfind("/cutover-last.json"), stored.size() - 18) << stored;
  auto kept = nlohmann::json::parse(testing::ReadFile(stored), nullptr, false);
  ASSERT_FALSE(kept.is_discarded()) << stored;
  EXPECT_EQ(kept["id"], report["id"]);
  EXPECT_EQ(kept["phases"], report["phases"]);
  EXPECT_EQ(kept["error"]["code"].get<std::string>(), "flip_failed");
}

TEST(CutoverTest, PgBouncerPauseAndFlipUnderPgbench) {
  Migration m;
  {
    Status st = m.Start(kOld, kNew, /*with_bouncer=*/true);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  std::string via_bouncer = m.bouncer->Conninfo("app");
  Probe probe([&] { return via_bouncer; });
  ProcessOptions po;
  po.stdout_path = m.queue_dir + ".pgbench.log";
  ChildProcess pgbench(
      {"pgbench", "-n", "-c", "4", "-j", "2", "-T", "14", "-P", "2", "-h", "127.0.0.1", "-p",
       std::to_string(m.bouncer->port()), "-U", "postgres", "app"},
      po);
  std::this_thread::sleep_for(std::chrono::seconds(4));
  CommandResult r =
      m.Cutover({"--fence", "pgbouncer:" + m.bouncer->AdminConninfo(), "--flip", "pgbouncer",
                 "--pgbouncer-ini", m.bouncer->ini_path(), "--max-lag", "5s", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  nlohmann::json report = ParseReport(r);
  ASSERT_TRUE(report.is_object()) << r.output;
  EXPECT_TRUE(report["ok"].get<bool>());
  EXPECT_FALSE(report["sentinel_lsn"].get<std::string>().empty());
  // PgBouncer now sends "app" to the new cluster.
  EXPECT_EQ(*m.bouncer->BackendPort("app"), m.target->port());
  EXPECT_FALSE(*m.bouncer->Paused("app"));
  std::this_thread::sleep_for(std::chrono::seconds(2));  // writers continue on the new cluster
  probe.Stop();
  EXPECT_EQ(pgbench.Wait(30000), 0) << testing::ReadFile(po.stdout_path);
  std::string pgbench_out = testing::ReadFile(po.stdout_path);
  EXPECT_EQ(pgbench_out.find("aborted"), std::string::npos) << pgbench_out;
  EXPECT_EQ(probe.errors(), 0) << probe.first_error();
  ExpectAcknowledgedOnNew(m, probe);
  ExpectOldIsSubsetOfNew(m, "probe");
  ExpectOldIsSubsetOfNew(m, "pgbench_history");
  // Writes after the flip reached only the new cluster, with sequence values past the old ones.
  auto old_max = m.source->Query("select max(id) from pgbench_history", "app");
  auto new_max = m.target->Query("select max(id) from pgbench_history", "app");
  ASSERT_TRUE(old_max.ok() && new_max.ok());
  EXPECT_GT(std::stoll(*new_max), std::stoll(*old_max));
  std::printf("probe: %zu acknowledged inserts, largest gap %lld ms, write pause %lld ms\n",
              probe.acknowledged().size(), static_cast<long long>(probe.largest_gap_ms()),
              static_cast<long long>(report["write_pause_ms"].get<int64_t>()));
  // The timeline is stored with the queue (beside it while `run` holds the queue open).
  std::string stored = report.value("stored_at", "");
  EXPECT_FALSE(stored.empty());
}

TEST(CutoverTest, RolesFenceAndFlip) {
  Migration m;
  // The application role exists on both; on the new cluster it cannot log in until the flip.
  {
    Status st = m.Start(kOld, kNew, false, "create role app_rw login");
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  ASSERT_TRUE(m.target->Exec("alter role app_rw nologin").ok());
  std::atomic<bool> use_new{false};
  Probe probe(FollowNewOnceItLetsIn(m, "app_rw", &use_new));
  std::this_thread::sleep_for(std::chrono::seconds(2));
  CommandResult r = m.Cutover({"--fence", "roles:app_rw", "--flip", "roles", "--max-lag", "5s"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::this_thread::sleep_for(std::chrono::seconds(1));
  probe.Stop();
  EXPECT_TRUE(use_new.load());
  EXPECT_EQ(*m.source->Query("select rolcanlogin from pg_roles where rolname = 'app_rw'"), "f");
  EXPECT_EQ(*m.target->Query("select rolcanlogin from pg_roles where rolname = 'app_rw'"), "t");
  ExpectAcknowledgedOnNew(m, probe);
  ExpectOldIsSubsetOfNew(m, "probe");
  std::printf("roles: largest probe gap %lld ms, %d errors seen by the writer\n",
              static_cast<long long>(probe.largest_gap_ms()), probe.errors());
}

// The seed's credential-rotation scheme as the fence: a NOLOGIN group role, two concrete roles
// inheriting from it of which one is LOGIN, a setting on each. `globals --hold-logins` creates the
// concrete roles NOLOGIN on the new cluster; `--fence roles --flip roles` without a list then
// moves exactly the one that was LOGIN: NOLOGIN on the old cluster, LOGIN on the new one.
TEST(CutoverTest, HeldLoginsAreTheRolesFenceAndFlip) {
  Migration m;
  {
    Status st = m.Start(kOld, kNew, false);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  ASSERT_TRUE(m.source
                  ->Exec("create role team nologin; create role team_01 login in role team; "
                         "create role team_02 nologin in role team; "
                         "alter role team_01 set statement_timeout = '1s'; "
                         "alter role team_02 set statement_timeout = '1s'")
                  .ok());
  // Without anything held, the bare form is refused before anything is fenced.
  CommandResult none = m.Cutover({"--fence", "roles", "--flip", "roles", "--max-lag", "5s"});
  EXPECT_EQ(none.exit_code, ExitCodeOf(ErrorCode::kNotFound)) << none.output;
  EXPECT_NE(none.output.find("--hold-logins"), std::string::npos) << none.output;
  CommandResult sync =
      RunCommand({PgbatonBinary(), "globals", "--source", m.source->Conninfo("app"), "--target",
                  m.target->Conninfo("app"), "--apply", "--hold-logins", "team_*"});
  ASSERT_EQ(sync.exit_code, 0) << sync.output;
  EXPECT_EQ(*m.target->Query("select rolcanlogin from pg_roles where rolname = 'team_01'"), "f");

  std::atomic<bool> use_new{false};
  Probe probe(FollowNewOnceItLetsIn(m, "team_01", &use_new));
  std::this_thread::sleep_for(std::chrono::seconds(2));
  CommandResult r = m.Cutover({"--fence", "roles", "--flip", "roles", "--max-lag", "5s"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::this_thread::sleep_for(std::chrono::seconds(1));
  probe.Stop();
  EXPECT_TRUE(use_new.load());
  auto login = [](testing::PgServer& s, const char* role) {
    auto v = s.Query(fmt::format("select rolcanlogin from pg_roles where rolname = '{}'", role));
    return v.ok() ? *v : v.status().ToString();
  };
  EXPECT_EQ(login(*m.source, "team_01"), "f");
  EXPECT_EQ(login(*m.target, "team_01"), "t");
  EXPECT_EQ(login(*m.target, "team_02"), "f");
  EXPECT_EQ(login(*m.target, "team"), "f");
  EXPECT_EQ(login(*m.source, "team_02"), "f");
  ExpectAcknowledgedOnNew(m, probe);
  ExpectOldIsSubsetOfNew(m, "probe");
}

TEST(CutoverTest, ReadOnlyFenceAndCommandFlip) {
  Migration m;
  {
    Status st = m.Start(kOld, kNew, false);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  std::string flag = m.queue_dir + ".flipped";
  std::string old_ci = m.source->Conninfo("app");
  // The hook plays DNS: it writes where writers must go; the writer follows it.
  Probe probe([&] {
    std::string port = testing::ReadFile(flag);
    while (!port.empty() && port.back() == '\n') port.pop_back();
    return port.empty() ? old_ci
                        : fmt::format("host=127.0.0.1 port={} dbname=app user=postgres", port);
  });
  std::this_thread::sleep_for(std::chrono::seconds(2));
  CommandResult r = m.Cutover(
      {"--fence", "readonly", "--flip",
       "command:test \"$PGBATON_TARGET_DBNAME\" = app && echo \"$PGBATON_TARGET_PORT\" > " + flag,
       "--max-lag", "5s"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(testing::ReadFile(flag), std::to_string(m.target->port()) + "\n");
  std::this_thread::sleep_for(std::chrono::seconds(1));
  probe.Stop();
  ExpectAcknowledgedOnNew(m, probe);
  ExpectOldIsSubsetOfNew(m, "probe");
  // New sessions on the old cluster are read-only.
  auto c = m.source->Connect("app");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->Run("insert into probe (n) values (-5)").ok());
}

// Globals are not in the WAL: once pgbaton synced them, a role created or a setting changed on the
// source afterwards is refused at the check (exit 83, nothing fenced), or, with --sync-globals,
// applied inside the fence.
TEST(CutoverTest, GlobalsDriftRefusedThenSyncedInsideTheFence) {
  Migration m;
  {
    Status st = m.Start(kOld, kNew, false);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  CommandResult sync =
      RunCommand({PgbatonBinary(), "globals", "--source", m.source->Conninfo("app"), "--target",
                  m.target->Conninfo("app"), "--apply"});
  ASSERT_EQ(sync.exit_code, 0) << sync.output;
  ASSERT_TRUE(m.source->Exec("CREATE ROLE \"Late Writer\" LOGIN").ok());
  ASSERT_TRUE(m.source->Exec("ALTER ROLE \"Late Writer\" SET statement_timeout = '1s'").ok());
  std::string flag = m.queue_dir + ".flipped";
  const std::vector<std::string> args = {
      "--fence", "readonly", "--flip", "command:echo flipped > " + flag, "--max-lag", "5s"};
  CommandResult refused = m.Cutover(args);
  EXPECT_EQ(refused.exit_code, ExitCodeOf(ErrorCode::kGlobalsDrift)) << refused.output;
  EXPECT_NE(refused.output.find("create role \"Late Writer\""), std::string::npos)
      << refused.output;
  EXPECT_NE(refused.output.find("--sync-globals"), std::string::npos) << refused.output;
  EXPECT_EQ(testing::ReadFile(flag), "");
  ExpectOldServesWrites(m, m.source->Conninfo("app"));

  std::vector<std::string> with_sync = args;
  with_sync.insert(with_sync.end(), {"--sync-globals", "--json"});
  CommandResult r = m.Cutover(with_sync);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(testing::ReadFile(flag), "flipped\n");
  nlohmann::json j = ParseReport(r);
  ASSERT_TRUE(j.is_object()) << r.output;
  bool applied_in_fence = false;
  for (const auto& p : j["phases"]) {
    if (p["name"] == "globals") applied_in_fence = true;
  }
  EXPECT_TRUE(applied_in_fence) << r.output;
  auto setting = m.target->Query(
      "SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s JOIN pg_roles r ON "
      "r.oid = s.setrole WHERE r.rolname = 'Late Writer' AND r.rolcanlogin");
  ASSERT_TRUE(setting.ok());
  EXPECT_EQ(*setting, "statement_timeout=1s");
}

TEST(CutoverTest, DryRunFencesNothing) {
  Migration m;
  {
    Status st = m.Start(kOld, kNew, true);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  std::string ini = testing::ReadFile(m.bouncer->ini_path());
  CommandResult r = m.Cutover({"--fence", "pgbouncer:" + m.bouncer->AdminConninfo(), "--flip",
                               "pgbouncer", "--pgbouncer-ini", m.bouncer->ini_path(), "--max-lag",
                               "5s", "--dry-run", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  nlohmann::json j = ParseReport(r);
  ASSERT_TRUE(j.is_object()) << r.output;
  EXPECT_TRUE(j["dry_run"].get<bool>());
  EXPECT_GE(j["plan"].size(), 4u);
  EXPECT_EQ(j["write_pause_ms"].get<int64_t>(), -1);
  EXPECT_FALSE(*m.bouncer->Paused("app"));
  EXPECT_EQ(testing::ReadFile(m.bouncer->ini_path()), ini);
  EXPECT_EQ(*m.bouncer->BackendPort("app"), m.source->port());
  // A dry run with a role that does not exist fails its check.
  CommandResult bad = m.Cutover(
      {"--fence", "roles:no_such_role", "--flip", "roles", "--max-lag", "5s", "--dry-run"});
  EXPECT_EQ(bad.exit_code, ExitCodeOf(ErrorCode::kNotFound)) << bad.output;
  EXPECT_NE(bad.output.find("no_such_role"), std::string::npos) << bad.output;
}

TEST(CutoverTest, ApplierStoppedRefusesAndOldServes) {
  Migration m;
  {
    Status st = m.Start(kOld, kNew, true);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  m.StopRun();
  CommandResult r = m.Cutover({"--fence", "pgbouncer:" + m.bouncer->AdminConninfo(), "--flip",
                               "pgbouncer", "--pgbouncer-ini", m.bouncer->ini_path(), "--json"});
  EXPECT_EQ(r.exit_code, ExitCodeOf(ErrorCode::kApplierNotRunning)) << r.output;
  // The timeline ends with the check that failed; nothing was fenced.
  nlohmann::json j = ParseReport(r);
  ASSERT_TRUE(j.is_object() && j["phases"].size() == 2u) << r.output;
  EXPECT_EQ(j["phases"][0]["name"], "check");
  EXPECT_EQ(j["phases"][0]["detail"].get<std::string>().rfind("failed: ", 0), 0u) << r.output;
  EXPECT_EQ(j["write_pause_ms"].get<int64_t>(), -1);
  EXPECT_FALSE(*m.bouncer->Paused("app"));
  ExpectOldServesWrites(m, m.bouncer->Conninfo("app"));
}

TEST(CutoverTest, LagTooHighRefusesAndOldServes) {
  Migration m;
  {
    Status st = m.Start(kOld, kNew, true);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  // The applied position is a commit LSN; the source's WAL is always past it by a few bytes, so
  // a one-byte bound cannot be met.
  CommandResult r = m.Cutover({"--fence", "pgbouncer:" + m.bouncer->AdminConninfo(), "--flip",
                               "pgbouncer", "--pgbouncer-ini", m.bouncer->ini_path(), "--max-lag",
                               "5s", "--max-lag-bytes", "1"});
  EXPECT_EQ(r.exit_code, ExitCodeOf(ErrorCode::kLagTooHigh)) << r.output;
  EXPECT_NE(r.output.find("bytes behind"), std::string::npos) << r.output;
  EXPECT_FALSE(*m.bouncer->Paused("app"));
  ExpectOldServesWrites(m, m.bouncer->Conninfo("app"));
}

TEST(CutoverTest, TargetDownAfterFenceUndoesPause) {
  Migration m;
  {
    Status st = m.Start(kOld, kNew, true);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  std::string via_bouncer = m.bouncer->Conninfo("app");
  Probe probe([&] { return via_bouncer; });
  // Kill the new cluster as soon as PgBouncer is paused: the drain cannot finish.
  std::atomic<bool> killed{false};
  std::thread killer([&] {
    for (int i = 0; i < 3000 && !killed; ++i) {
      auto p = m.bouncer->Paused("app");
      if (p.ok() && *p) {
        m.target->Kill();
        killed = true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  std::string ini = testing::ReadFile(m.bouncer->ini_path());
  CommandResult r = m.Cutover({"--fence", "pgbouncer:" + m.bouncer->AdminConninfo(), "--flip",
                               "pgbouncer", "--pgbouncer-ini", m.bouncer->ini_path(), "--max-lag",
                               "5s", "--timeout", "3s", "--json"});
  killer.join();
  ASSERT_TRUE(killed.load()) << r.output;
  EXPECT_NE(r.exit_code, 0) << r.output;
  nlohmann::json j = ParseReport(r);
  ASSERT_TRUE(j.is_object()) << r.output;
  EXPECT_TRUE(j["fence_undone"].get<bool>()) << r.output;
  EXPECT_FALSE(*m.bouncer->Paused("app"));
  EXPECT_EQ(testing::ReadFile(m.bouncer->ini_path()), ini);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  probe.Stop();
  // The probe waited through the pause and carried on writing to the old cluster.
  EXPECT_EQ(probe.errors(), 0) << probe.first_error();
  auto old_ids = Ids(*m.source, "probe");
  ASSERT_TRUE(old_ids.ok());
  for (int64_t n : probe.acknowledged()) EXPECT_TRUE(old_ids->count(n)) << n;
  ExpectOldServesWrites(m, via_bouncer);
}

// The new cluster goes away exactly at the flip: the cutover is frozen (--pause-at before-flip)
// after the drain and the sequences, the target is killed, the cutover goes on. The PgBouncer
// flip finds the new cluster unreachable, leaves pgbouncer.ini as it was and RESUMEs: the writers,
// who only waited, carry on on the old cluster.
TEST(CutoverTest, TargetDownAtFlipUndoesPause) {
  Migration m;
  {
    Status st = m.Start(kOld, kNew, /*with_bouncer=*/true);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  std::string via_bouncer = m.bouncer->Conninfo("app");
  Probe probe([&] { return via_bouncer; });
  std::this_thread::sleep_for(std::chrono::seconds(1));
  std::string ini = testing::ReadFile(m.bouncer->ini_path());
  bool paused = false, fenced_at_flip = false;
  CommandResult r = m.CutoverPausedAt(
      {"--fence", "pgbouncer:" + m.bouncer->AdminConninfo(), "--flip", "pgbouncer",
       "--pgbouncer-ini", m.bouncer->ini_path(), "--max-lag", "5s", "--timeout", "10s", "--json"},
      "before-flip",
      [&] {
        auto p = m.bouncer->Paused("app");
        fenced_at_flip = p.ok() && *p;
        m.target->Kill();
      },
      &paused);
  ASSERT_TRUE(paused) << r.output;
  EXPECT_TRUE(fenced_at_flip) << "pgbouncer was not paused when the cutover reached the flip";
  EXPECT_EQ(r.exit_code, ExitCodeOf(ErrorCode::kFlipFailed)) << r.output;
  nlohmann::json j = ParseReport(r);
  ExpectFailedAt(j, "flip", "new cluster unreachable at the flip", r);
  EXPECT_FALSE(*m.bouncer->Paused("app"));
  EXPECT_EQ(testing::ReadFile(m.bouncer->ini_path()), ini);
  EXPECT_EQ(*m.bouncer->BackendPort("app"), m.source->port());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  probe.Stop();
  // The probe waited through the pause and carried on writing to the old cluster.
  EXPECT_EQ(probe.errors(), 0) << probe.first_error();
  auto old_ids = Ids(*m.source, "probe");
  ASSERT_TRUE(old_ids.ok());
  std::set<int64_t> acked = probe.acknowledged();
  ASSERT_GT(acked.size(), 20u);
  int missing = 0;
  for (int64_t n : acked) missing += old_ids->count(n) == 0;
  EXPECT_EQ(missing, 0) << "acknowledged probe inserts missing on the old cluster";
  ExpectOldServesWrites(m, via_bouncer);
}

// The same with the read-only fence and an operator's hook that checks the new cluster before
// pointing writers at it: the hook fails (psql cannot connect), the database's read-only default
// is reverted, and new sessions on the old cluster write again.
TEST(CutoverTest, TargetDownAtFlipHookRevertsReadOnly) {
  Migration m;
  {
    Status st = m.Start(kOld, kNew, false);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  std::string flag = m.queue_dir + ".flipped";
  bool paused = false, read_only_at_flip = false;
  CommandResult r = m.CutoverPausedAt(
      {"--fence", "readonly", "--flip",
       "command:psql \"$PGBATON_TARGET\" -Atqc 'select 1' && echo \"$PGBATON_TARGET_PORT\" > " +
           flag,
       "--max-lag", "5s", "--timeout", "10s", "--json"},
      "before-flip",
      [&] {
        auto c = m.source->Connect("app");
        read_only_at_flip = c.ok() && !c->Run("insert into probe (n) values (-7)").ok();
        m.target->Kill();
      },
      &paused);
  ASSERT_TRUE(paused) << r.output;
  EXPECT_TRUE(read_only_at_flip) << "the old cluster took a write while fenced";
  EXPECT_EQ(r.exit_code, ExitCodeOf(ErrorCode::kFlipFailed)) << r.output;
  nlohmann::json j = ParseReport(r);
  ExpectFailedAt(j, "flip", "flip hook failed (exit code 2)", r);
  EXPECT_EQ(testing::ReadFile(flag), "") << "the hook flipped to a dead cluster";
  EXPECT_EQ(*m.source->Query("select count(*) from pg_db_role_setting s join pg_database d on "
                             "d.oid = s.setdatabase where d.datname = 'app'"),
            "0");
  ExpectOldServesWrites(m, m.source->Conninfo("app"));
}

// A flip hook that fails after the reverse stream was started (PostgreSQL 16+ on both sides): the
// roles fence is undone, the reverse stream is stopped and its slot and publication dropped on
// the new cluster, so that running the cutover again works (and its reverse stream carries new
// writes back).
TEST(CutoverTest, FlipHookFailureUndoesRolesAndReverse) {
  Migration m;
  {
    Status st = m.Start(17, 18, false, "create role app_rw login");
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  CommandResult r = m.Cutover({"--fence", "roles:app_rw", "--flip", "command:exit 3", "--reverse",
                               "--max-lag", "5s", "--timeout", "20s", "--json"});
  EXPECT_EQ(r.exit_code, ExitCodeOf(ErrorCode::kFlipFailed)) << r.output;
  nlohmann::json j = ParseReport(r);
  ExpectFailedAt(j, "flip", "exit code 3", r);
  ASSERT_TRUE(j.contains("reverse")) << r.output;
  EXPECT_TRUE(j["reverse"]["stopped"].get<bool>()) << r.output;
  int first_pid = j["reverse"]["pid"].get<int>();
  ASSERT_GT(first_pid, 0);
  if (kill(first_pid, 0) == 0) {
    ADD_FAILURE() << "the reverse stream still runs";
    kill(first_pid, SIGKILL);
  }
  EXPECT_EQ(*m.target->Query("select count(*) from pg_replication_slots where slot_name = "
                             "'pgbaton_reverse'"),
            "0");
  EXPECT_EQ(*m.target->Query(
                "select count(*) from pg_publication where pubname = 'pgbaton_reverse'", "app"),
            "0");
  EXPECT_EQ(*m.source->Query("select rolcanlogin from pg_roles where rolname = 'app_rw'"), "t");
  ExpectOldServesWrites(m, m.source->Conninfo("app", "app_rw"));

  // Run again: the check finds no leftover reverse slot, the cutover and its reverse stream work.
  CommandResult again = m.Cutover(
      {"--fence", "roles:app_rw", "--flip", "roles", "--reverse", "--max-lag", "5s", "--json"});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  nlohmann::json j2 = ParseReport(again);
  ASSERT_TRUE(j2.is_object() && j2.contains("reverse")) << again.output;
  int pid = j2["reverse"]["pid"].get<int>();
  ASSERT_GT(pid, 0);
  ReverseStream reverse(pid);
  m.StopRun();
  ASSERT_TRUE(m.target->Exec("insert into probe (n) values (2000)", "app").ok());
  bool arrived = false;
  for (int i = 0; i < 200 && !arrived; ++i) {
    auto n = m.source->Query("select count(*) from probe where n = 2000", "app");
    arrived = n.ok() && *n == "1";
    if (!arrived) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::string log = testing::ReadFile(m.queue_dir + ".reverse.log");
  reverse.Stop();
  EXPECT_TRUE(arrived) << log;
}

// --reverse (PostgreSQL 16+ on both sides): after the cutover, writes on the new cluster reach the
// old one through the reverse stream, nothing loops back, and cutting back (the cutover the other
// way on the reverse stream) works.
TEST(CutoverTest, ReverseStreamCarriesNewWritesBack) {
  Migration m;
  {
    Status st = m.Start(17, 18, false, "create role app_rw login");
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  ASSERT_TRUE(m.source->Exec("insert into probe (n) values (1)", "app").ok());
  CommandResult r = m.Cutover(
      {"--fence", "roles:app_rw", "--flip", "roles", "--reverse", "--max-lag", "5s", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  nlohmann::json j = ParseReport(r);
  ASSERT_TRUE(j.is_object() && j.contains("reverse")) << r.output;
  int pid = j["reverse"]["pid"].get<int>();
  ASSERT_GT(pid, 0);
  ReverseStream reverse(pid);  // stopped at the end of the scope, also when an assertion fails
  // The forward run is done; the reverse one streams new -> old.
  m.StopRun();
  ASSERT_TRUE(m.target->Exec("insert into probe (n) values (1000), (1001)", "app").ok());
  bool arrived = false;
  for (int i = 0; i < 200 && !arrived; ++i) {
    auto n = m.source->Query("select count(*) from probe where n >= 1000", "app");
    arrived = n.ok() && *n == "2";
    if (!arrived) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(arrived) << testing::ReadFile(m.queue_dir + ".reverse.log");
  // The probe rows on the new cluster: the forward stream's and the two written there.
  auto rows = [&](testing::PgServer& s) {
    auto r = s.Query("select coalesce(string_agg(id || ':' || n, ' ' order by id), '') from probe",
                     "app");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : "error: " + r.status().ToString();
  };

  // Cut back as docs/guide/cutover.md says: the cutover the other way, on the reverse stream's
  // name and queue. A row written on the new cluster just before is on the old one when it
  // returns (the drain), the roles are flipped back, and the old cluster's sequence continues.
  ASSERT_TRUE(m.target->Exec("insert into probe (n) values (1002)", "app").ok());
  ProcessOptions po;
  po.stderr_path = m.queue_dir + ".cutback.err";
  CommandResult back = testing::RunCommand(
      {testing::PgbatonBinary(), "--name", "pgbaton_reverse", "cutover", "--source",
       m.target->Conninfo("app"), "--target", m.source->Conninfo("app"), "--queue-dir",
       m.queue_dir + ".reverse", "--fence", "roles:app_rw", "--flip", "roles", "--max-lag", "5s",
       "--json"},
      po);
  back.output += "\nstderr:\n" + testing::ReadFile(po.stderr_path);
  std::string log = testing::ReadFile(m.queue_dir + ".reverse.log");
  reverse.Stop();
  ASSERT_EQ(back.exit_code, 0) << back.output << "\nreverse log:\n" << log;
  EXPECT_TRUE(ParseReport(back)["ok"].get<bool>()) << back.output;
  EXPECT_EQ(*m.source->Query("select count(*) from probe where n = 1002", "app"), "1");
  EXPECT_EQ(*m.target->Query("select rolcanlogin from pg_roles where rolname = 'app_rw'"), "f");
  EXPECT_EQ(*m.source->Query("select rolcanlogin from pg_roles where rolname = 'app_rw'"), "t");
  ExpectOldServesWrites(m, m.source->Conninfo("app", "app_rw"));
  // Nothing looped, nothing lost: row for row, the old cluster holds exactly the new one's probe
  // rows (n = 1, 1000, 1001, 1002, each once with its id) plus the one written there just now.
  std::string on_new = rows(*m.target), on_old = rows(*m.source);
  EXPECT_EQ(*m.target->Query("select string_agg(n::text, ' ' order by n) from probe", "app"),
            "1 1000 1001 1002");
  auto written_on_old = m.source->Query("select id || ':' || n from probe where n = -1", "app");
  ASSERT_TRUE(written_on_old.ok()) << written_on_old.status().ToString();
  EXPECT_EQ(on_old, on_new + " " + *written_on_old) << "old: " << on_old << "\nnew: " << on_new;
}

}  // namespace
}  // namespace pgbaton::testing::cutover

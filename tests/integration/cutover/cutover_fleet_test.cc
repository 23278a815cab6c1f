// `pgbaton cutover` with a fleet of PgBouncers (15 -> 17, `pgbaton run` streaming): HAProxy in
// front of two PgBouncer processes plus a third PgBouncer reached directly, writers through
// HAProxy and through the third during the whole cutover. The fleet flips together; each fault
// (a member's admin console unreachable at the fence, a member killed between fence and flip, the
// new cluster lost at the flip, a member's flip command failing, a client writing straight to the
// source around the poolers)
// ends with every member on one side and no acknowledged write lost.
#include "tests/support/cutover_fleet.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "tests/support/cutover_fixture.h"
#include "tests/support/tcp_proxy.h"

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

// Every number in `acked` is a row of probe on `server` ("no acknowledged write lost").
void ExpectAllOn(PgServer& server, const std::set<int64_t>& acked, const char* what,
                 size_t at_least = 11) {
  auto ids = Ids(server, "probe");
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  ASSERT_GE(acked.size(), at_least) << what << ": the writer wrote almost nothing";
  int lost = 0;
  int64_t first = 0;
  for (int64_t n : acked) {
    if (!ids->count(n)) {
      if (lost++ == 0) first = n;
    }
  }
  EXPECT_EQ(lost, 0) << what << ": acknowledged inserts missing on port " << server.port()
                     << ", first " << first;
}

// The members' states in the report, "name=state/points_at" joined.
std::string States(const nlohmann::json& report) {
  std::string out;
  if (!report.contains("poolers")) return "(no poolers in the report)";
  for (const auto& p : report["poolers"]) {
    out += p["state"].get<std::string>() + "/" + p["points_at"].get<std::string>() + " ";
  }
  return out;
}

// A client that bypasses the poolers: one connection straight to the source, inserting a
// numbered row (n from 1,000,000 up) every few ms; stops at the first error (it does not
// reconnect: a terminated session stays gone).
class DirectWriter {
 public:
  explicit DirectWriter(std::string conninfo)
      : conninfo_(std::move(conninfo)), thread_([this] { Loop(); }) {}
  ~DirectWriter() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::set<int64_t> acknowledged() {
    std::lock_guard<std::mutex> l(mu_);
    return acked_;
  }
  std::string error() {
    std::lock_guard<std::mutex> l(mu_);
    return error_;
  }

 private:
  void Loop() {
    ConnectOptions co;
    co.application_name = "bypass-writer";
    auto c = PgConn::Connect(conninfo_, co);
    if (!c.ok()) {
      std::lock_guard<std::mutex> l(mu_);
      error_ = c.status().message();
      return;
    }
    for (int64_t n = 1000000; !stop_; ++n) {
      Status s = c->Run(fmt::format("insert into probe (n) values ({})", n));
      {
        std::lock_guard<std::mutex> l(mu_);
        if (!s.ok()) {
          error_ = s.message();
          return;
        }
        acked_.insert(n);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(3));
    }
  }
  std::string conninfo_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::set<int64_t> acked_;
  std::string error_;
  std::thread thread_;
};

class CutoverFleetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status st = m_.Start(kOld, kNew, /*with_bouncer=*/false);
    ASSERT_TRUE(st.ok()) << st.ToString();
    st = fleet_.Start(*m_.source);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  std::vector<std::string> Flags(std::vector<std::string> f, const std::vector<std::string>& more) {
    f.insert(f.end(), more.begin(), more.end());
    return f;
  }

  Migration m_;
  BouncerFleet fleet_;
};

// The whole fleet flips at once under pgbench and two probes: every acknowledged write on the new
// cluster, no client error, sequences continue, every member resumed on the new cluster.
TEST_F(CutoverFleetTest, ThreeMembersFlipTogether) {
  Probe via_haproxy([&] { return fleet_.ViaHaProxy(); });
  Probe direct([&] { return fleet_.Direct(); });
  ProcessOptions po1, po2;
  po1.stdout_path = m_.queue_dir + ".pgbench1.log";
  po2.stdout_path = m_.queue_dir + ".pgbench2.log";
  ChildProcess pgbench1({"pgbench", "-n", "-c", "4", "-j", "2", "-T", "14", "-h", "127.0.0.1", "-p",
                         std::to_string(fleet_.haproxy->port()), "-U", "postgres", "app"},
                        po1);
  ChildProcess pgbench2({"pgbench", "-n", "-c", "2", "-j", "1", "-T", "14", "-h", "127.0.0.1", "-p",
                         std::to_string(fleet_.bouncers[2]->port()), "-U", "postgres", "app"},
                        po2);
  std::this_thread::sleep_for(std::chrono::seconds(4));
  CommandResult r = m_.Cutover(Flags(fleet_.CutoverFlags(), {"--max-lag", "5s", "--json"}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  nlohmann::json j = ParseReport(r);
  ASSERT_TRUE(j.is_object()) << r.output;
  ASSERT_EQ(j["poolers"].size(), 3u) << r.output;
  for (const auto& p : j["poolers"]) {
    EXPECT_EQ(p["state"], "resumed") << r.output;
    EXPECT_EQ(p["points_at"], "new") << r.output;
  }
  EXPECT_FALSE(j.contains("bypassing")) << r.output;
  std::string why;
  EXPECT_TRUE(fleet_.AllOn(m_.target->port(), &why)) << why;
  std::this_thread::sleep_for(std::chrono::seconds(2));  // writers go on on the new cluster
  via_haproxy.Stop();
  direct.Stop();
  EXPECT_EQ(pgbench1.Wait(30000), 0) << ReadFile(po1.stdout_path);
  EXPECT_EQ(pgbench2.Wait(30000), 0) << ReadFile(po2.stdout_path);
  for (const auto& log : {po1.stdout_path, po2.stdout_path}) {
    std::string out = ReadFile(log);
    EXPECT_EQ(out.find("aborted"), std::string::npos) << out;
  }
  EXPECT_EQ(via_haproxy.errors(), 0) << via_haproxy.first_error();
  EXPECT_EQ(direct.errors(), 0) << direct.first_error();
  ExpectAllOn(*m_.target, via_haproxy.acknowledged(), "probe through haproxy");
  ExpectAllOn(*m_.target, direct.acknowledged(), "probe through the third pgbouncer");
  // Writes after the flip went to the new cluster only, with sequence values past the old ones.
  auto old_max = m_.source->Query("select max(id) from pgbench_history", "app");
  auto new_max = m_.target->Query("select max(id) from pgbench_history", "app");
  ASSERT_TRUE(old_max.ok() && new_max.ok());
  EXPECT_GT(std::stoll(*new_max), std::stoll(*old_max));
  auto old_probe = Ids(*m_.source, "probe");
  auto new_probe = Ids(*m_.target, "probe");
  ASSERT_TRUE(old_probe.ok() && new_probe.ok());
  for (int64_t id : *old_probe) EXPECT_TRUE(new_probe->count(id)) << "only on old: " << id;
  std::printf(
      "fleet: write pause %lld ms; largest probe gap %lld ms through haproxy, %lld ms direct\n",
      static_cast<long long>(j["write_pause_ms"].get<int64_t>()),
      static_cast<long long>(via_haproxy.largest_gap_ms()),
      static_cast<long long>(direct.largest_gap_ms()));
}

// One member's admin console becomes unreachable right before the fence (the network to it is
// cut; the PgBouncer itself keeps serving): its PAUSE fails, the others are resumed, every
// member serves on the old cluster and the writers saw no error.
TEST_F(CutoverFleetTest, AdminUnreachableAtFenceResumesAllOnOld) {
  auto proxy = TcpProxy::Start(fleet_.bouncers[1]->port());
  ASSERT_TRUE(proxy.ok()) << proxy.status().ToString();
  std::unique_ptr<TcpProxy> admin_path = std::move(*proxy);
  std::string admin1 =
      fmt::format("host=127.0.0.1 port={} dbname=pgbouncer user=postgres", admin_path->port());
  Probe via_haproxy([&] { return fleet_.ViaHaProxy(); });
  Probe direct([&] { return fleet_.Direct(); });
  std::this_thread::sleep_for(std::chrono::seconds(1));
  bool paused = false;
  CommandResult r = m_.CutoverPausedAt(
      Flags(fleet_.CutoverFlags(
                [&](int i) { return i == 1 ? admin1 : fleet_.bouncers[i]->AdminConninfo(); }),
            {"--max-lag", "5s", "--flip-timeout", "2s", "--json"}),
      "before-fence", [&] { admin_path.reset(); }, &paused);
  ASSERT_TRUE(paused) << r.output;
  EXPECT_EQ(r.exit_code, ExitCodeOf(ErrorCode::kFenceFailed)) << r.output;
  nlohmann::json j = ParseReport(r);
  ASSERT_TRUE(j.is_object() && j.contains("poolers")) << r.output;
  EXPECT_EQ(j["poolers"][0]["state"], "resumed") << States(j);
  EXPECT_EQ(j["poolers"][1]["state"], "failed") << States(j);
  EXPECT_EQ(j["poolers"][2]["state"], "resumed") << States(j);
  for (const auto& p : j["poolers"]) EXPECT_EQ(p["points_at"], "old") << States(j);
  EXPECT_GE(j["write_pause_ms"].get<int64_t>(), 0) << r.output;
  // The RESUME for the unreachable member could not be delivered either: the report says so
  // rather than claiming the fence was undone everywhere.
  EXPECT_FALSE(j["fence_undone"].get<bool>()) << r.output;
  EXPECT_NE(j["error"]["message"].get<std::string>().find("undoing it failed"), std::string::npos)
      << r.output;
  std::string why;
  EXPECT_TRUE(fleet_.AllOn(m_.source->port(), &why)) << why;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  via_haproxy.Stop();
  direct.Stop();
  EXPECT_EQ(via_haproxy.errors(), 0) << via_haproxy.first_error();
  EXPECT_EQ(direct.errors(), 0) << direct.first_error();
  ExpectAllOn(*m_.source, via_haproxy.acknowledged(), "probe through haproxy");
  ExpectAllOn(*m_.source, direct.acknowledged(), "probe through the third pgbouncer");
}

// A member (behind HAProxy) is killed after the drain, before the flip: it cannot be flipped,
// the others (already pointed at the new cluster, still paused) are pointed back after
// --flip-timeout and resumed on the old cluster; the dead member's ini still names the old one.
TEST_F(CutoverFleetTest, MemberKilledBeforeFlipFlipsAllBack) {
  Probe via_haproxy([&] { return fleet_.ViaHaProxy(); });
  Probe direct([&] { return fleet_.Direct(); });
  std::this_thread::sleep_for(std::chrono::seconds(1));
  bool paused = false;
  CommandResult r = m_.CutoverPausedAt(
      Flags(fleet_.CutoverFlags(), {"--max-lag", "5s", "--flip-timeout", "2s", "--json"}),
      "before-flip", [&] { fleet_.bouncers[1]->Kill(); }, &paused);
  ASSERT_TRUE(paused) << r.output;
  EXPECT_EQ(r.exit_code, ExitCodeOf(ErrorCode::kFlipFailed)) << r.output;
  nlohmann::json j = ParseReport(r);
  ASSERT_TRUE(j.is_object() && j.contains("poolers")) << r.output;
  EXPECT_EQ(j["poolers"][0]["state"], "resumed") << States(j);
  EXPECT_EQ(j["poolers"][1]["state"], "failed") << States(j);
  EXPECT_EQ(j["poolers"][2]["state"], "resumed") << States(j);
  for (const auto& p : j["poolers"]) EXPECT_EQ(p["points_at"], "old") << States(j);
  EXPECT_GE(j["poolers"][1]["flip_attempts"].get<int>(), 2) << r.output;
  EXPECT_GE(j["poolers"][0]["flip_attempts"].get<int>(), 1) << r.output;
  std::string why;
  // The live members serve on the old cluster; the dead one's ini was never changed.
  EXPECT_TRUE(fleet_.AllOn(m_.source->port(), &why, /*dead=*/{1})) << why;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  via_haproxy.Stop();
  direct.Stop();
  // The probe through HAProxy may have been on the killed member (its errors are the kill's);
  // the direct one only waited.
  EXPECT_EQ(direct.errors(), 0) << direct.first_error();
  ExpectAllOn(*m_.source, via_haproxy.acknowledged(), "probe through haproxy");
  ExpectAllOn(*m_.source, direct.acknowledged(), "probe through the third pgbouncer");
  // Nothing reached the new cluster after the drain: the rows there are a subset of the old.
  auto old_ids = Ids(*m_.source, "probe");
  auto new_ids = Ids(*m_.target, "probe");
  ASSERT_TRUE(old_ids.ok() && new_ids.ok());
  for (int64_t id : *new_ids) EXPECT_TRUE(old_ids->count(id)) << "only on new: " << id;
}

// The new cluster is lost right before the flip: no member is changed, all resume on the old
// cluster, the writers only waited.
TEST_F(CutoverFleetTest, TargetLostAtFlipResumesAllOnOld) {
  Probe via_haproxy([&] { return fleet_.ViaHaProxy(); });
  Probe direct([&] { return fleet_.Direct(); });
  std::this_thread::sleep_for(std::chrono::seconds(1));
  std::vector<std::string> inis;
  for (const auto& b : fleet_.bouncers) inis.push_back(ReadFile(b->ini_path()));
  bool paused = false;
  CommandResult r = m_.CutoverPausedAt(
      Flags(fleet_.CutoverFlags(), {"--max-lag", "5s", "--flip-timeout", "2s", "--json"}),
      "before-flip", [&] { m_.target->Kill(); }, &paused);
  ASSERT_TRUE(paused) << r.output;
  EXPECT_EQ(r.exit_code, ExitCodeOf(ErrorCode::kFlipFailed)) << r.output;
  EXPECT_NE(r.output.find("new cluster unreachable at the flip"), std::string::npos) << r.output;
  nlohmann::json j = ParseReport(r);
  ASSERT_TRUE(j.is_object() && j.contains("poolers")) << r.output;
  EXPECT_TRUE(j["fence_undone"].get<bool>()) << r.output;
  for (const auto& p : j["poolers"]) {
    EXPECT_EQ(p["state"], "resumed") << States(j);
    EXPECT_EQ(p["points_at"], "old") << States(j);
  }
  for (size_t i = 0; i < inis.size(); ++i) {
    EXPECT_EQ(ReadFile(fleet_.bouncers[i]->ini_path()), inis[i]) << "member " << i;
  }
  std::string why;
  EXPECT_TRUE(fleet_.AllOn(m_.source->port(), &why)) << why;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  via_haproxy.Stop();
  direct.Stop();
  EXPECT_EQ(via_haproxy.errors(), 0) << via_haproxy.first_error();
  EXPECT_EQ(direct.errors(), 0) << direct.first_error();
  ExpectAllOn(*m_.source, via_haproxy.acknowledged(), "probe through haproxy");
  ExpectAllOn(*m_.source, direct.acknowledged(), "probe through the third pgbouncer");
}

// The third member's flip command fails: it is retried until --flip-timeout, then the two
// members already pointed at the new cluster are pointed back, and all three resume on the old.
TEST_F(CutoverFleetTest, FlipCommandFailingFlipsAllBack) {
  Probe via_haproxy([&] { return fleet_.ViaHaProxy(); });
  Probe direct([&] { return fleet_.Direct(); });
  std::this_thread::sleep_for(std::chrono::seconds(1));
  CommandResult r =
      m_.Cutover(Flags(fleet_.CutoverFlags(nullptr, fleet_.FlipCommand(2, /*fail_to_new=*/true)),
                       {"--max-lag", "5s", "--flip-timeout", "1500ms", "--json"}));
  EXPECT_EQ(r.exit_code, ExitCodeOf(ErrorCode::kFlipFailed)) << r.output;
  EXPECT_NE(r.output.find("exit code 7"), std::string::npos) << r.output;
  nlohmann::json j = ParseReport(r);
  ASSERT_TRUE(j.is_object() && j.contains("poolers")) << r.output;
  EXPECT_TRUE(j["fence_undone"].get<bool>()) << r.output;
  for (const auto& p : j["poolers"]) {
    EXPECT_EQ(p["state"], "resumed") << States(j);
    EXPECT_EQ(p["points_at"], "old") << States(j);
  }
  EXPECT_GE(j["poolers"][2]["flip_attempts"].get<int>(), 3) << r.output;
  std::string why;
  EXPECT_TRUE(fleet_.AllOn(m_.source->port(), &why)) << why;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  via_haproxy.Stop();
  direct.Stop();
  EXPECT_EQ(via_haproxy.errors(), 0) << via_haproxy.first_error();
  EXPECT_EQ(direct.errors(), 0) << direct.first_error();
  ExpectAllOn(*m_.source, via_haproxy.acknowledged(), "probe through haproxy");
  ExpectAllOn(*m_.source, direct.acknowledged(), "probe through the third pgbouncer");
}

// A client writes straight to the source, around the poolers. By default the cutover names it
// and aborts (every member resumed on the old cluster); with --terminate-bypass it ends that
// session and goes on: the writer's acknowledged rows reach the new cluster with the others.
TEST_F(CutoverFleetTest, BypassingClientAbortsOrIsTerminated) {
  Probe via_haproxy([&] { return fleet_.ViaHaProxy(); });
  {
    DirectWriter bypass(m_.source->Conninfo("app"));
    std::this_thread::sleep_for(std::chrono::seconds(1));
    CommandResult r = m_.Cutover(Flags(fleet_.CutoverFlags(), {"--max-lag", "5s", "--json"}));
    EXPECT_EQ(r.exit_code, ExitCodeOf(ErrorCode::kFenceBypassed)) << r.output;
    EXPECT_NE(r.output.find("bypass-writer"), std::string::npos) << r.output;
    nlohmann::json j = ParseReport(r);
    ASSERT_TRUE(j.is_object() && j.contains("bypassing")) << r.output;
    EXPECT_EQ(j["bypassing"][0]["application"], "bypass-writer");
    EXPECT_FALSE(j["bypassing"][0]["terminated"].get<bool>());
    EXPECT_TRUE(j["fence_undone"].get<bool>()) << r.output;
    EXPECT_NE(j["error"]["hint"].get<std::string>().find("--terminate-bypass"), std::string::npos);
    std::string why;
    EXPECT_TRUE(fleet_.AllOn(m_.source->port(), &why)) << why;
    EXPECT_EQ(bypass.error(), "") << "the bypassing writer was not left alone";
    bypass.Stop();
    ExpectAllOn(*m_.source, bypass.acknowledged(), "bypassing writer");
  }
  // Again with --terminate-bypass: the writer's session ends, the cutover completes.
  DirectWriter bypass(m_.source->Conninfo("app"));
  std::this_thread::sleep_for(std::chrono::seconds(1));
  CommandResult r =
      m_.Cutover(Flags(fleet_.CutoverFlags(), {"--max-lag", "5s", "--terminate-bypass", "--json"}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  nlohmann::json j = ParseReport(r);
  ASSERT_TRUE(j.is_object() && j.contains("bypassing")) << r.output;
  EXPECT_TRUE(j["bypassing"][0]["terminated"].get<bool>()) << r.output;
  bypass.Stop();
  EXPECT_NE(bypass.error(), "") << "the bypassing writer's session was not ended";
  std::string why;
  EXPECT_TRUE(fleet_.AllOn(m_.target->port(), &why)) << why;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  via_haproxy.Stop();
  EXPECT_EQ(via_haproxy.errors(), 0) << via_haproxy.first_error();
  ExpectAllOn(*m_.target, via_haproxy.acknowledged(), "probe through haproxy");
  ExpectAllOn(*m_.target, bypass.acknowledged(), "bypassing writer (terminated)");
}

// A client that starts writing straight to the source while the fleet is paused, after the first
// look: the look after the drain finds it. By default that aborts; with --terminate-bypass it is
// ended and the drain runs again, so that what it wrote after the first sentinel (acknowledged
// to it) is on the new cluster too.
TEST_F(CutoverFleetTest, BypassDuringDrainIsFoundAgainAndDrainedAgain) {
  for (bool terminate : {false, true}) {
    SCOPED_TRACE(terminate ? "--terminate-bypass" : "default");
    std::unique_ptr<DirectWriter> bypass;
    std::vector<std::string> extra = {"--max-lag", "5s", "--json"};
    if (terminate) extra.push_back("--terminate-bypass");
    bool paused = false;
    // CutoverPausedAt appends to these: start each round with empty ones.
    std::remove((m_.queue_dir + ".cutover.out").c_str());
    std::remove((m_.queue_dir + ".cutover.err").c_str());
    CommandResult r = m_.CutoverPausedAt(
        Flags(fleet_.CutoverFlags(), extra), "after-fence",
        [&] {
          bypass = std::make_unique<DirectWriter>(m_.source->Conninfo("app"));
          for (int i = 0; i < 500 && bypass->acknowledged().size() < 20; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
          }
        },
        &paused);
    ASSERT_TRUE(paused) << r.output;
    ASSERT_TRUE(bypass);
    nlohmann::json j = ParseReport(r);
    ASSERT_TRUE(j.is_object() && j.contains("phases")) << r.output;
    std::vector<std::string> names;
    for (const auto& p : j["phases"]) names.push_back(p["name"].get<std::string>());
    if (!terminate) {
      EXPECT_EQ(r.exit_code, ExitCodeOf(ErrorCode::kFenceBypassed)) << r.output;
      EXPECT_NE(r.output.find("during the drain"), std::string::npos) << r.output;
      std::string why;
      EXPECT_TRUE(fleet_.AllOn(m_.source->port(), &why)) << why;
      bypass->Stop();
      EXPECT_EQ(bypass->error(), "");
      ExpectAllOn(*m_.source, bypass->acknowledged(), "bypassing writer", 20);
      continue;
    }
    ASSERT_EQ(r.exit_code, 0) << r.output;
    // drain, sequences, large-objects, bypass-recheck twice: the second drain took the writer's
    // last rows.
    EXPECT_EQ(std::count(names.begin(), names.end(), "drain"), 2) << r.output;
    EXPECT_EQ(std::count(names.begin(), names.end(), "bypass-recheck"), 2) << r.output;
    bypass->Stop();
    EXPECT_NE(bypass->error(), "") << "the bypassing session was not ended";
    std::string why;
    EXPECT_TRUE(fleet_.AllOn(m_.target->port(), &why)) << why;
    ExpectAllOn(*m_.target, bypass->acknowledged(), "bypassing writer (terminated in the drain)",
                20);
  }
}

// The fleet from the config file ([[cutover.pgbouncer]], no --fence on the command line): a dry
// run checks all three and fences none; a list of another length, and a member that cannot be
// reached, are errors naming them, before anything is fenced.
TEST_F(CutoverFleetTest, ConfigFileFleetDryRunAndErrors) {
  std::string toml = "[cutover]\nflip-timeout = \"3s\"\n";
  for (int i = 0; i < 3; ++i) {
    toml +=
        fmt::format("[[cutover.pgbouncer]]\nadmin = \"{}\"\n", fleet_.bouncers[i]->AdminConninfo());
    if (i < 2) {
      toml += fmt::format("ini = \"{}\"\n", fleet_.bouncers[i]->ini_path());
    } else {
      toml += fmt::format("flip_cmd = '''{}'''\n", fleet_.FlipCommand(2));
    }
  }
  std::string config = m_.queue_dir + ".fleet.toml";
  WriteFile(config, toml);
  CommandResult r = m_.Cutover({"--config", config, "--max-lag", "5s", "--dry-run", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output << "\nconfig:\n" << toml;
  nlohmann::json j = ParseReport(r);
  ASSERT_TRUE(j.is_object()) << r.output;
  EXPECT_NE(j["fence"].get<std::string>().find("on 3 pgbouncers"), std::string::npos) << r.output;
  ASSERT_EQ(j["poolers"].size(), 3u) << r.output;
  EXPECT_EQ(j["poolers"][2]["flip"].get<std::string>().rfind("command ", 0), 0u) << r.output;
  for (const auto& p : j["poolers"]) EXPECT_EQ(p["state"], "pending") << r.output;
  std::string why;
  EXPECT_TRUE(fleet_.AllOn(m_.source->port(), &why)) << why;

  // Two --fence pgbouncer: with one --pgbouncer-ini.
  CommandResult bad = m_.Cutover({"--fence", "pgbouncer:" + fleet_.bouncers[0]->AdminConninfo(),
                                  "--fence", "pgbouncer:" + fleet_.bouncers[1]->AdminConninfo(),
                                  "--pgbouncer-ini", fleet_.bouncers[0]->ini_path(), "--dry-run"});
  EXPECT_EQ(bad.exit_code, ExitCodeOf(ErrorCode::kUsage)) << bad.output;
  EXPECT_NE(bad.output.find("--pgbouncer-ini is given 1 times for 2"), std::string::npos)
      << bad.output;

  // A member whose console does not answer: the check names it, nothing is paused.
  int closed = FreePort();
  CommandResult down = m_.Cutover(Flags(fleet_.CutoverFlags([&](int i) {
    return i == 2 ? fmt::format("host=127.0.0.1 port={} dbname=pgbouncer user=postgres", closed)
                  : fleet_.bouncers[i]->AdminConninfo();
  }),
                                        {"--max-lag", "5s"}));
  EXPECT_EQ(down.exit_code, ExitCodeOf(ErrorCode::kConnection)) << down.output;
  EXPECT_NE(down.output.find(fmt::format("pgbouncer 3 (127.0.0.1:{}/pgbouncer)", closed)),
            std::string::npos)
      << down.output;
  EXPECT_TRUE(fleet_.AllOn(m_.source->port(), &why)) << why;
}

}  // namespace
}  // namespace pgbaton::testing::cutover

// Protecting the source during `pgbaton copy` against real servers:
// - --max-copy-rate: three workers copying a ~23 MB table share one cap; the copy's measured rate
//   (bytes over the data phase's seconds) is at most the cap plus 5%, and the target is identical.
//   This is a bound, not a speed test: a slow machine only makes it pass more easily, and a cap
//   that is ignored fails it (on loopback the table copies in well under a second).
// - the signals of --source-load-limit read from a real 15 with a physical standby and a logical
//   walsender: busy sessions counted without the copy's own; a paused standby's replay lag.
// - the monitor: busy sessions close the gate from its first sample; a source that cannot be read
//   keeps it closed for a while, then opens it rather than holding the copy forever.
// - --source-load-limit standby-lag: with the standby's replay paused under writes, the copy
//   pauses (no row reaches the target); once replay resumes, it resumes and ends identical.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/copy_fixture.h"
#include "tests/support/pg_test.h"
#include "tools/initial_copy/source_load.h"

namespace pgbaton::testing::copy {
namespace {

TEST(CopyThrottleTest, MaxCopyRateCapsAllWorkersTogetherAndTheTargetIsIdentical) {
  std::unique_ptr<PgServer> src, dst;
  ASSERT_NO_FATAL_FAILURE(StartSourceAndTarget(R"SQL(
CREATE TABLE big (id int PRIMARY KEY, pad text NOT NULL);
INSERT INTO big SELECT i, repeat(md5(i::text), 3) FROM generate_series(1, 200000) i;
CREATE TABLE other (id int PRIMARY KEY, v text);
INSERT INTO other SELECT i, md5(i::text) FROM generate_series(1, 20000) i;
)SQL",
                                               &src, &dst, 15, 17));
  QueueDir qdir;
  constexpr double kCap = 6 << 20;  // 6MB: 1024-based, as the flag reads it
  CommandResult r = RunCopy(
      *src, "app", *dst, "app", qdir, "pgbaton",
      {"--jobs", "3", "--chunk-bytes", "4194304", "--max-copy-rate", "6MB", "--progress", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string summary_line = LastLineWith(r.output, "\"summary\":\"done\"");
  ASSERT_FALSE(summary_line.empty()) << r.output;
  nlohmann::json summary = nlohmann::json::parse(summary_line);
  const double bytes = summary["bytes"].get<double>();
  const double data_s = summary["phases_s"]["data"].get<double>();
  // The table is what the bound is about: ~23 MB moved, ~4 s at the cap.
  ASSERT_GT(bytes, 20e6) << summary_line;
  const double rate = bytes / data_s;
  std::printf("copied %.1f MB in %.2f s of data phase: %.2f MB/s under a cap of %.2f MB/s\n",
              bytes / 1e6, data_s, rate / 1e6, kCap / 1e6);
  RecordProperty("measured_rate_bytes_per_s", std::to_string(static_cast<int64_t>(rate)));
  // The bucket lets through at most the cap times the elapsed time plus a 50 ms burst, so 5% is
  // a generous tolerance; equivalently the data phase lasts at least bytes / cap / 1.05.
  EXPECT_LE(rate, kCap * 1.05) << summary_line;
  EXPECT_GE(data_s, bytes / kCap / 1.05) << summary_line;
  EXPECT_NE(r.output.find("\"rate_cap_bytes_per_s\":6291456"), std::string::npos) << r.output;
  EXPECT_EQ(TablesDigest(*src, "app", {"public.big", "public.other"}),
            TablesDigest(*dst, "app", {"public.big", "public.other"}));
}

// A physical standby of `primary` that reports its positions every second.
std::unique_ptr<PgServer> StartStandby(const PgServer& primary) {
  auto s = PgServer::Start({.major = primary.major(),
                            .settings = {{"wal_receiver_status_interval", "'1s'"}},
                            .standby_of = &primary});
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(*s) : nullptr;
}

// The largest replay lag pg_stat_replication shows, in seconds ("" when NULL).
std::string ReplayLag(const PgServer& primary) {
  auto r = primary.Query(
      "SELECT COALESCE(EXTRACT(epoch FROM max(replay_lag))::text, '') FROM pg_stat_replication");
  return r.ok() ? *r : "error: " + r.status().ToString();
}

TEST(SourceLoadSignalsTest, CountsOtherActiveSessionsAndReadsPhysicalStandbysReplayLag) {
  auto src = StartServer(15);
  ASSERT_TRUE(src);
  ASSERT_TRUE(src->Exec("CREATE DATABASE app").ok());
  ASSERT_TRUE(src->Exec("CREATE TABLE t (v int); CREATE PUBLICATION p FOR TABLE t", "app").ok());
  auto standby = StartStandby(*src);
  ASSERT_TRUE(standby);

  // A logical walsender (as migrate's decoder is): connected to a database, so datid is set;
  // the physical standby's walsender is not. The signal tells them apart by that.
  ConnectOptions rep;
  rep.replication = true;
  auto logical = PgConn::Connect(src->Conninfo("app"), rep);
  ASSERT_TRUE(logical.ok()) << logical.status().ToString();
  ASSERT_TRUE(logical->Run("CREATE_REPLICATION_SLOT s LOGICAL pgoutput").ok());
  PgResult streaming(PQexec(logical->raw(),
                            "START_REPLICATION SLOT s LOGICAL 0/0 (proto_version '1', "
                            "publication_names 'p')"));
  ASSERT_EQ(PQresultStatus(streaming.raw()), PGRES_COPY_BOTH);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto n = src->Query(
            "SELECT count(*) FILTER (WHERE a.datid IS NULL) || '/' || "
            "count(*) FILTER (WHERE a.datid IS NOT NULL) FROM pg_stat_replication r "
            "JOIN pg_stat_activity a ON a.pid = r.pid WHERE r.state = 'streaming'");
        return n.ok() && *n == "1/1";  // one physical, one logical
      },
      30))
      << "expected one physical and one logical walsender";

  // Three busy sessions, one of them "the copy's own": two count.
  std::vector<PgConn> busy;
  for (int i = 0; i < 3; ++i) {
    auto c = src->Connect("app");
    ASSERT_TRUE(c.ok());
    ASSERT_EQ(PQsendQuery(c->raw(), "SELECT pg_sleep(60)"), 1);
    busy.push_back(std::move(*c));
  }
  auto conn = src->Connect("app");
  ASSERT_TRUE(conn.ok());
  const tools::copy::SourceLoadLimits limits{.active_sessions = 1,
                                             .standby_lag = std::chrono::seconds(1)};
  const std::vector<int> own = {PQbackendPID(busy[0].raw())};
  ASSERT_TRUE(WaitFor(
      [&] {
        auto s = tools::copy::ReadSourceLoad(*conn, limits, own);
        return s.ok() && s->active_sessions == 2;
      },
      10));
  auto idle = tools::copy::ReadSourceLoad(*conn, limits, own);
  ASSERT_TRUE(idle.ok()) << idle.status().ToString();
  EXPECT_LT(*idle->standby_lag_seconds, 1.0) << ReplayLag(*src);
  ASSERT_TRUE(src->Exec("SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity WHERE "
                        "query = 'SELECT pg_sleep(60)'")
                  .ok());

  // Replay paused on the standby while the primary writes: its replay lag grows.
  ASSERT_TRUE(standby->Exec("SELECT pg_wal_replay_pause()").ok());
  BackgroundWriter writer(src->Conninfo("app"), 1, [](std::mt19937&, int n) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return fmt::format("INSERT INTO t VALUES ({})", n);
  });
  bool lagging = WaitFor(
      [&] {
        auto s = tools::copy::ReadSourceLoad(*conn, limits, {});
        return s.ok() && *s->standby_lag_seconds > 2.0;
      },
      30);
  EXPECT_TRUE(lagging) << "replay_lag: " << ReplayLag(*src);
  ASSERT_TRUE(standby->Exec("SELECT pg_wal_replay_resume()").ok());
  bool caught_up = WaitFor(
      [&] {
        auto s = tools::copy::ReadSourceLoad(*conn, limits, {});
        return s.ok() && *s->standby_lag_seconds < 0.8;
      },
      30);
  EXPECT_TRUE(caught_up) << "replay_lag: " << ReplayLag(*src);
  writer.Stop();
  EXPECT_EQ(writer.error(), "");
}

TEST(SourceLoadMonitorTest, ClosesOnBusySessionsAndOpensWhenTheSourceCannotBeReadForLong) {
  auto src = StartServer(15);
  ASSERT_TRUE(src);
  std::vector<PgConn> busy;
  for (int i = 0; i < 3; ++i) {
    auto c = src->Connect();
    ASSERT_TRUE(c.ok());
    ASSERT_EQ(PQsendQuery(c->raw(), "SELECT pg_sleep(60)"), 1);
    busy.push_back(std::move(*c));
  }
  tools::copy::LoadGate gate(tools::copy::SourceLoadLimits{.active_sessions = 1});
  tools::copy::SourceLoadMonitorOptions mo;
  mo.conninfo = src->Conninfo();
  mo.limits = tools::copy::SourceLoadLimits{.active_sessions = 1};
  mo.interval = std::chrono::milliseconds(100);
  mo.give_up_after = std::chrono::milliseconds(1500);
  std::vector<bool> changes;
  std::mutex mu;
  mo.on_change = [&](bool paused, const std::string&, const std::vector<std::string>&) {
    std::lock_guard<std::mutex> l(mu);
    changes.push_back(paused);
  };
  tools::copy::SourceLoadMonitor monitor(mo, &gate);
  // The constructor's own first sample already closed it.
  EXPECT_TRUE(gate.paused()) << gate.reason();
  EXPECT_NE(gate.reason().find("active sessions"), std::string::npos) << gate.reason();
  // The source goes away (its sessions with it): the gate keeps its state for a while, then opens
  // rather than holding the copy forever.
  busy.clear();
  ASSERT_TRUE(src->Stop().ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_TRUE(gate.paused()) << "opened at once on the first failed reading";
  EXPECT_TRUE(WaitFor([&] { return !gate.paused(); }, 10)) << "never opened";
  std::lock_guard<std::mutex> l(mu);
  EXPECT_EQ(changes, (std::vector<bool>{true, false}));
}

TEST(CopyThrottleTest, StandbyLagPausesTheCopyUntilTheStandbyCatchesUp) {
  std::unique_ptr<PgServer> src, dst;
  ASSERT_NO_FATAL_FAILURE(StartSourceAndTarget(R"SQL(
CREATE TABLE big (id int PRIMARY KEY, pad text NOT NULL);
INSERT INTO big SELECT i, repeat(md5(i::text), 2) FROM generate_series(1, 60000) i;
CREATE TABLE w (id int PRIMARY KEY);
)SQL",
                                               &src, &dst, 15, 17));
  auto standby = StartStandby(*src);
  ASSERT_TRUE(standby);
  ASSERT_TRUE(standby->Exec("SELECT pg_wal_replay_pause()").ok());
  BackgroundWriter writer(src->Conninfo("app"), 2, [](std::mt19937&, int n) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return fmt::format("INSERT INTO w VALUES ({})", n);
  });
  ASSERT_TRUE(WaitFor(
      [&] {
        std::string lag = ReplayLag(*src);
        return !lag.empty() && lag.find("error") == std::string::npos && std::stod(lag) > 2.0;
      },
      30))
      << ReplayLag(*src);

  QueueDir qdir;
  const std::string log = qdir.path() + ".copy.log";
  ProcessOptions po;
  po.stdout_path = log;
  ChildProcess copy({PgbatonBinary(),
                     "--name",
                     "pgbaton",
                     "copy",
                     "--source",
                     src->Conninfo("app"),
                     "--target",
                     dst->Conninfo("app"),
                     "--queue-dir",
                     qdir.path(),
                     "--jobs",
                     "2",
                     "--chunk-bytes",
                     "262144",
                     "--progress",
                     "json",
                     "--progress-interval-ms",
                     "200",
                     "--source-load-interval-ms",
                     "200",
                     "--source-load-limit",
                     "standby-lag=1s",
                     "--include",
                     "public.big"},
                    po);
  ASSERT_TRUE(
      WaitFor([&] { return ReadFile(log).find("\"paused\":true") != std::string::npos; }, 120))
      << ReadFile(log);
  std::string out = ReadFile(log);
  EXPECT_NE(out.find("copy paused: source load (standby replay lag "), std::string::npos) << out;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(*dst->Query("SELECT count(*) FROM big", "app"), "0") << "rows copied while paused";
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  EXPECT_EQ(ReadFile(log).find("copy resumed"), std::string::npos) << ReadFile(log);

  ASSERT_TRUE(standby->Exec("SELECT pg_wal_replay_resume()").ok());
  const int rc = copy.Wait(180000);
  out = ReadFile(log);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("copy resumed"), std::string::npos) << out;
  writer.Stop();
  EXPECT_EQ(writer.error(), "");
  EXPECT_EQ(TableDigest(*src, "app", "public.big"), TableDigest(*dst, "app", "public.big"));
}

}  // namespace
}  // namespace pgbaton::testing::copy

// `pgbaton migrate --source-load-limit active-sessions=N` against real servers: with more than N
// sessions busy on the source (pg_sleep), the copy's workers pause before their first batch: the
// progress and the log say why, the metric says so, and no row reaches the target while the
// decoder keeps streaming (the slot's confirmed position passes a write made meanwhile). Once the
// sessions end, the copy resumes and the target ends identical to the source.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/copy_fixture.h"
#include "tests/support/pg_test.h"
#include "tests/support/prometheus_server.h"

namespace pgbaton::testing {
namespace {

using copy::QueueDir;

constexpr const char* kSchema = R"SQL(
CREATE TABLE big (id int PRIMARY KEY, pad text NOT NULL);
INSERT INTO big SELECT i, repeat(md5(i::text), 2) FROM generate_series(1, 60000) i;
CREATE TABLE events (id bigserial PRIMARY KEY, note text);
)SQL";
const std::vector<std::string> kTables = {"public.big", "public.events"};

// `n` sessions on `server`/`db` that are 'active' (running pg_sleep) until Release().
class BusySessions {
 public:
  BusySessions(const PgServer& server, const std::string& db, int n) : server_(server), db_(db) {
    for (int i = 0; i < n; ++i) {
      ConnectOptions co;
      co.label = "busy";
      co.application_name = "busy session";
      auto c = PgConn::Connect(server.Conninfo(db), co);
      EXPECT_TRUE(c.ok()) << c.status().ToString();
      if (!c.ok()) return;
      EXPECT_EQ(PQsendQuery(c->raw(), "SELECT pg_sleep(600)"), 1);
      conns_.push_back(std::move(*c));
    }
  }
  ~BusySessions() { Release(); }

  // Cancels the sleeps (a closed client alone would leave them running) and closes the sessions.
  void Release() {
    if (conns_.empty()) return;
    auto r = server_.Query(
        "SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name = 'busy session'",
        db_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    for (auto& c : conns_) {
      while (PGresult* res = PQgetResult(c.raw())) PQclear(res);
    }
    conns_.clear();
  }

 private:
  const PgServer& server_;
  std::string db_;
  std::vector<PgConn> conns_;
};

// The value of the series `series` (e.g. `pgbaton_copy_paused{reason="active_sessions"}`) on the
// endpoint, or "" when it is not there.
std::string Scrape(int port, const std::string& series) {
  auto r = HttpGet("127.0.0.1", port, "/metrics");
  if (!r.ok()) return "";
  size_t at = r->body.find("\n" + series + " ");
  if (at == std::string::npos) return "";
  at += series.size() + 2;
  return r->body.substr(at, r->body.find('\n', at) - at);
}

TEST(MigrateSourceLoadTest, PausesWhileTheSourceIsBusyTheDecoderGoesOnThenResumesIdentical) {
  std::unique_ptr<PgServer> src, dst;
  ASSERT_NO_FATAL_FAILURE(StartSourceAndTarget(kSchema, &src, &dst, 15, 17));
  QueueDir qdir;
  // Five busy sessions against a limit of three: paused from the first batch on.
  BusySessions busy(*src, "app", 5);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto n = src->Query(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'busy session' "
            "AND state = 'active'",
            "app");
        return n.ok() && *n == "5";
      },
      10));

  const int metrics_port = FreePort();
  const std::string log = qdir.path() + ".migrate.log";
  ProcessOptions po;
  po.stdout_path = log;
  ChildProcess migrate({PgbatonBinary(),
                        "--name",
                        "pgbaton",
                        "migrate",
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
                        "active-sessions=3",
                        "--metrics-addr",
                        fmt::format("127.0.0.1:{}", metrics_port),
                        "--until",
                        "caught-up"},
                       po);

  ASSERT_TRUE(
      WaitFor([&] { return ReadFile(log).find("\"paused\":true") != std::string::npos; }, 120))
      << ReadFile(log);
  std::string out = ReadFile(log);
  // Five, or one more when one of migrate's own short queries (the metrics sampler's) is caught
  // running: only the copy's sessions are left out.
  EXPECT_THAT(out, ::testing::ContainsRegex(
                       "\"paused_reason\":\"source load \\(active sessions [56] > 3\\)\""));
  EXPECT_THAT(out,
              ::testing::ContainsRegex("copy paused: source load \\(active sessions [56] > 3\\)"));
  EXPECT_EQ(Scrape(metrics_port, "pgbaton_copy_paused{reason=\"active_sessions\"}"), "1");

  // While paused: no row of "big" on the target (its ranges load without TRUNCATE, so counting
  // does not wait on a lock), while the decoder streams a write made now past the slot.
  ASSERT_TRUE(src->Exec("INSERT INTO events (note) VALUES ('during the pause')", "app").ok());
  auto mark = src->Query("SELECT pg_current_wal_lsn()::text", "app");
  ASSERT_TRUE(mark.ok());
  const bool streamed = WaitFor(
      [&] {
        auto r = src->Query("SELECT confirmed_flush_lsn >= '" + *mark +
                                "'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'pgbaton'",
                            "app");
        return r.ok() && *r == "t";
      },
      30);
  EXPECT_TRUE(streamed) << "the decoder did not pass " << *mark << " while the copy was paused";
  // And the progress stands still: the same bytes a second and a half apart, no row done.
  auto data_line = [&] {
    std::string line = LastLineWith(ReadFile(log), "\"phase\":\"data\"");
    return line.empty() ? nlohmann::json() : nlohmann::json::parse(line);
  };
  const nlohmann::json before = data_line();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(*dst->Query("SELECT count(*) FROM big", "app"), "0") << "rows copied while paused";
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  const nlohmann::json after = data_line();
  ASSERT_TRUE(before.is_object() && after.is_object()) << ReadFile(log);
  EXPECT_EQ(after["paused"], true) << after.dump();
  EXPECT_EQ(after["rows_done"], 0) << after.dump();
  EXPECT_EQ(after["bytes_done"], before["bytes_done"]) << before.dump() << "\n" << after.dump();
  EXPECT_LT(after["bytes_done"].get<double>(), after["bytes_estimated"].get<double>() / 4);
  out = ReadFile(log);
  EXPECT_EQ(out.find("copy resumed"), std::string::npos) << out;

  busy.Release();
  const int rc = migrate.Wait(300000);
  out = ReadFile(log);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("copy resumed: the source's load is back under --source-load-limit"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("\"paused\":false"), std::string::npos) << out;

  std::vector<std::string> run = {PgbatonBinary(), "--name",
                                  "pgbaton",       "run",
                                  "--source",      src->Conninfo("app"),
                                  "--target",      dst->Conninfo("app"),
                                  "--queue-dir",   qdir.path()};
  CommandResult applied = RunCommand(StopAtNow(run, *src));
  ASSERT_EQ(applied.exit_code, 0) << applied.output;
  EXPECT_EQ(TablesDigest(*src, "app", kTables), TablesDigest(*dst, "app", kTables));
  EXPECT_EQ(*dst->Query("SELECT count(*) FROM events WHERE note = 'during the pause'", "app"), "1");
}

}  // namespace
}  // namespace pgbaton::testing

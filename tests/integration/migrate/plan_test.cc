// `pgbaton migrate --plan` against real servers (15 -> 17): on a source with tables of different
// sizes (names with spaces, quotes and capitals) under a light write load, the plan lists the
// tables biggest first with the copy's own split, counts the connections, creates nothing on
// either side or on disk, and never prints the password. Then the real `migrate --until
// caught-up` runs with the same flags: its copy time is within kFactor of the plan's estimate
// (docs/reference/commands.md states the factor), and the connections seen in pg_stat_activity
// on each side while it runs never exceed the plan's. A preflight blocker is a blocker of the
// plan, with preflight's exit code. On a 13 source (no TID ranges) the plan splits by key.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/copy_fixture.h"
#include "tests/support/pg_test.h"

namespace pgbaton::testing {
namespace {

using copy::QueueDir;

// The estimate's promise, either way, on a shared 2-core machine where source, target, pgbaton
// and other tests compete for the cores.
constexpr double kFactor = 4.0;
constexpr const char* kPassword = "plan-s3cret";

// About 60 MB, 20 MB and a little: with --jobs 2 the copy splits at 16 MB (the automatic size's
// floor), so the first two are split and the others are not.
constexpr const char* kSchema = R"SQL(
CREATE SCHEMA "Big Schema";
CREATE TABLE "Big Schema"."Line ""Items""" (id bigint PRIMARY KEY, qty int NOT NULL, note text);
INSERT INTO "Big Schema"."Line ""Items"""
  SELECT i, i % 100, md5(i::text) || md5((i * 7)::text) FROM generate_series(1, 480000) i;
CREATE TABLE "MixedCase" (id int PRIMARY KEY, "Value" text);
INSERT INTO "MixedCase" SELECT i, repeat(chr(65 + i % 26), 60) FROM generate_series(1, 220000) i;
CREATE TABLE small (k text PRIMARY KEY, v int);
INSERT INTO small SELECT 'k' || i, i FROM generate_series(1, 2000) i;
CREATE TABLE "empty one" (id int PRIMARY KEY);
ANALYZE;
)SQL";

// A light application: one small transaction every ~10 ms, so the source makes some WAL.
std::string NextWrite(std::mt19937& rng, int committed) {
  return fmt::format(
      "SELECT pg_sleep(0.01); UPDATE small SET v = v + 1 WHERE k = 'k{}'; "
      "INSERT INTO small VALUES ('w{}', {}) ON CONFLICT (k) DO NOTHING",
      1 + rng() % 2000, committed, committed);
}

// The most connections of each kind seen on one server's database "app" (other than the
// watcher's own and the writer's), polled every 20 ms from start until Stop().
class ConnectionWatch {
 public:
  explicit ConnectionWatch(const PgServer& server) {
    thread_ = std::thread([this, &server] {
      auto conn = server.Connect("app");
      if (!conn.ok()) return;
      while (!stop_.load()) {
        auto r = conn->Exec(
            "SELECT count(*) FILTER (WHERE backend_type = 'client backend'), "
            "count(*) FILTER (WHERE backend_type = 'walsender') FROM pg_stat_activity "
            "WHERE datname = 'app' AND pid <> pg_backend_pid() AND application_name <> "
            "'test writer'");
        if (r.ok()) {
          sessions_ = std::max<int>(sessions_.load(), static_cast<int>(r->GetInt(0, 0)));
          replication_ = std::max<int>(replication_.load(), static_cast<int>(r->GetInt(0, 1)));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
  }
  ~ConnectionWatch() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int sessions() const { return sessions_.load(); }
  int replication() const { return replication_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> sessions_{0};
  std::atomic<int> replication_{0};
  std::thread thread_;
};

class MigratePlanTest : public ::testing::Test {
 protected:
  // Source and target majors.
  virtual std::pair<int, int> Majors() const { return {15, 17}; }

  void SetUp() override {
    // With the test servers' password set-up, a 13 server refuses the password (seen here):
    // the password checks run on the 15 source.
    PgServerOptions so;
    if (Majors().first >= 14) so.superuser_password = kPassword;
    src_ = StartServer(Majors().first, so);
    dst_ = StartServer(Majors().second);
    ASSERT_TRUE(src_ && dst_);
    Status created = src_->Exec("CREATE DATABASE app");
    ASSERT_TRUE(created.ok()) << created.ToString();
    ASSERT_TRUE(src_->Exec(kSchema, "app").ok());
    ASSERT_TRUE(dst_->Exec("CREATE DATABASE app").ok());
  }

  std::vector<std::string> Migrate(const std::vector<std::string>& extra) const {
    std::vector<std::string> args = {PgbatonBinary(), "migrate",
                                     "--source",      src_->Conninfo("app"),
                                     "--target",      dst_->Conninfo("app"),
                                     "--queue-dir",   qdir_.path(),
                                     "--jobs",        "2",
                                     "--progress",    "json"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  // The plan's JSON document from `--plan --json` (stdout only).
  nlohmann::json Plan(int want_exit) {
    ProcessOptions po;
    po.stderr_path = qdir_.path() + ".plan.err";
    CommandResult r = RunCommand(Migrate({"--plan", "--json", "--plan-sample-seconds", "2"}), po);
    EXPECT_EQ(r.exit_code, want_exit) << r.output << ReadFile(po.stderr_path);
    EXPECT_EQ(r.output.find(kPassword), std::string::npos) << r.output;
    EXPECT_EQ(ReadFile(po.stderr_path).find(kPassword), std::string::npos);
    auto j = nlohmann::json::parse(r.output, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.output;
    return j;
  }

  // Nothing of a migration exists: no slot, no publication, no table on the target, no queue.
  void ExpectNothingCreated() {
    EXPECT_EQ(*src_->Query("SELECT count(*) FROM pg_replication_slots", "app"), "0");
    EXPECT_EQ(*src_->Query("SELECT count(*) FROM pg_publication", "app"), "0");
    EXPECT_EQ(*dst_->Query("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON "
                           "n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', "
                           "'information_schema', 'pg_toast')",
                           "app"),
              "0");
    EXPECT_EQ(*dst_->Query("SELECT count(*) FROM pg_namespace WHERE nspname NOT LIKE 'pg_%' "
                           "AND nspname NOT IN ('public', 'information_schema')",
                           "app"),
              "0");
    EXPECT_TRUE(std::filesystem::is_empty(qdir_.path())) << "something was written in the queue";
  }

  std::unique_ptr<PgServer> src_;
  std::unique_ptr<PgServer> dst_;
  QueueDir qdir_;
};

TEST_F(MigratePlanTest, PlanMatchesTheRealMigrationAndCreatesNothing) {
  BackgroundWriter writer(src_->Conninfo("app") + " application_name='test writer'", 5, NextWrite);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  nlohmann::json plan = Plan(0);
  ASSERT_TRUE(plan.is_object());
  ExpectNothingCreated();
  EXPECT_TRUE(plan["ready"].get<bool>()) << plan.dump(2);
  EXPECT_TRUE(plan["blockers"].empty()) << plan.dump(2);

  // The tables, biggest first, split as the copy splits them.
  const auto& tables = plan["tables"];
  ASSERT_EQ(tables.size(), 4u) << plan.dump(2);
  for (size_t i = 1; i < tables.size(); ++i) {
    EXPECT_GE(tables[i - 1]["bytes"].get<uint64_t>(), tables[i]["bytes"].get<uint64_t>());
  }
  EXPECT_EQ(tables[0]["schema"], "Big Schema");
  EXPECT_EQ(tables[0]["name"], "Line \"Items\"");
  EXPECT_EQ(tables[1]["name"], "MixedCase");
  EXPECT_EQ(tables[2]["name"], "small");
  EXPECT_EQ(tables[3]["name"], "empty one");
  const uint64_t chunk_bytes = plan["copy"]["chunk_bytes"].get<uint64_t>();
  EXPECT_EQ(chunk_bytes, 16u << 20);
  size_t chunks = 0;
  for (const auto& t : tables) {
    const uint64_t bytes = t["bytes"].get<uint64_t>();
    EXPECT_EQ(t["split"].get<bool>(), bytes > chunk_bytes) << t.dump();
    // TID ranges of whole 8 kB pages, chunk_bytes each.
    const uint64_t per = chunk_bytes / 8192;
    const uint64_t want = bytes > chunk_bytes ? (bytes / 8192 + per - 1) / per : 1;
    EXPECT_EQ(t["chunks"].get<uint64_t>(), want) << t.dump();
    EXPECT_EQ(t["format"], "binary");
    chunks += t["chunks"].get<size_t>();
  }
  EXPECT_GE(tables[0]["chunks"].get<int>(), 3);
  EXPECT_EQ(plan["copy"]["chunks"].get<size_t>(), chunks);
  EXPECT_EQ(plan["copy"]["workers"].get<int>(), 2);
  EXPECT_TRUE(plan["copy"]["measured"].get<bool>());
  EXPECT_EQ(plan["sample"]["sessions"].get<int>(), 2);
  EXPECT_GT(plan["sample"]["heap_bytes"].get<uint64_t>(), 0u);
  EXPECT_GT(plan["wal"]["bytes_per_second"].get<double>(), 0) << "the writer makes WAL";
  EXPECT_GT(plan["queue"]["bytes"].get<uint64_t>(), 0u);
  EXPECT_EQ(plan["connections"]["source"]["sessions"].get<int>(), 2 + 6);
  EXPECT_EQ(plan["connections"]["source"]["replication"].get<int>(), 2);
  EXPECT_EQ(plan["connections"]["target"]["sessions"].get<int>(), 2 + 2 + 2);

  // The real migration with the same flags.
  const std::string log = qdir_.path() + ".migrate.log";
  ProcessOptions po;
  po.stdout_path = log;
  ConnectionWatch on_source(*src_), on_target(*dst_);
  CommandResult r = RunCommand(Migrate({"--until", "caught-up"}), po);
  on_source.Stop();
  on_target.Stop();
  writer.Stop();
  ASSERT_EQ(r.exit_code, 0) << r.output << ReadFile(log);
  ASSERT_EQ(writer.error(), "");

  nlohmann::json summary;
  std::istringstream lines(ReadFile(log));
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("summary")) summary = j;
  }
  ASSERT_TRUE(summary.is_object()) << ReadFile(log);
  ASSERT_EQ(summary["summary"], "done") << summary.dump();
  const double real = summary["total_s"].get<double>();
  const double planned = plan["copy"]["seconds"].get<double>();
  const double real_data = summary["phases_s"].value("data", 0.0);
  const double planned_data = plan["copy"]["data_seconds"].get<double>();
  // The figures, for the record and for calibrating the model (tools/migrate/plan_model.h).
  std::cout << fmt::format(
                   "plan: copy {:.2f} s (data {:.2f} s; sample {:.1f} MB/s read, {} sessions); "
                   "real: copy {:.2f} s (data {:.2f} s, {} bytes); ratio real/plan {:.2f}; "
                   "connections seen: source {} + {} replication, target {}\n",
                   planned, planned_data, plan["copy"]["read_bytes_per_second"].get<double>() / 1e6,
                   plan["sample"]["sessions"].get<int>(), real, real_data,
                   summary["bytes"].get<uint64_t>(), real / planned, on_source.sessions(),
                   on_source.replication(), on_target.sessions())
            << std::flush;
  EXPECT_LE(real, planned * kFactor) << "the copy took much longer than planned";
  EXPECT_GE(real, planned / kFactor) << "the copy took much less than planned";

  // What the migration opened never went past the plan (the watcher's own session excluded),
  // and the copy's workers were seen.
  EXPECT_LE(on_source.sessions(), plan["connections"]["source"]["sessions"].get<int>());
  EXPECT_LE(on_source.replication(), plan["connections"]["source"]["replication"].get<int>());
  EXPECT_LE(on_target.sessions(), plan["connections"]["target"]["sessions"].get<int>());
  EXPECT_GE(on_source.sessions(), 2);
  EXPECT_GE(on_target.sessions(), 2);
}

TEST_F(MigratePlanTest, APreflightBlockerIsAPlanBlockerWithPreflightsExitCode) {
  ASSERT_TRUE(src_->Exec("CREATE TABLE \"No Key\" (v int)", "app").ok());
  nlohmann::json plan = Plan(3);
  ASSERT_TRUE(plan.is_object());
  EXPECT_FALSE(plan["ready"].get<bool>());
  bool named = false;
  for (const auto& b : plan["blockers"]) {
    named = named || b["message"].get<std::string>().find("No Key") != std::string::npos;
  }
  EXPECT_TRUE(named) << plan.dump(2);
  // The rest of the plan is still there: the table without a key is listed like the others.
  EXPECT_EQ(plan["tables"].size(), 5u);
  ExpectNothingCreated();

  // The same plan for people: the blocker with its fix, the exit code, no password.
  CommandResult human = RunCommand(Migrate({"--plan", "--plan-sample-seconds", "1"}));
  EXPECT_EQ(human.exit_code, 3) << human.output;
  EXPECT_NE(human.output.find("BLOCKER"), std::string::npos) << human.output;
  EXPECT_NE(human.output.find("No Key"), std::string::npos) << human.output;
  EXPECT_NE(human.output.find("the plan has"), std::string::npos) << human.output;
  EXPECT_EQ(human.output.find(kPassword), std::string::npos) << human.output;
  ExpectNothingCreated();
}

// A 13 source has no TID range scans: the copy splits tables by their integer key, and the
// plan's sample reads the copy's own chunks.
class MigratePlanFrom13Test : public MigratePlanTest {
 protected:
  std::pair<int, int> Majors() const override { return {13, 18}; }
};

TEST_F(MigratePlanFrom13Test, PlanSplitsByKeyAndSamplesTheCopysChunks) {
  nlohmann::json plan = Plan(0);
  ASSERT_TRUE(plan.is_object());
  ExpectNothingCreated();
  const auto& tables = plan["tables"];
  ASSERT_EQ(tables.size(), 4u) << plan.dump(2);
  EXPECT_EQ(tables[0]["name"], "Line \"Items\"");
  const uint64_t chunk_bytes = plan["copy"]["chunk_bytes"].get<uint64_t>();
  for (const auto& t : tables) {
    const uint64_t bytes = t["bytes"].get<uint64_t>();
    const uint64_t want = bytes > chunk_bytes ? (bytes + chunk_bytes - 1) / chunk_bytes : 1;
    EXPECT_EQ(t["chunks"].get<uint64_t>(), want) << t.dump();
  }
  EXPECT_GE(tables[0]["chunks"].get<int>(), 3);
  EXPECT_TRUE(plan["copy"]["measured"].get<bool>()) << plan.dump(2);
  EXPECT_EQ(plan["sample"]["sessions"].get<int>(), 2);
  EXPECT_GT(plan["copy"]["seconds"].get<double>(), plan["copy"]["fixed_seconds"].get<double>());
}

}  // namespace
}  // namespace pgbaton::testing

// The rates `pgbaton status` shows are true, right after a copy too: pgbench at a fixed rate
// (-R) runs on the source through `copy`, a backlog builds in the slot, then `run` drains it and
// follows the load while `status --watch --json` refreshes every second. The source sits at a
// high LSN (WAL switched past many segments first), so a rate measured from a position that was
// not known yet (an empty queue, nothing applied: LSN 0) would claim hundreds of MB where a few
// passed. Checked against what the source says: pg_current_wal_lsn() and pgbench_history's rows
// (one per pgbench transaction).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/types.h"
#include "tests/support/pg_server.h"
#include "tests/support/pg_test.h"
#include "tests/support/process.h"

namespace pgbaton::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kPgbench = "/usr/lib/postgresql/15/bin/pgbench";
constexpr int kRate = 150;       // pgbench transactions per second (-R)
constexpr int kRateWindow = 15;  // status --rate-window
constexpr uint64_t kSlack =
    1 << 20;  // bytes of WAL a bound may be off by (keepalives, checkpoints)

Lsn QueryLsn(const PgServer& s, const std::string& sql) {
  auto v = s.Query(sql, "app");
  if (!v.ok() || v->empty()) return Lsn();
  auto l = Lsn::Parse(*v);
  return l.ok() ? *l : Lsn();
}

int64_t QueryInt(const PgServer& s, const std::string& sql) {
  auto v = s.Query(sql, "app");
  return v.ok() ? std::stoll(*v) : -1;
}

Lsn SourceLsn(const PgServer& s) { return QueryLsn(s, "select pg_current_wal_lsn()"); }
int64_t History(const PgServer& s) { return QueryInt(s, "select count(*) from pgbench_history"); }

// The JSON lines `status --watch --json` wrote so far (a partial last line is left out).
std::vector<json> WatchLines(const std::string& path) {
  std::vector<json> out;
  std::istringstream in(ReadFile(path));
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

double Num(const json& v) { return v.is_number() ? v.get<double>() : -1; }

TEST(StatusRatesTest, RatesAgreeWithTheSourceRightAfterCopyAndUnderSteadyLoad) {
  auto source = StartServer(15);
  auto target = StartServer(17);
  ASSERT_TRUE(source && target);
  ASSERT_TRUE(source->Exec("create database app").ok());
  ASSERT_TRUE(target->Exec("create database app").ok());
  // A source far from LSN 0: 12 segment switches put it past 0/C000000 (192 MB) at no cost.
  ASSERT_TRUE(source->Exec("create table wal_filler (i int)", "app").ok());
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(
        source->Exec("insert into wal_filler values (1); select pg_switch_wal()", "app").ok());
  }
  ASSERT_TRUE(source->Exec("drop table wal_filler; checkpoint", "app").ok());
  CommandResult init = RunCommand({kPgbench, "-i", "-q", "-s", "1", source->Conninfo("app")});
  ASSERT_EQ(init.exit_code, 0) << init.output;
  ASSERT_TRUE(source->Exec("alter table pgbench_history replica identity full", "app").ok());
  const Lsn start_lsn = SourceLsn(*source);
  ASSERT_GT(start_lsn.value(), 192ull << 20) << start_lsn.ToString();

  std::string dir = MakeTempDir("pgbaton-status-rates");
  std::string queue_dir = dir + "/queue";
  // The load runs from before the copy to the end: the copy's WAL is the backlog `run` finds.
  const int64_t history_start = History(*source);
  ChildProcess load({kPgbench, "-n", "-c", "2", "-j", "2", "-R", std::to_string(kRate), "-T", "600",
                     source->Conninfo("app")},
                    {});
  ProcessOptions copy_po;
  copy_po.stderr_path = dir + "/copy.err";
  CommandResult copy =
      RunCommand({PgbatonBinary(), "copy", "--source", source->Conninfo("app"), "--target",
                  target->Conninfo("app"), "--queue-dir", queue_dir, "--progress", "json"},
                 copy_po);
  ASSERT_EQ(copy.exit_code, 0) << copy.output << ReadFile(copy_po.stderr_path);
  ASSERT_TRUE(load.running()) << "pgbench stopped during the copy";

  // status watches from right after the copy: the queue is empty, nothing is applied yet.
  ProcessOptions watch_po;
  watch_po.stdout_path = dir + "/watch.jsonl";
  watch_po.stderr_path = dir + "/watch.err";
  ChildProcess watch({PgbatonBinary(), "status", "--queue-dir", queue_dir, "--source",
                      source->Conninfo("app"), "--target", target->Conninfo("app"), "--json",
                      "--watch", "--interval", "1s", "--rate-window", std::to_string(kRateWindow)},
                     watch_po);
  // A backlog in the slot: at least 256 kB of WAL behind what the copy confirmed.
  const char* kConfirmed =
      "select confirmed_flush_lsn from pg_replication_slots where slot_name = 'pgbaton'";
  const Lsn copied_at = QueryLsn(*source, kConfirmed);
  ASSERT_TRUE(copied_at.IsValid());
  auto deadline = Clock::now() + std::chrono::seconds(60);
  while (SourceLsn(*source).BytesSince(copied_at) < (256u << 10) && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_GE(SourceLsn(*source).BytesSince(copied_at), 256u << 10) << "pgbench wrote too little";
  ASSERT_GE(WatchLines(watch_po.stdout_path).size(), 1u) << ReadFile(watch_po.stderr_path);

  ProcessOptions run_po;
  run_po.stdout_path = dir + "/run.out";
  run_po.stderr_path = dir + "/run.err";
  ChildProcess run({PgbatonBinary(), "run", "--source", source->Conninfo("app"), "--target",
                    target->Conninfo("app"), "--queue-dir", queue_dir},
                   run_po);
  // Caught up: the target holds every transaction the source had a moment ago.
  bool caught_up = false;
  deadline = Clock::now() + std::chrono::seconds(180);
  while (!caught_up && run.running() && Clock::now() < deadline) {
    int64_t h = History(*source);
    auto wait_until = Clock::now() + std::chrono::seconds(20);
    while (History(*target) < h && Clock::now() < wait_until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    caught_up = History(*target) >= h;
  }
  ASSERT_TRUE(caught_up) << ReadFile(run_po.stderr_path);

  // Steady state: the truth over a period, and the status lines whose window lies inside it
  // (window + one sample period after it began).
  const auto steady_from = Clock::now();
  const Lsn steady_lsn = SourceLsn(*source);
  const int64_t steady_history = History(*source);
  // A window reaches back at most kRateWindow + 5 s from a sample up to 5 s old.
  const auto settled = steady_from + std::chrono::seconds(kRateWindow + 12);
  std::this_thread::sleep_until(settled);  // measuring a rate takes time; nothing to poll
  const size_t settled_line = WatchLines(watch_po.stdout_path).size();
  deadline = Clock::now() + std::chrono::seconds(60);
  while (WatchLines(watch_po.stdout_path).size() < settled_line + 8 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - steady_from).count();
  const Lsn end_lsn = SourceLsn(*source);
  const int64_t end_history = History(*source);
  ASSERT_TRUE(run.running()) << ReadFile(run_po.stderr_path);
  ASSERT_TRUE(load.running()) << "pgbench stopped";
  watch.Signal(SIGTERM);
  EXPECT_EQ(watch.Wait(10000), 0) << ReadFile(watch_po.stderr_path);
  run.Signal(SIGTERM);
  EXPECT_EQ(run.Wait(30000), 0) << ReadFile(run_po.stderr_path);
  load.Kill();

  const double wal_rate = static_cast<double>(end_lsn.BytesSince(steady_lsn)) / seconds;
  const double txn_rate = static_cast<double>(end_history - steady_history) / seconds;
  std::printf(
      "figure: source WAL %.0f B/s and %.1f txn/s under pgbench -R %d (measured on the "
      "source over %.1f s)\n",
      wal_rate, txn_rate, kRate, seconds);
  ASSERT_GT(txn_rate, kRate / 4.0) << "pgbench fell far behind its rate: the machine is too busy";

  std::vector<json> lines = WatchLines(watch_po.stdout_path);
  ASSERT_GT(lines.size(), settled_line + 5);
  // 1. No line, from the first refresh on, claims more than actually passed: whatever a rate's
  // span, rate x span is at most the WAL (or the transactions) there was to move.
  const double queue_bound = static_cast<double>(end_lsn.BytesSince(copied_at) + kSlack);
  const double source_bound = static_cast<double>(end_lsn.BytesSince(start_lsn) + kSlack);
  const double txn_bound = static_cast<double>(end_history - history_start + 100);
  for (size_t i = 0; i < lines.size(); ++i) {
    const json& r = lines[i]["rates"];
    SCOPED_TRACE(fmt::format("status line {}: {}", i, r.dump()));
    double w = Num(r["window_seconds"]);
    EXPECT_LE(Num(r["queued_bytes_per_second"]) * w, queue_bound);
    EXPECT_LE(Num(r["applied_bytes_per_second"]) * w, queue_bound);
    EXPECT_LE(Num(r["source_wal_bytes_per_second"]) * w, source_bound);
    EXPECT_LE(Num(r["queued_transactions_per_second"]) * w, txn_bound);
    EXPECT_LE(Num(r["applied_transactions_per_second"]) * w, txn_bound);
    const json& iv = r["interval"];
    if (iv.is_object()) {
      double s = Num(iv["seconds"]);
      EXPECT_LE(Num(iv["queued_bytes_per_second"]) * s, queue_bound);
      EXPECT_LE(Num(iv["applied_bytes_per_second"]) * s, queue_bound);
      EXPECT_LE(Num(iv["source_bytes_per_second"]) * s, source_bound);
    }
  }
  // 2. In the steady state every rate is the load's, within a factor of 2 (a noisy machine).
  int checked = 0;
  for (size_t i = settled_line; i < lines.size(); ++i) {
    const json& r = lines[i]["rates"];
    SCOPED_TRACE(fmt::format("steady status line {}: {}", i, r.dump()));
    ASSERT_EQ(r["from"], "samples");
    ASSERT_GE(Num(r["window_seconds"]), kRateWindow - 5.0);
    for (const char* key :
         {"queued_bytes_per_second", "applied_bytes_per_second", "source_wal_bytes_per_second"}) {
      EXPECT_GE(Num(r[key]), wal_rate / 2) << key;
      EXPECT_LE(Num(r[key]), wal_rate * 2) << key;
    }
    for (const char* key : {"queued_transactions_per_second", "applied_transactions_per_second"}) {
      EXPECT_GE(Num(r[key]), txn_rate / 2) << key;
      EXPECT_LE(Num(r[key]), txn_rate * 2) << key;
    }
    ++checked;
  }
  EXPECT_GE(checked, 5);
  const json& last = lines.back()["rates"];
  std::printf(
      "figure: status --rate-window %d (last line, %.1f s window): queued %.1f txn/s %.0f "
      "B/s, applied %.1f txn/s %.0f B/s, source WAL %.0f B/s\n",
      kRateWindow, Num(last["window_seconds"]), Num(last["queued_transactions_per_second"]),
      Num(last["queued_bytes_per_second"]), Num(last["applied_transactions_per_second"]),
      Num(last["applied_bytes_per_second"]), Num(last["source_wal_bytes_per_second"]));
  // The same figures in the text form, as an operator reads them.
  CommandResult text =
      RunCommand({PgbatonBinary(), "status", "--queue-dir", queue_dir, "--rate-window", "60"});
  EXPECT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("rates:"), std::string::npos) << text.output;
  RemoveTree(dir);
}

}  // namespace
}  // namespace pgbaton::testing

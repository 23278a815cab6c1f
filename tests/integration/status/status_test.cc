// Operating a running migration: `pgbaton run` under pgbench load (source 15, target 17) serving
// --metrics-addr while a real Prometheus scrapes it; `pgbaton status --json` while it runs and
// after a SIGTERM stop, checked against what pg_replication_slots and the target's origins say;
// and passwords, which must appear in no log line, status output, metrics page or (when given
// through a password file) process title.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/types.h"
#include "queue/work_queue.h"
#include "tests/support/pg_server.h"
#include "tests/support/pg_test.h"
#include "tests/support/process.h"
#include "tests/support/prometheus_server.h"

namespace pgbaton::tools {
namespace {

using nlohmann::json;
using pgbaton::testing::ChildProcess;
using pgbaton::testing::CommandResult;
using pgbaton::testing::DumpAndRestore;
using pgbaton::testing::FreePort;
using pgbaton::testing::HttpGet;
using pgbaton::testing::MakeTempDir;
using pgbaton::testing::PgbatonBinary;
using pgbaton::testing::PgServer;
using pgbaton::testing::ProcessOptions;
using pgbaton::testing::PrometheusServer;
using pgbaton::testing::ReadFile;
using pgbaton::testing::RemoveTree;
using pgbaton::testing::RunCommand;
using pgbaton::testing::StartServer;
using pgbaton::testing::TableDigest;
using pgbaton::testing::WaitForSlot;
using pgbaton::testing::WriteFile;

constexpr const char* kPgbench = "/usr/lib/postgresql/15/bin/pgbench";
const char* const kTables[] = {"pgbench_accounts", "pgbench_branches", "pgbench_tellers",
                               "pgbench_history"};

// Key=value conninfo without a password (the password comes from elsewhere).
std::string Bare(const PgServer& s, const std::string& db) {
  return fmt::format("host=127.0.0.1 port={} user=postgres dbname={}", s.port(), db);
}

// pgbench's tables on `source` (scale 1), the same schema and data on `target`; the source is
// idle afterwards, so the slot `run` creates starts where the target's data ends.
void PrepareDatabases(PgServer* source, PgServer* target,
                      const std::map<std::string, std::string>& env) {
  ASSERT_TRUE(source->Exec("create database app").ok());
  ASSERT_TRUE(target->Exec("create database app").ok());
  ProcessOptions po;
  po.env = env;
  CommandResult init = RunCommand({kPgbench, "-i", "-q", "-s", "1", source->Conninfo("app")}, po);
  ASSERT_EQ(init.exit_code, 0) << init.output;
  // pgbench_history has no key: give it a full replica identity like a DBA would.
  ASSERT_TRUE(source->Exec("alter table pgbench_history replica identity full", "app").ok());
  Status dump = DumpAndRestore(*source, *target, "app", /*schema_only=*/false, po);
  ASSERT_TRUE(dump.ok()) << dump.ToString();
}

Lsn ParseLsn(const json& v) {
  if (!v.is_string()) return Lsn();
  auto l = Lsn::Parse(v.get<std::string>());
  return l.ok() ? *l : Lsn();
}

Lsn QueryLsn(const PgServer& s, const std::string& sql, const std::string& db = "app") {
  auto v = s.Query(sql, db);
  if (!v.ok() || v->empty()) return Lsn();
  auto l = Lsn::Parse(*v);
  return l.ok() ? *l : Lsn();
}

const char* kConfirmedSql =
    "select confirmed_flush_lsn from pg_replication_slots where slot_name = 'pgbaton'";
const char* kRestartSql =
    "select restart_lsn from pg_replication_slots where slot_name = 'pgbaton'";
const char* kAppliedSql =
    "select max(pg_replication_origin_progress(roname, false)) from pg_replication_origin "
    "where roname = 'pgbaton' or roname like 'pgbaton-%'";

Result<json> StatusJson(const std::vector<std::string>& args, const ProcessOptions& po,
                        std::string* raw = nullptr) {
  CommandResult r = RunCommand(args, po);
  if (raw) *raw = r.output;
  if (r.exit_code != 0) return Status::Error(ErrorCode::kInternal, "status failed: " + r.output);
  json j = json::parse(r.output, nullptr, false);
  if (j.is_discarded()) return Status::Error(ErrorCode::kInternal, "not JSON: " + r.output);
  return j;
}

TEST(StatusTest, RunUnderPgbenchWithPrometheusAndStatus) {
  auto source = StartServer(15);
  auto target = StartServer(17);
  ASSERT_TRUE(source && target);
  PrepareDatabases(source.get(), target.get(), {});
  if (HasFatalFailure()) return;

  std::string dir = MakeTempDir("pgbaton-status");
  std::string queue_dir = dir + "/queue";
  int port = FreePort();
  ProcessOptions run_po;
  run_po.stdout_path = dir + "/run.log";
  ChildProcess run({PgbatonBinary(), "run", "--source", source->Conninfo("app"), "--target",
                    target->Conninfo("app"), "--queue-dir", queue_dir, "--apply-jobs", "2",
                    "--metrics-addr", fmt::format("127.0.0.1:{}", port)},
                   run_po);
  ASSERT_TRUE(WaitForSlot(*source, "pgbaton")) << ReadFile(dir + "/run.log");

  testing::PrometheusOptions popt;
  popt.targets = {fmt::format("127.0.0.1:{}", port)};
  auto prom = PrometheusServer::Start(popt);
  ASSERT_TRUE(prom.ok()) << prom.status().ToString();
  auto up = (*prom)->WaitForValue(
      "up{job=\"pgbaton\"}", [](double v) { return v == 1; }, 60000);
  ASSERT_TRUE(up.ok() && *up && **up == 1) << (*prom)->LogTail() << ReadFile(dir + "/run.log");

  std::vector<std::string> status_args = {
      PgbatonBinary(),         "status",   "--queue-dir",           queue_dir, "--source",
      source->Conninfo("app"), "--target", target->Conninfo("app"), "--json"};
  // Load: 4 clients for 10 s, with status sampled while it runs.
  ChildProcess bench({kPgbench, "-n", "-c", "4", "-T", "10", source->Conninfo("app")}, {});
  int samples = 0;
  std::vector<double> status_ms;
  while (bench.running()) {
    Lsn confirmed_before = QueryLsn(*source, kConfirmedSql);
    Lsn applied_before = QueryLsn(*target, kAppliedSql);
    auto t0 = std::chrono::steady_clock::now();
    auto j = StatusJson(status_args, {});
    status_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    Lsn confirmed_after = QueryLsn(*source, kConfirmedSql);
    Lsn applied_after = QueryLsn(*target, kAppliedSql);
    ASSERT_TRUE(j.ok()) << j.status().ToString();
    ++samples;
    // What status read lies between what the databases said just before and just after.
    Lsn confirmed = ParseLsn((*j)["source"]["slot"]["confirmed_flush_lsn"]);
    EXPECT_LE(confirmed_before, confirmed);
    EXPECT_LE(confirmed, confirmed_after);
    Lsn applied = ParseLsn((*j)["target"]["applied_lsn"]);
    EXPECT_LE(applied_before, applied);
    EXPECT_LE(applied, applied_after);
    EXPECT_TRUE((*j)["source"]["slot"]["active"].get<bool>()) << j->dump();
    EXPECT_TRUE((*j)["lag"]["known"].get<bool>());
    EXPECT_EQ((*j)["stages"].size(), 5u);
    EXPECT_EQ((*j)["lag"]["bytes"].get<uint64_t>(),
              (*j)["stages"][1]["lag_bytes"].get<uint64_t>() +
                  (*j)["stages"][3]["lag_bytes"].get<uint64_t>());
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ASSERT_EQ(bench.Wait(60000), 0);
  ASSERT_GT(samples, 0);
  std::sort(status_ms.begin(), status_ms.end());
  std::printf("figure: %d status --json calls under load, median %.0f ms, max %.0f ms\n", samples,
              status_ms[status_ms.size() / 2], status_ms.back());

  // The lag series moved under load and comes back to zero once the load stopped.
  auto peak = (*prom)->WaitForValue(
      "max_over_time(pgbaton_lag_bytes[10m])", [](double v) { return v > 0; }, 30000);
  ASSERT_TRUE(peak.ok()) << peak.status().ToString();
  ASSERT_TRUE(*peak && **peak > 0) << "pgbaton_lag_bytes never rose above 0 during the load";
  auto peak_seconds = (*prom)->QueryValue("max_over_time(pgbaton_lag_seconds[10m])");
  std::printf(
      "figure: peak pgbaton_lag_bytes %.0f, peak pgbaton_lag_seconds %.3f (4 pgbench "
      "clients)\n",
      **peak, peak_seconds.ok() && *peak_seconds ? **peak_seconds : -1.0);
  auto zero = (*prom)->WaitForValue(
      "pgbaton_lag_bytes", [](double v) { return v == 0; }, 90000);
  ASSERT_TRUE(zero.ok()) << zero.status().ToString();
  EXPECT_TRUE(*zero && **zero == 0) << "last pgbaton_lag_bytes: " << (*zero ? **zero : -1);
  // The hot-path counters moved: transactions decoded, queued and applied, pgbench's updates.
  for (const char* q :
       {"sum(pgbaton_transactions_total{stage=\"decoded\"})",
        "sum(pgbaton_transactions_total{stage=\"queued\"})",
        "sum(pgbaton_transactions_total{stage=\"applied\"})",
        "sum(pgbaton_changes_total{kind=\"update\"})",
        "sum(pgbaton_bytes_total{stage=\"applied\"})", "sum(pgbaton_apply_batch_seconds_count)"}) {
    auto v = (*prom)->WaitForValue(
        q, [](double x) { return x > 0; }, 30000);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_TRUE(*v && **v > 0) << q;
  }
  auto applied_txns = (*prom)->QueryValue("pgbaton_applied_lsn");
  ASSERT_TRUE(applied_txns.ok() && *applied_txns);
  EXPECT_GT(**applied_txns, 0);
  auto status_caught_up = StatusJson(status_args, {});
  ASSERT_TRUE(status_caught_up.ok());
  EXPECT_EQ((*status_caught_up)["queue"]["unapplied_transactions"].get<uint64_t>(), 0u);
  EXPECT_EQ((*status_caught_up)["lag"]["seconds"].get<double>(), 0);
  // The load ended less than a minute ago: the last minute's rates saw it.
  EXPECT_EQ((*status_caught_up)["rates"]["from"], "samples") << status_caught_up->dump();
  EXPECT_GT((*status_caught_up)["rates"]["queued_transactions_per_second"].get<double>(), 0)
      << status_caught_up->dump();
  EXPECT_GT((*status_caught_up)["rates"]["applied_transactions_per_second"].get<double>(), 0)
      << status_caught_up->dump();

  // A clean stop.
  ASSERT_TRUE(run.Signal(SIGTERM));
  EXPECT_EQ(run.Wait(60000), 0) << ReadFile(dir + "/run.log");

  // After the stop, status agrees exactly with the databases.
  auto after = StatusJson(status_args, {});
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  const json& a = *after;
  EXPECT_FALSE(a["source"]["slot"]["active"].get<bool>());
  EXPECT_EQ(ParseLsn(a["source"]["slot"]["confirmed_flush_lsn"]), QueryLsn(*source, kConfirmedSql));
  EXPECT_EQ(ParseLsn(a["source"]["slot"]["restart_lsn"]), QueryLsn(*source, kRestartSql));
  Lsn applied = ParseLsn(a["target"]["applied_lsn"]);
  EXPECT_EQ(applied, QueryLsn(*target, kAppliedSql));
  EXPECT_TRUE(applied.IsValid());
  // The applier trims what it applied: the queue is empty or ends at what the target holds.
  if (!a["queue"]["last_commit_lsn"].is_null()) {
    EXPECT_EQ(ParseLsn(a["queue"]["last_commit_lsn"]), applied) << a.dump();
  }
  EXPECT_EQ(a["stages"][3]["lag_bytes"].get<uint64_t>(), 0u);
  Lsn current = ParseLsn(a["source"]["current_lsn"]);
  Lsn restart = ParseLsn(a["source"]["slot"]["restart_lsn"]);
  EXPECT_EQ(a["source"]["slot"]["wal_held_bytes"].get<uint64_t>(), current.BytesSince(restart));
  EXPECT_TRUE(a["last_error"].is_null()) << a.dump();

  // Without the databases, status still shows what the queue knows.
  auto alone = StatusJson({PgbatonBinary(), "status", "--queue-dir", queue_dir, "--json"}, {});
  ASSERT_TRUE(alone.ok()) << alone.status().ToString();
  EXPECT_TRUE((*alone)["source"].is_null());
  EXPECT_FALSE((*alone)["lag"]["known"].get<bool>());
  EXPECT_EQ((*alone)["queue"]["last_commit_lsn"], a["queue"]["last_commit_lsn"]);
  CommandResult text = RunCommand({PgbatonBinary(), "status", "--queue-dir", queue_dir, "--source",
                                   source->Conninfo("app"), "--target", target->Conninfo("app")});
  EXPECT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("slot:     \"pgbaton\" inactive"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("last error: none recorded"), std::string::npos) << text.output;

  // --watch --json: one JSON object per line and refresh; from the second on, the interval rates.
  ProcessOptions watch_po;
  watch_po.stdout_path = dir + "/watch.jsonl";
  watch_po.stderr_path = dir + "/watch.err";  // the signal's one-line notice goes there
  ChildProcess watch({PgbatonBinary(), "status", "--queue-dir", queue_dir, "--target",
                      target->Conninfo("app"), "--json", "--watch", "--interval", "300ms"},
                     watch_po);
  // Until it has printed three refreshes (polled, 30 s at most), then stop it.
  auto complete_lines = [&] {
    std::string out = ReadFile(watch_po.stdout_path);
    return std::count(out.begin(), out.end(), '\n');
  };
  auto watch_until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (complete_lines() < 3 && watch.running() &&
         std::chrono::steady_clock::now() < watch_until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GE(complete_lines(), 3) << "status --watch printed too little in 30 s (running: "
                                 << watch.running() << "): " << ReadFile(watch_po.stdout_path)
                                 << ReadFile(watch_po.stderr_path);
  ASSERT_TRUE(watch.Signal(SIGINT));
  EXPECT_EQ(watch.Wait(30000), 0);
  std::string lines = ReadFile(watch_po.stdout_path);
  int n = 0;
  for (size_t pos = 0, nl; (nl = lines.find('\n', pos)) != std::string::npos; pos = nl + 1) {
    json line = json::parse(lines.substr(pos, nl - pos), nullptr, false);
    ASSERT_FALSE(line.is_discarded()) << lines;
    EXPECT_EQ(line["rates"]["interval"].is_null(), n == 0) << line.dump();
    ++n;
  }
  EXPECT_GE(n, 2) << lines;

  for (const char* t : kTables)
    EXPECT_EQ(TableDigest(*target, "app", t), TableDigest(*source, "app", t)) << t;
  EXPECT_NE(TableDigest(*source, "app", "pgbench_history").substr(0, 2), "0:")
      << "pgbench wrote nothing";
  RemoveTree(dir);
}

// Every place a password could leak, with the password (a) in a .pgpass file and (b) inside
// --source / --target.
TEST(StatusTest, NoPasswordInLogsStatusMetricsOrProcessTitle) {
  const std::string marker = fmt::format("Secret{}Marker", ::getpid());
  auto source = StartServer(15, {.superuser_password = marker + "S"});
  auto target = StartServer(17, {.superuser_password = marker + "T"});
  ASSERT_TRUE(source && target);
  PrepareDatabases(source.get(), target.get(), {});
  if (HasFatalFailure()) return;
  std::string dir = MakeTempDir("pgbaton-status-pw");

  // (a) .pgpass: the password is nowhere, not even in /proc/<pid>/cmdline.
  std::string pgpass = dir + "/pgpass";
  WriteFile(pgpass, fmt::format("127.0.0.1:{}:*:postgres:{}S\n127.0.0.1:{}:*:postgres:{}T\n",
                                source->port(), marker, target->port(), marker));
  ASSERT_EQ(::chmod(pgpass.c_str(), 0600), 0);
  ProcessOptions po;
  po.env = {{"PGPASSFILE", pgpass}};
  // (b) the password inside the conninfo flags.
  for (bool in_flags : {false, true}) {
    SCOPED_TRACE(in_flags ? "password in --source/--target" : "password in .pgpass");
    std::string src = in_flags ? source->Conninfo("app") : Bare(*source, "app");
    std::string tgt = in_flags ? target->Conninfo("app") : Bare(*target, "app");
    if (in_flags) {
      ASSERT_NE(src.find(marker), std::string::npos) << "the fixture set no password";
    }
    std::string queue_dir = dir + (in_flags ? "/q2" : "/q1");
    int port = FreePort();
    ProcessOptions run_po = in_flags ? ProcessOptions{} : po;
    run_po.stdout_path = dir + (in_flags ? "/run2.out" : "/run1.out");
    run_po.stderr_path = dir + (in_flags ? "/run2.err" : "/run1.err");
    ChildProcess run(
        {PgbatonBinary(), "--log-level", "debug", "run", "--source", src, "--target", tgt,
         "--queue-dir", queue_dir, "--metrics-addr", fmt::format("127.0.0.1:{}", port)},
        run_po);
    ASSERT_TRUE(WaitForSlot(*source, "pgbaton")) << ReadFile(run_po.stderr_path);
    CommandResult load =
        RunCommand({kPgbench, "-n", "-c", "2", "-t", "200", source->Conninfo("app")}, {});
    ASSERT_EQ(load.exit_code, 0) << load.output;
    std::string cmdline = ReadFile(fmt::format("/proc/{}/cmdline", run.pid()));
    ASSERT_FALSE(cmdline.empty());
    // pgbaton overwrites the password bytes of its argv as it starts (both cases: nowhere).
    EXPECT_EQ(cmdline.find(marker), std::string::npos) << cmdline;
    ProcessOptions status_po = in_flags ? ProcessOptions{} : po;
    std::string text, js;
    Result<json> j = Status::Error(ErrorCode::kInternal, "status never ran");
    for (int i = 0; i < 100; ++i) {  // until the first transaction is applied
      j = StatusJson({PgbatonBinary(), "status", "--queue-dir", queue_dir, "--source", src,
                      "--target", tgt, "--json"},
                     status_po, &js);
      ASSERT_TRUE(j.ok()) << j.status().ToString();
      if ((*j)["target"]["applied_lsn"].is_string()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    EXPECT_TRUE((*j)["source"]["error"].is_null()) << js;  // it did connect
    EXPECT_TRUE((*j)["target"]["applied_lsn"].is_string()) << js;
    // --watch (text, refreshed until interrupted), as an operator leaves it open.
    ProcessOptions watch_po = status_po;
    watch_po.stdout_path = dir + (in_flags ? "/watch2.out" : "/watch1.out");
    ChildProcess watch({PgbatonBinary(), "status", "--queue-dir", queue_dir, "--source", src,
                        "--target", tgt, "--watch", "--interval", "200ms"},
                       watch_po);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    ASSERT_TRUE(watch.Signal(SIGTERM));
    EXPECT_EQ(watch.Wait(30000), 0);
    text = ReadFile(watch_po.stdout_path);
    EXPECT_NE(text.find("pgbaton status"), std::string::npos) << text;
    EXPECT_EQ(text.find("(error:"), std::string::npos) << text;
    EXPECT_EQ(text.find(marker), std::string::npos) << text;
    if (!in_flags) {
      // status's own password files instead of .pgpass.
      WriteFile(dir + "/src.pw", marker + "S\n");
      WriteFile(dir + "/tgt.pw", marker + "T\n");
      ASSERT_EQ(::chmod((dir + "/src.pw").c_str(), 0600), 0);
      ASSERT_EQ(::chmod((dir + "/tgt.pw").c_str(), 0600), 0);
      std::string out;
      auto pf = StatusJson({PgbatonBinary(), "status", "--queue-dir", queue_dir, "--source", src,
                            "--source-password-file", dir + "/src.pw", "--target", tgt,
                            "--target-password-file", dir + "/tgt.pw", "--json"},
                           {}, &out);
      ASSERT_TRUE(pf.ok()) << pf.status().ToString();
      EXPECT_TRUE((*pf)["source"]["error"].is_null()) << out;
      EXPECT_TRUE((*pf)["target"]["error"].is_null()) << out;
      EXPECT_EQ(out.find(marker), std::string::npos) << out;
    }
    // A wrong password: the error names the server, never the password tried.
    CommandResult wrong =
        RunCommand({PgbatonBinary(), "status", "--queue-dir", queue_dir, "--json", "--source",
                    Bare(*source, "app") + " password=Wrong" + marker});
    EXPECT_EQ(wrong.output.find(marker), std::string::npos) << wrong.output;
    EXPECT_NE(wrong.output.find("\"error\""), std::string::npos) << wrong.output;
    auto page = HttpGet("127.0.0.1", port, "/metrics");
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    EXPECT_NE(page->body.find("pgbaton_applied_lsn"), std::string::npos);
    ASSERT_TRUE(run.Signal(SIGTERM));
    EXPECT_EQ(run.Wait(60000), 0);
    std::string logs = ReadFile(run_po.stdout_path) + ReadFile(run_po.stderr_path);
    EXPECT_FALSE(logs.empty());
    EXPECT_EQ(logs.find(marker), std::string::npos) << logs;
    EXPECT_EQ(js.find(marker), std::string::npos) << js;
    EXPECT_EQ(page->body.find(marker), std::string::npos);
    // The next round starts a new migration: cleanup drops the slot, the origins, the record
    // on the target and the queue (a slot dropped by hand is refused as slot_missing).
    CommandResult clean = RunCommand(
        {PgbatonBinary(), "cleanup", "--source", src, "--target", tgt, "--queue-dir", queue_dir},
        status_po);
    ASSERT_EQ(clean.exit_code, 0) << clean.output;
    EXPECT_EQ(clean.output.find(marker), std::string::npos) << clean.output;
  }
  RemoveTree(dir);
}

// status on a path that is not a queue, on a missing one, and after cleanup removed the queue:
// each says so with its own code, and none of them leaves a directory (or a queue) behind.
TEST(StatusTest, NotAQueueMissingAndAfterCleanupAreSaidSo) {
  std::string dir = MakeTempDir("pgbaton-status-noq");
  auto status = [](const std::string& q) {
    return RunCommand({PgbatonBinary(), "status", "--queue-dir", q, "--json"});
  };
  // A directory holding something else.
  std::string photos = dir + "/photos";
  std::filesystem::create_directories(photos);
  WriteFile(photos + "/a.jpg", "x");
  CommandResult other = status(photos);
  EXPECT_EQ(other.exit_code, 44) << other.output;
  EXPECT_NE(other.output.find("is not a pgbaton queue"), std::string::npos) << other.output;
  EXPECT_NE(other.output.find("hint: check --queue-dir"), std::string::npos) << other.output;
  EXPECT_FALSE(std::filesystem::exists(photos + "/CURRENT"));

  // A path with nothing there: not created by status.
  std::string missing = dir + "/nothing-here";
  CommandResult none = status(missing);
  EXPECT_EQ(none.exit_code, 80) << none.output;
  EXPECT_NE(none.output.find("queue \"" + missing + "\" does not exist"), std::string::npos)
      << none.output;
  EXPECT_FALSE(std::filesystem::exists(missing));

  // A real queue, then cleanup: status says it is gone, and leaves nothing.
  std::string q = dir + "/queue";
  {
    queue::QueueOptions qo;
    qo.dir = q;
    auto opened = queue::WorkQueue::Open(qo);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  }
  CommandResult before = status(q);
  EXPECT_EQ(before.exit_code, 0) << before.output;
  CommandResult cleanup = RunCommand({PgbatonBinary(), "cleanup", "--queue-dir", q});
  ASSERT_EQ(cleanup.exit_code, 0) << cleanup.output;
  CommandResult after = status(q);
  EXPECT_EQ(after.exit_code, 80) << after.output;
  EXPECT_NE(after.output.find("does not exist"), std::string::npos) << after.output;
  EXPECT_NE(after.output.find("pgbaton cleanup"), std::string::npos) << after.output;
  EXPECT_FALSE(std::filesystem::exists(q));
  RemoveTree(dir);
}

}  // namespace
}  // namespace pgbaton::tools

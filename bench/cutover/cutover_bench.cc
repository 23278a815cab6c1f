// End-to-end benchmark of `pgbaton cutover`: the write pause clients see, over several runs, with
// real clusters (15 -> 17), `pgbaton run` streaming, and writers at full rate.
//  - pgbouncer: pgbench -c 4 (no rate limit) through a real PgBouncer plus a probe inserting every
//    ~3 ms; the pause is pgbench's largest transaction latency (from its -l log) and the probe's
//    largest gap between acknowledged inserts; client errors are pgbench's failed/aborted
//    transactions plus the probe's errors. Goal: <= 1 s, zero errors.
//  - roles: the probe writes as the fenced role directly to the clusters (it reconnects to the new
//    one once its role may log in there); the pause is its largest gap. Goal: <= 5 s.
//  - fleet: HAProxy in front of two PgBouncer processes plus a third PgBouncer reached directly
//    (tests/support/cutover_fleet.h); pgbench -c 4 through HAProxy and -c 2 through the third,
//    a probe through each; one cutover fences and flips the three. Goal: median write pause
//    <= 250 ms, max <= 1 s, zero errors.
// Usage: cutover_bench [runs=5] [cases=pgbouncer,roles,fleet]. Prints each run, then median and
// max per case.
#include <dirent.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "tests/support/cutover_fixture.h"
#include "tests/support/cutover_fleet.h"

using pgbaton::Status;
using pgbaton::testing::cutover::Migration;
using pgbaton::testing::cutover::Probe;
namespace t = pgbaton::testing;

namespace {

struct RunResult {
  bool ok = false;
  int64_t pause_ms = -1;        // cutover's own timeline: fence to flip done
  int64_t probe_gap_ms = -1;    // the probe's largest gap
  int64_t pgbench_max_ms = -1;  // pgbench's largest transaction latency
  // The same split: transactions that overlapped the cutover command (check to flip), and the
  // others (the machine's own stalls: checkpoints, other processes on the shared cores).
  int64_t pgbench_max_in_ms = -1, pgbench_max_out_ms = -1;
  int errors = 0;
  int64_t pgbench_tps = 0;
};

int64_t JsonInt(const std::string& out, const std::string& key) {
  size_t p = out.find("\"" + key + "\":");
  if (p == std::string::npos) return -1;
  return std::atoll(out.c_str() + p + key.size() + 3);
}

int64_t UnixMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Largest latency (ms) in pgbench's per-transaction logs "<prefix>.*" ("client txn latency_us
// script epoch_s epoch_us", the epoch being the transaction's end): overall, among transactions
// that overlapped [from_us, to_us], and among the others.
void MaxLatencyMs(const std::string& dir, const std::string& prefix, int64_t from_us, int64_t to_us,
                  RunResult* r) {
  int64_t max_us = 0, in_us = 0, out_us = 0;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind(prefix, 0) != 0) continue;
    std::ifstream in(dir + "/" + name);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      long long client, txn, latency, script, epoch_s, epoch_us;
      if (!(ls >> client >> txn >> latency)) continue;
      max_us = std::max<int64_t>(max_us, latency);
      if (!(ls >> script >> epoch_s >> epoch_us)) continue;
      int64_t end = epoch_s * 1000000 + epoch_us, start = end - latency;
      int64_t& bucket = (end >= from_us && start <= to_us) ? in_us : out_us;
      bucket = std::max<int64_t>(bucket, latency);
    }
  }
  closedir(d);
  r->pgbench_max_ms = max_us / 1000;
  r->pgbench_max_in_ms = in_us / 1000;
  r->pgbench_max_out_ms = out_us / 1000;
}

RunResult RunPgBouncer() {
  RunResult r;
  Migration m;
  Status s = m.Start(15, 17, true);
  if (!s.ok()) {
    std::fprintf(stderr, "setup failed: %s\n", s.ToString().c_str());
    return r;
  }
  std::string via = m.bouncer->Conninfo("app");
  Probe probe([&] { return via; });
  std::string logdir = t::MakeTempDir("pgbench-log");
  t::ProcessOptions po;
  po.stdout_path = logdir + "/out.txt";
  po.cwd = logdir;
  t::ChildProcess pgbench(
      {"pgbench", "-n", "-c", "4", "-j", "2", "-T", "12", "-l", "--log-prefix=tx", "-h",
       "127.0.0.1", "-p", std::to_string(m.bouncer->port()), "-U", "postgres", "app"},
      po);
  std::this_thread::sleep_for(std::chrono::seconds(5));
  int64_t cut_from = UnixMicros();
  t::CommandResult c =
      m.Cutover({"--fence", "pgbouncer:" + m.bouncer->AdminConninfo(), "--flip", "pgbouncer",
                 "--pgbouncer-ini", m.bouncer->ini_path(), "--max-lag", "5s", "--json"});
  int64_t cut_to = UnixMicros();
  int rc = pgbench.Wait(60000);
  probe.Stop();
  std::string out = t::ReadFile(po.stdout_path);
  r.ok = c.exit_code == 0 && rc == 0;
  if (c.exit_code != 0) std::fprintf(stderr, "cutover failed: %s\n", c.output.c_str());
  r.pause_ms = JsonInt(c.output, "write_pause_ms");
  r.probe_gap_ms = probe.largest_gap_ms();
  MaxLatencyMs(logdir, "tx", cut_from, cut_to, &r);
  r.errors = probe.errors() + (rc == 0 ? 0 : 1);
  if (out.find("aborted") != std::string::npos) r.errors++;
  size_t tps = out.find("tps = ");
  if (tps != std::string::npos) r.pgbench_tps = std::atoll(out.c_str() + tps + 6);
  t::RemoveTree(logdir);
  return r;
}

RunResult RunFleet() {
  RunResult r;
  Migration m;
  pgbaton::testing::cutover::BouncerFleet fleet;
  Status s = m.Start(15, 17, false);
  if (s.ok()) s = fleet.Start(*m.source);
  if (!s.ok()) {
    std::fprintf(stderr, "setup failed: %s\n", s.ToString().c_str());
    return r;
  }
  Probe via_haproxy([&] { return fleet.ViaHaProxy(); });
  Probe direct([&] { return fleet.Direct(); });
  std::string logdir = t::MakeTempDir("pgbench-log");
  t::ProcessOptions po1, po2;
  po1.stdout_path = logdir + "/out1.txt";
  po2.stdout_path = logdir + "/out2.txt";
  po1.cwd = po2.cwd = logdir;
  t::ChildProcess pgbench1(
      {"pgbench", "-n", "-c", "4", "-j", "2", "-T", "12", "-l", "--log-prefix=tx1", "-h",
       "127.0.0.1", "-p", std::to_string(fleet.haproxy->port()), "-U", "postgres", "app"},
      po1);
  t::ChildProcess pgbench2(
      {"pgbench", "-n", "-c", "2", "-j", "1", "-T", "12", "-l", "--log-prefix=tx2", "-h",
       "127.0.0.1", "-p", std::to_string(fleet.bouncers[2]->port()), "-U", "postgres", "app"},
      po2);
  std::this_thread::sleep_for(std::chrono::seconds(5));
  std::vector<std::string> flags = fleet.CutoverFlags();
  flags.insert(flags.end(), {"--max-lag", "5s", "--json"});
  int64_t cut_from = UnixMicros();
  t::CommandResult c = m.Cutover(flags);
  int64_t cut_to = UnixMicros();
  int rc1 = pgbench1.Wait(60000), rc2 = pgbench2.Wait(60000);
  via_haproxy.Stop();
  direct.Stop();
  std::string out = t::ReadFile(po1.stdout_path) + t::ReadFile(po2.stdout_path);
  r.ok = c.exit_code == 0 && rc1 == 0 && rc2 == 0;
  if (c.exit_code != 0) std::fprintf(stderr, "cutover failed: %s\n", c.output.c_str());
  r.pause_ms = JsonInt(c.output, "write_pause_ms");
  r.probe_gap_ms = std::max(via_haproxy.largest_gap_ms(), direct.largest_gap_ms());
  MaxLatencyMs(logdir, "tx", cut_from, cut_to, &r);
  r.errors = via_haproxy.errors() + direct.errors() + (rc1 == 0 ? 0 : 1) + (rc2 == 0 ? 0 : 1);
  for (size_t at = out.find("aborted"); at != std::string::npos; at = out.find("aborted", at + 1)) {
    r.errors++;
  }
  for (size_t at = out.find("tps = "); at != std::string::npos; at = out.find("tps = ", at + 1)) {
    r.pgbench_tps += std::atoll(out.c_str() + at + 6);
  }
  t::RemoveTree(logdir);
  return r;
}

RunResult RunRoles() {
  RunResult r;
  Migration m;
  Status s = m.Start(15, 17, false, "create role app_rw login");
  if (!s.ok() || !m.target->Exec("alter role app_rw nologin").ok()) {
    std::fprintf(stderr, "setup failed: %s\n", s.ToString().c_str());
    return r;
  }
  std::string old_ci = m.source->Conninfo("app", "app_rw");
  std::string new_ci = m.target->Conninfo("app", "app_rw");
  std::atomic<bool> use_new{false};
  Probe probe([&] {
    pgbaton::ConnectOptions co;
    co.connect_timeout_seconds = 2;
    if (!use_new && pgbaton::PgConn::Connect(new_ci, co).ok()) use_new = true;
    return use_new ? new_ci : old_ci;
  });
  // Full-rate load on the old cluster as another role (not fenced), so the drain has work.
  t::ProcessOptions po;
  po.stdout_path = m.queue_dir + ".pgbench.txt";
  t::ChildProcess pgbench({"pgbench", "-n", "-c", "4", "-j", "2", "-T", "8", "-h", "127.0.0.1",
                           "-p", std::to_string(m.source->port()), "-U", "postgres", "app"},
                          po);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  t::CommandResult c =
      m.Cutover({"--fence", "roles:app_rw", "--flip", "roles", "--max-lag", "5s",
                 // pgbench writes to the old cluster as another role, around the roles fence:
                 // the fence verification would abort the cutover; end its sessions instead.
                 "--terminate-bypass", "--json"});
  std::this_thread::sleep_for(std::chrono::seconds(1));
  probe.Stop();
  pgbench.Wait(60000);
  r.ok = c.exit_code == 0;
  if (!r.ok) std::fprintf(stderr, "cutover failed: %s\n", c.output.c_str());
  r.pause_ms = JsonInt(c.output, "write_pause_ms");
  r.probe_gap_ms = probe.largest_gap_ms();
  r.errors = probe.errors();
  return r;
}

int64_t Median(std::vector<int64_t> v) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void Summarize(const char* name, const std::vector<RunResult>& runs, int64_t goal_ms) {
  std::vector<int64_t> pause, gap, pg, pg_in, pg_out;
  int failed = 0, errors = 0;
  for (const auto& r : runs) {
    if (!r.ok) {
      failed++;
      continue;
    }
    pause.push_back(r.pause_ms);
    gap.push_back(r.probe_gap_ms);
    if (r.pgbench_max_ms >= 0) pg.push_back(r.pgbench_max_ms);
    if (r.pgbench_max_in_ms >= 0) pg_in.push_back(r.pgbench_max_in_ms);
    if (r.pgbench_max_out_ms >= 0) pg_out.push_back(r.pgbench_max_out_ms);
    errors += r.errors;
  }
  auto mx = [](const std::vector<int64_t>& v) {
    return v.empty() ? int64_t{-1} : *std::max_element(v.begin(), v.end());
  };
  std::printf(
      "%-9s runs=%zu failed=%d | cutover write pause ms: median %lld max %lld | probe largest "
      "gap ms: median %lld max %lld | pgbench max latency ms: median %lld max %lld | client "
      "errors %d | worst client pause / goal %lld ms = %.2f\n",
      name, runs.size(), failed, (long long)Median(pause), (long long)mx(pause),
      (long long)Median(gap), (long long)mx(gap), (long long)Median(pg), (long long)mx(pg), errors,
      (long long)goal_ms,
      static_cast<double>(std::max(mx(gap), mx(pg))) / static_cast<double>(goal_ms));
  if (!pg.empty()) {
    std::printf(
        "%-9s pgbench max latency ms of transactions overlapping the cutover: median %lld max "
        "%lld (/ goal = %.2f) | of the others: median %lld max %lld\n",
        name, (long long)Median(pg_in), (long long)mx(pg_in),
        static_cast<double>(mx(pg_in)) / static_cast<double>(goal_ms), (long long)Median(pg_out),
        (long long)mx(pg_out));
  }
}

}  // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 5;
  std::string cases = argc > 2 ? argv[2] : "pgbouncer,roles,fleet";
  auto want = [&](const std::string& c) {
    return ("," + cases + ",").find("," + c + ",") != std::string::npos;
  };
  std::vector<RunResult> bouncer, roles, fleet;
  for (int i = 0; want("pgbouncer") && i < runs; ++i) {
    RunResult r = RunPgBouncer();
    std::printf(
        "pgbouncer run %d: ok=%d pause=%lld ms probe_gap=%lld ms pgbench_max=%lld ms (during "
        "cutover %lld, outside %lld) errors=%d tps=%lld\n",
        i + 1, r.ok, (long long)r.pause_ms, (long long)r.probe_gap_ms, (long long)r.pgbench_max_ms,
        (long long)r.pgbench_max_in_ms, (long long)r.pgbench_max_out_ms, r.errors,
        (long long)r.pgbench_tps);
    std::fflush(stdout);
    bouncer.push_back(r);
  }
  for (int i = 0; want("roles") && i < runs; ++i) {
    RunResult r = RunRoles();
    std::printf("roles run %d: ok=%d pause=%lld ms probe_gap=%lld ms errors=%d\n", i + 1, r.ok,
                (long long)r.pause_ms, (long long)r.probe_gap_ms, r.errors);
    std::fflush(stdout);
    roles.push_back(r);
  }
  for (int i = 0; want("fleet") && i < runs; ++i) {
    RunResult r = RunFleet();
    std::printf(
        "fleet run %d: ok=%d pause=%lld ms probe_gap=%lld ms pgbench_max=%lld ms (during "
        "cutover %lld, outside %lld) errors=%d tps=%lld\n",
        i + 1, r.ok, (long long)r.pause_ms, (long long)r.probe_gap_ms, (long long)r.pgbench_max_ms,
        (long long)r.pgbench_max_in_ms, (long long)r.pgbench_max_out_ms, r.errors,
        (long long)r.pgbench_tps);
    std::fflush(stdout);
    fleet.push_back(r);
  }
  if (!bouncer.empty()) Summarize("pgbouncer", bouncer, 1000);
  if (!roles.empty()) Summarize("roles", roles, 5000);
  if (!fleet.empty()) Summarize("fleet", fleet, 1000);
  return 0;
}

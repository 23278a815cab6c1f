// Shared setup of the cutover tests: a source (old major) with pgbench's schema and data, a
// target (new major) filled by pg_dump | psql, `pgbaton run` streaming between them, optionally a
// real PgBouncer in front of the source, and a probe writer that inserts numbered rows and
// records which inserts were acknowledged.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "tests/support/pg_server.h"
#include "tests/support/pgbouncer.h"
#include "tests/support/process.h"

namespace pgbaton::testing::cutover {

struct Migration {
  std::unique_ptr<testing::PgServer> source, target;
  std::unique_ptr<testing::PgBouncer> bouncer;  // in front of the source ("app")
  std::string queue_dir;
  testing::ChildProcess run;
  std::string run_log;
  bool run_stopped_ = false;  // StopRun was called

  // Starts both clusters (app database, pgbench schema + probe table), copies schema and data to
  // the target, starts `pgbaton run` and waits for its slot. `roles_sql` runs on both sides
  // before the copy (e.g. creating application roles).
  Status Start(int source_major, int target_major, bool with_bouncer,
               const std::string& roles_sql = "");
  void StopRun();
  ~Migration();

  // Runs `pgbaton cutover` with the common flags plus `extra`; returns its result.
  testing::CommandResult Cutover(const std::vector<std::string>& extra) const;
  // Runs it with the test hook --pause-at `point` (it SIGSTOPs itself there); once it is frozen,
  // runs `action`, lets it go on (SIGCONT) and returns its result. `paused` says whether it
  // reached the point.
  testing::CommandResult CutoverPausedAt(const std::vector<std::string>& extra,
                                         const std::string& point,
                                         const std::function<void()>& action, bool* paused) const;

 private:
  // On failure, adds whether `pgbaton run` still runs, and its log, to r->output.
  void AppendRunState(testing::CommandResult* r) const;
};

// Inserts a numbered row into probe every few ms through whatever `conninfo()` says now,
// reconnecting after errors. Records acknowledged numbers, errors and the largest gap between two
// acknowledged inserts.
class Probe {
 public:
  explicit Probe(std::function<std::string()> conninfo, std::string user = "postgres");
  ~Probe();
  void Stop();
  std::set<int64_t> acknowledged();
  int errors() const { return errors_.load(); }
  std::string first_error();
  int64_t largest_gap_ms() const { return largest_gap_ms_.load(); }

 private:
  void Loop();
  std::function<std::string()> conninfo_;
  std::atomic<bool> stop_{false};
  std::atomic<int> errors_{0};
  std::atomic<int64_t> largest_gap_ms_{0};
  std::mutex mu_;
  std::set<int64_t> acked_;
  std::string first_error_;
  std::thread thread_;
};

// The reverse stream `cutover --reverse` starts (a process of its own, not a child of the test):
// stopped with SIGTERM, then SIGKILL after 10 s, when this goes out of scope, so that an assertion
// failing in the middle of a test does not leave it running. Not copyable.
class ReverseStream {
 public:
  explicit ReverseStream(pid_t pid) : pid_(pid) {}
  ~ReverseStream() { Stop(); }
  ReverseStream(const ReverseStream&) = delete;
  ReverseStream& operator=(const ReverseStream&) = delete;
  // Stops it now (no-op once stopped, or for a pid <= 0).
  void Stop();

 private:
  pid_t pid_;
};

// The ids of `table` on a server (app database).
Result<std::set<int64_t>> Ids(testing::PgServer& server, const std::string& table);

}  // namespace pgbaton::testing::cutover

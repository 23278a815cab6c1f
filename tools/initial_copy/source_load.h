// Protecting the source while the copy reads it (--source-load-limit): a monitor thread with its
// own source session samples, about once a second, signals a DBA already watches, and the copy
// workers pause while one of them is over its limit:
//   active-sessions=N  sessions of client backends in state 'active' in pg_stat_activity, on
//                      every database, leaving out this copy's own sessions (and walsenders,
//                      autovacuum, parallel and other background workers)
//   standby-lag=D      the largest replay_lag in pg_stat_replication of a physical standby
//                      (logical walsenders, e.g. migrate's own decoder, are left out)
// With hysteresis: a signal that went over its limit holds the copy until it is back at or under
// kResumeFraction of it, so the workers do not flap around the limit.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/pg.h"
#include "common/status.h"
#include "tools/initial_copy/copy_options.h"

namespace pgbaton::tools::copy {

// A paused signal resumes at or under this fraction of its limit.
inline constexpr double kResumeFraction = 0.8;

// Parses --source-load-limit: "active-sessions=N,standby-lag=D" (either or both, in any order; D
// a duration as in tools/config/duration.h, e.g. 10s or 500ms). "" means no limit.
// Errors: kUsage naming the flag and what is wrong.
Result<SourceLoadLimits> ParseSourceLoadLimits(const std::string& text);

// One reading of the signals the limits watch (nullopt: not watched).
struct LoadSample {
  std::optional<int64_t> active_sessions;
  std::optional<double> standby_lag_seconds;  // 0 when there is no physical standby
};

// Whether the copy may read the source: the limits and hysteresis over the samples the monitor
// gives it. Thread-safe: the monitor updates it, workers wait on it.
class LoadGate {
 public:
  explicit LoadGate(SourceLoadLimits limits) : limits_(limits) {}

  // Takes a sample; returns true when the gate closed or opened because of it.
  bool Update(const LoadSample& s);
  // Opens the gate whatever the signals said (the monitor cannot read them any more); returns
  // true when it was closed.
  bool Open();
  bool paused() const;
  // Why the copy is paused, for people: "active sessions 37 > 32"; "" when it is not.
  std::string reason() const;
  // The metric labels of the signals holding the copy ("active_sessions", "standby_lag").
  std::vector<std::string> reason_labels() const;
  // Returns at once when open, else when the gate opens or *stop turns true (checked every
  // 100 ms); returns how long it waited.
  std::chrono::nanoseconds WaitWhileClosed(const std::atomic<bool>* stop);

 private:
  std::string ReasonLocked() const;
  const SourceLoadLimits limits_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool sessions_over_ = false;  // active sessions went over the limit and are not back under 80%
  bool lag_over_ = false;
  LoadSample last_;
};

// The backend PIDs of this copy's own source sessions, which active-sessions leaves out.
// Thread-safe.
class SessionSet {
 public:
  void Add(int pid);
  void Remove(int pid);
  std::vector<int> Pids() const;

 private:
  mutable std::mutex mu_;
  std::multiset<int> pids_;
};

// Reads the signals `limits` watches on `conn` (a session on the source), leaving the sessions in
// `own_pids` and `conn`'s own out of active-sessions. Errors: the server's.
Result<LoadSample> ReadSourceLoad(PgConn& conn, const SourceLoadLimits& limits,
                                  const std::vector<int>& own_pids);

struct SourceLoadMonitorOptions {
  std::string conninfo;                            // the source
  SourceLoadLimits limits;                         // what to watch
  std::chrono::milliseconds interval{1000};        // how often to sample
  std::chrono::milliseconds give_up_after{30000};  // unreadable this long: the gate opens
  const SessionSet* own_sessions = nullptr;        // left out of active-sessions (may be null)
  // Called from the monitor thread when the gate closes or opens, or its reason changes (paused,
  // why, the labels of the signals holding it); may be empty.
  std::function<void(bool paused, const std::string& reason,
                     const std::vector<std::string>& labels)>
      on_change;
};

// The thread that samples the source into `gate` until destroyed; the constructor takes the
// first sample itself, so a source already loaded holds the copy from its first byte. When it
// cannot connect or read, it logs once, keeps the gate as it is and tries again each interval;
// after give_up_after without a reading it opens the gate (logged), so the copy is never held
// forever by a monitor that cannot see the source. A reading closes it again if need be.
class SourceLoadMonitor {
 public:
  SourceLoadMonitor(SourceLoadMonitorOptions options, LoadGate* gate);
  ~SourceLoadMonitor();
  SourceLoadMonitor(const SourceLoadMonitor&) = delete;
  SourceLoadMonitor& operator=(const SourceLoadMonitor&) = delete;

 private:
  void Loop();
  // One sample (connecting first when needed), then on_change if the gate moved.
  void Step();
  SourceLoadMonitorOptions options_;
  LoadGate* gate_;
  std::atomic<bool> stop_{false};
  // The monitor thread's own state (and the constructor's, before the thread starts).
  std::optional<PgConn> conn_;
  std::chrono::steady_clock::time_point last_read_;
  bool failing_ = false;
  bool gave_up_ = false;
  std::string last_reason_;
  std::thread thread_;
};

}  // namespace pgbaton::tools::copy

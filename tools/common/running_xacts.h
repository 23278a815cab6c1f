// Keeps what a logical slot holds on the source down to about a second of WAL. The server moves
// a slot's restart point only at the running-transactions records it logs (every 15 s from the
// background writer while there are writes), so between two of them the slot holds the WAL
// however soon the decoder confirmed it: 15-30 s of the source's WAL rate. A 16+ source logs one
// on request (pg_log_standby_snapshot()); asked every second, the restart point follows the
// decoder's confirmed position within a second or two. Sources before 16 cannot be asked, and a
// role may not be allowed to (superuser, or GRANT EXECUTE): both are said once in the log and
// stop nothing.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

namespace pgbaton::tools {

class RunningXactsNudge {
 public:
  // Starts a thread that asks the source `source` (a conninfo) for a running-transactions
  // record every `interval`, on a connection of its own (reopened after a failure).
  explicit RunningXactsNudge(std::string source,
                             std::chrono::milliseconds interval = std::chrono::seconds(1));
  ~RunningXactsNudge();
  RunningXactsNudge(const RunningXactsNudge&) = delete;
  RunningXactsNudge& operator=(const RunningXactsNudge&) = delete;

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace pgbaton::tools

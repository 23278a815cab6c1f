// The scheduler's bookkeeping, without I/O: source transactions, in commit order, are grouped
// into target transactions ("groups", numbered 1, 2, ... in commit order) bounded by rows, bytes
// and time; group g runs on connection (g - 1) % jobs; a transaction whose write set conflicts
// with an uncommitted earlier group waits for that group's commit before it runs. Groups are
// contiguous ranges of the source order and commit strictly in order, so the set of committed
// transactions on the target is always a prefix of the source order (see applier.h).
// Not thread-safe: the coordinator thread owns it.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "applier/write_set.h"
#include "common/types.h"

namespace pgbaton::applier {

struct PlannerOptions {
  int jobs = 1;                       // apply connections
  size_t group_max_rows = 20000;      // changes per target transaction
  size_t group_max_bytes = 32 << 20;  // approximate bytes of changes per target transaction
  std::chrono::milliseconds group_max_delay{1000};  // age of a group before it commits
};

struct Assignment {
  uint64_t group = 0;     // the group the transaction joins
  int worker = 0;         // the connection running that group
  uint64_t wait_for = 0;  // run only after this group committed (0: no wait)
  bool opened = false;    // the transaction opened this group
  // Mergeable updates (by index in the transaction) whose row an uncommitted group on another
  // connection also writes: each is sent only after that group committed, while the rest of
  // the transaction runs at once.
  std::vector<std::pair<int32_t, uint64_t>> deferred;
};

class Planner {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Planner(const PlannerOptions& options) : options_(options) {}

  // Places a transaction with `rows` changes of about `bytes`, holding `ws` (ignored with one
  // job). If the open group is full first, the caller is told to close it via `*close_first`
  // (the group number) before sending this transaction.
  Assignment Add(const WriteSet& ws, size_t rows, size_t bytes, Clock::time_point now,
                 uint64_t* close_first);
  // Places a transaction that must run alone after every earlier group commits, and that every
  // later transaction waits for (a transaction too large to hold in memory: its write set is not
  // known in advance). Its group is closed: the caller closes `*close_first` (if non-zero) first
  // and closes the returned group after sending the transaction.
  Assignment AddBarrier(uint64_t* close_first);
  // The open group if it is due (older than group_max_delay) or `force`; 0 if none. The caller
  // then sends its commit. The group is closed from here on.
  uint64_t CloseIfDue(Clock::time_point now, bool force);
  // Tells the planner that every group <= `group` committed (lets the write sets go).
  void Committed(uint64_t group);

  uint64_t open_group() const { return open_; }
  uint64_t last_group() const { return next_ - 1; }
  int WorkerOf(uint64_t group) const { return static_cast<int>((group - 1) % options_.jobs); }
  size_t tracked_keys() const { return tracker_.size(); }

 private:
  PlannerOptions options_;
  ConflictTracker tracker_;
  uint64_t next_ = 1;       // the next group number
  uint64_t open_ = 0;       // the group taking transactions (0: none)
  uint64_t committed_ = 0;  // every group <= this committed
  uint64_t barrier_ = 0;    // the latest barrier group: later transactions wait for it
  size_t rows_ = 0, bytes_ = 0;
  Clock::time_point opened_at_;
};

}  // namespace pgbaton::applier

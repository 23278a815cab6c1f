#include "applier/planner.h"

#include <algorithm>

namespace pgbaton::applier {

Assignment Planner::Add(const WriteSet& ws, size_t rows, size_t bytes, Clock::time_point now,
                        uint64_t* close_first) {
  *close_first = 0;
  if (open_ != 0 &&
      (rows_ + rows > options_.group_max_rows || bytes_ + bytes > options_.group_max_bytes) &&
      rows_ > 0) {
    *close_first = open_;
    open_ = 0;
  }
  Assignment a;
  if (open_ == 0) {
    open_ = next_++;
    rows_ = bytes_ = 0;
    opened_at_ = now;
    a.opened = true;
  }
  rows_ += rows;
  bytes_ += bytes;
  a.group = open_;
  a.worker = WorkerOf(open_);
  if (options_.jobs > 1) {
    std::vector<std::pair<int32_t, uint64_t>> deferred;
    uint64_t dep = tracker_.Acquire(ws, open_, &deferred);
    if (barrier_ > dep && barrier_ < open_) dep = barrier_;
    // Groups on the same connection run in order anyway; only other connections need a wait.
    if (dep > committed_ && WorkerOf(dep) != a.worker) a.wait_for = dep;
    for (const auto& [change, group] : deferred) {
      if (group > committed_ && group > a.wait_for && WorkerOf(group) != a.worker) {
        a.deferred.emplace_back(change, group);
      }
    }
  }
  return a;
}

Assignment Planner::AddBarrier(uint64_t* close_first) {
  *close_first = open_;
  open_ = 0;
  Assignment a;
  a.group = next_++;
  a.worker = WorkerOf(a.group);
  a.opened = true;
  if (a.group - 1 > committed_ && WorkerOf(a.group - 1) != a.worker) a.wait_for = a.group - 1;
  barrier_ = a.group;
  return a;
}

uint64_t Planner::CloseIfDue(Clock::time_point now, bool force) {
  if (open_ == 0) return 0;
  if (!force && now - opened_at_ < options_.group_max_delay) return 0;
  uint64_t g = open_;
  open_ = 0;
  return g;
}

void Planner::Committed(uint64_t group) {
  if (group <= committed_) return;
  committed_ = group;
  tracker_.Release(group);
}

}  // namespace pgbaton::applier

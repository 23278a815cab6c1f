// The hand-off between the applier's coordinator thread and its apply sessions (see applier.h):
// one bounded channel of items per session (work to apply, group commits), and the state every
// thread of one run shares (which groups committed, whether the run failed). Internal to
// applier/.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

#include "applier/applier.h"
#include "applier/apply_work.h"
#include "common/status.h"
#include "common/types.h"

namespace pgbaton::applier {

// What one run's threads share. Every field is guarded by `mu`; `cv` is notified on each change.
struct SharedState {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t committed = 0;  // every group <= this committed
  bool failed = false;     // set once, never cleared: the run ends
  Status error;            // the first failure
  ApplierStats stats;      // transactions, changes, groups and applied_lsn of this run

  // Records `s` as the run's failure unless one is recorded already, and wakes every waiter.
  void Fail(Status s);
  bool Failed();
  // Blocks until every group <= `group` committed (true) or the run failed (false).
  bool WaitCommitted(uint64_t group);
};

// What a group's commit records and counts.
struct GroupCommit {
  Lsn lsn;  // the group's last commit LSN and time
  PgTimestamp time;
  uint64_t txns = 0;  // source transactions and changes in the group
  uint64_t changes = 0;
};

class ApplySession;

// What the coordinator sends a session: work of a group, the group's commit, or a whole group
// that a function runs and commits on the session (a DDL transaction, applier_ddl.cc).
struct Item {
  enum class Kind { kWork, kCommit, kCall };

  // Work of `group`, to run only after group `wait_for` committed (0: no wait).
  static Item Work(uint64_t group, uint64_t wait_for, std::shared_ptr<TxnWork> work);
  // The commit of `group`.
  static Item Commit(uint64_t group, const GroupCommit& commit);
  // The whole of `group`, run by `call` on the session's thread after group `wait_for`
  // committed; `call` commits it, and `commit` is what the group counts.
  static Item Call(uint64_t group, uint64_t wait_for, const GroupCommit& commit,
                   std::function<Status(ApplySession*)> call);

  Kind kind = Kind::kWork;
  uint64_t group = 0;
  uint64_t wait_for = 0;                      // kWork
  std::shared_ptr<TxnWork> work;              // kWork: the session owns it from here on
  GroupCommit commit;                         // kCommit, kCall
  std::function<Status(ApplySession*)> call;  // kCall
  size_t bytes = 0;                           // counted against the channel's capacity
};

// A queue of items for one session, bounded by bytes so memory stays flat whatever the backlog.
// Thread-safe: one coordinator pushes, one session pops; both give up once the run failed.
class Channel {
 public:
  // `shared` must outlive the channel.
  Channel(SharedState* shared, size_t capacity_bytes)
      : shared_(shared), capacity_(capacity_bytes) {}

  // Appends `item`, blocking while the channel is full (an item always fits an empty channel).
  // False when the run failed.
  bool Push(Item item);
  // Takes the oldest item, blocking while the channel is empty. False when the run failed, or
  // when the channel is closed and empty.
  bool Pop(Item* out);
  // No more items will come: Pop returns false once the channel is empty.
  void Close();

 private:
  SharedState* shared_;
  size_t capacity_;
  std::deque<Item> items_;
  size_t bytes_ = 0;
  bool closed_ = false;
};

}  // namespace pgbaton::applier

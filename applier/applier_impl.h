// The applier's coordinator (see applier.h), split across files by concern as RocksDB's DBImpl
// is: applier.cc holds the run, the read loop, grouping and pauses; applier_ddl.cc the DDL
// records of `--ddl replicate`. Internal to applier/.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "applier/applier.h"
#include "applier/apply_session.h"
#include "applier/apply_work.h"
#include "applier/channel.h"
#include "applier/ddl_record.h"
#include "applier/pause.h"
#include "applier/planner.h"
#include "applier/target_relation.h"
#include "common/pg.h"
#include "queue/work_queue.h"

namespace pgbaton::applier {

// Calls `fn` with each chunk of the transaction `reader` reads, in order.
Status ForEachChunk(queue::TransactionReader* reader,
                    const std::function<Status(queue::ChangeChunk*)>& fn);
// An empty work item for the transaction `commit`.
std::shared_ptr<TxnWork> NewWork(const queue::CommitRecord& commit);

class Applier::Impl {
 public:
  Impl(const ApplierOptions& o, queue::WorkQueue* q) : options_(o), queue_(q) {}

  Status Run(const std::atomic<bool>* stop);
  ApplierStats stats() {
    std::lock_guard<std::mutex> l(stats_mu_);
    ApplierStats s = total_;
    if (shared_ != nullptr) {
      std::lock_guard<std::mutex> l2(shared_->mu);
      s.transactions += shared_->stats.transactions;
      s.changes += shared_->stats.changes;
      s.groups += shared_->stats.groups;
      if (shared_->stats.applied_lsn.IsValid()) s.applied_lsn = shared_->stats.applied_lsn;
    }
    return s;
  }

 private:
  using Clock = std::chrono::steady_clock;
  using RelationCache = std::map<std::pair<uint32_t, uint32_t>, TargetRelationPtr>;

  // One run: connects, applies from the target's position until `stop`, --stop-at (`*done`) or
  // an error, and lets the sessions drain.
  Status RunOnce(const std::atomic<bool>* stop, bool* done);
  // Connects options_.jobs apply sessions.
  Status OpenSessions(const ProgressStore& progress, SharedState* shared,
                      std::vector<std::unique_ptr<ApplySession>>* sessions);
  // The coordinator loop: reads transactions from `start` on and hands them to the sessions.
  Status Coordinate(const std::atomic<bool>* stop, const ProgressStore& progress, Lsn start,
                    bool* done);
  // Between reads: trims the queue up to the target's flushed position (every trim_interval),
  // reloads the sync LSNs (every 2 s).
  Status Maintain(const ProgressStore& progress);
  // No transaction to read: commits the open group; `*done` once every transaction up to
  // --stop-at has been read (ReadEverythingBefore).
  Status OnIdle(bool* done);
  // A transaction too large to hold: it runs alone, chunk by chunk as it is read, after every
  // earlier group commits.
  Status DispatchLarge(queue::TransactionReader* reader, const queue::CommitRecord& commit);
  // Any other transaction: read whole, placed into a group by the planner.
  Status DispatchGrouped(queue::TransactionReader* reader, const queue::CommitRecord& commit);
  // The changes of a transaction read whole, placed into a group by the planner.
  Status DispatchChanges(std::vector<queue::Change> changes, const queue::CommitRecord& commit);

  // DDL (applier_ddl.cc). Calls `fn` with each change of the transaction, in order.
  using ChangeVisitor = std::function<Status(const std::function<Status(queue::Change*)>&)>;
  // Whether `c` is a DDL record (a message with kDdlMessagePrefix, or a row inserted into
  // pgbaton.ddl_log), and then its JSON in `*json`.
  Result<bool> DdlContent(const queue::Change& c, std::string* json);
  // Whether relation `id` is pgbaton.ddl_log on the source (its rows are DDL records, never
  // applied as rows).
  Result<bool> IsDdlLog(RelationId id, uint32_t version);
  // With --ddl replicate: a large transaction is scanned for DDL records first; one that holds
  // any goes to DispatchDdl, any other to DispatchLarge (both read it again).
  Status DispatchLargeMaybeDdl(queue::TransactionReader* reader, const queue::CommitRecord& commit);
  // A transaction holding DDL records (`ddl`, by the index of their change): a barrier. Every
  // earlier group commits first; then one session runs the whole transaction in one target
  // transaction (the DDL under its search_path and role, the rows in between, the position) and
  // commits it; then the relation descriptors are looked up again.
  struct DdlStep {
    size_t index = 0;   // the change that carried the record, counted from 0 in the transaction
    size_t run_at = 0;  // runs before this change: its own index, or for CREATE TABLE AS the
                        // start of its statement's changes (its rows precede its record)
    DdlRecord record;
    std::string statement;  // what runs on the target; empty: not replayed
    Status error;           // not replayable: the applier stops at this transaction
  };
  Status DispatchDdl(const queue::CommitRecord& commit, std::vector<DdlStep> ddl,
                     const ChangeVisitor& visit);
  // Runs on the session's thread while the coordinator waits (see DispatchDdl).
  Status RunDdlTransaction(ApplySession* session, const queue::CommitRecord& commit,
                           const std::vector<DdlStep>& ddl, const ChangeVisitor& visit);
  // Reads the DDL records of a transaction into steps, deciding for each whether it replays.
  Status CollectDdl(const queue::CommitRecord& commit, const ChangeVisitor& visit,
                    std::vector<DdlStep>* ddl);
  // Records an operator's --skip-ddl in the queue's metadata and the log.
  Status RecordSkipped(const queue::CommitRecord& commit, const std::string& statement);
  // Hands `item` to session `worker`. Errors: when the run failed (its error is the session's).
  Status Send(int worker, Item item);
  // Sends the commit of `group` (nothing for 0) with open_commit_, which starts over.
  Status SendCommit(uint64_t group);
  // Pause requests (applier/pause.h). PollPause reads the request and answers its first step;
  // PauseLimit is the commit LSN this run may not apply at or past (Invalid: none); HoldForPause
  // is one turn of waiting there, which answers 'paused' once everything before the pause's LSN
  // is committed, and 'expired' after pause_max.
  Status PollPause();
  Lsn PauseLimit() const;
  Status HoldForPause();
  // Idle at the queue's tail: whether every transaction committing before `lsn` has been read
  // (the source is past it and the queue holds nothing newer than what this run read).
  Result<bool> ReadEverythingBefore(Lsn lsn);
  // The last commit LSN committed on the target (this run's, else where it started).
  Lsn AppliedLsn();
  // Adds the finished run's counters to total_.
  void AddTotals(const SharedState& shared,
                 const std::vector<std::unique_ptr<ApplySession>>& sessions);

  Result<TargetRelationPtr> Resolve(RelationId id, uint32_t version);
  Status LoadSyncLsns();
  // Records the queue's high-water end LSN and the trim point in its metadata before a trim.
  Status RecordHighWater(Lsn trim_upto);
  bool Filtered(const TargetRelation& rel, Lsn commit_lsn);
  // Turns queue changes into resolved ones (dropping what sync LSNs cover) and adds write keys.
  // Errors name the commit LSN.
  Status Resolve(std::vector<queue::Change>* changes, Lsn commit_lsn, TxnWork* work, WriteSet* ws);
  Status ResolveChanges(std::vector<queue::Change>* changes, Lsn commit_lsn, TxnWork* work,
                        WriteSet* ws);

  ApplierOptions options_;
  queue::WorkQueue* queue_;
  std::mutex stats_mu_;
  ApplierStats total_;             // from finished runs
  SharedState* shared_ = nullptr;  // the current run's (guarded by stats_mu_)

  // Per run.
  std::optional<PgConn> control_;
  RelationCache relations_;
  // While a DDL transaction runs: relations are looked up through that session (which sees its
  // own uncommitted catalogue) into a cache of that transaction's own.
  ApplySession* ddl_session_ = nullptr;
  RelationCache ddl_relations_;
  // Descriptors from before a DDL: kept for the run, so that no new descriptor takes the address
  // a session's prepared statements are keyed by.
  std::vector<TargetRelationPtr> retired_;
  std::unordered_map<uint32_t, bool> ddl_log_ids_;  // relation id -> is pgbaton.ddl_log
  std::unordered_map<std::string, Lsn> sync_lsns_;
  Clock::time_point sync_loaded_at_;
  Lsn high_water_, trimmed_through_;  // what RecordHighWater last wrote
  bool trim_ = true;                  // trimming the queue (until a trim fails)
  Clock::time_point last_trim_;
  std::vector<std::unique_ptr<Channel>> channels_;
  Planner* planner_ = nullptr;
  GroupCommit open_commit_;  // the open group's
  uint64_t last_group_ = 0;  // the highest group whose commit was sent
  Lsn start_;                // where this run started
  Lsn read_through_;         // the commit LSN of the last transaction read (or start_)
  uint64_t filtered_ = 0;
  std::optional<PauseListener> pause_;
  int64_t answered_id_ = 0;  // the pause request whose first step was answered
  int64_t expired_id_ = 0;   // the one given up on after pause_max
  int64_t hold_id_ = 0;      // the one being held for, since hold_started_
  Clock::time_point hold_started_;
};

}  // namespace pgbaton::applier

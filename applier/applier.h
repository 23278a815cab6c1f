// The applier: replays committed source transactions from a WorkQueue onto the target, exactly
// once, fast. One coordinator thread reads the queue in commit-LSN order, drops changes a table's
// sync LSN already covers, matches relations to the target, and groups transactions into target
// transactions; N apply sessions (threads, each with its own connection) run the groups.
//
// Exactly once with grouping and parallel apply: groups are contiguous ranges of the source order
// and commit strictly one after another (a session commits group g only once g - 1 committed),
// so the transactions committed on the target are always a prefix of the source order — also
// after a crash of the target, whose WAL replays commits in that same order. Each group records
// its last commit LSN through its connection's replication origin ("<name>", "<name>-1", ...) in
// the same transaction; the target's position is therefore the highest origin position, and a
// restart resumes right after it. Sessions run with synchronous_commit = off; the queue is
// trimmed only up to the flushed position (pg_replication_origin_progress(name, true)).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "applier/planner.h"
#include "applier/progress.h"  // ReadTargetPosition, for the applier's users
#include "common/metrics_catalog.h"
#include "common/status.h"
#include "common/types.h"
#include "queue/work_queue.h"

namespace pgbaton::applier {

enum class OnConflict { kError, kSkip };

struct ApplierOptions {
  std::string target_conninfo;                      // libpq conninfo of the new cluster
  std::string name = "pgbaton";                     // names the origins (or progress rows)
  int jobs = 1;                                     // apply connections (--apply-jobs)
  OnConflict on_conflict = OnConflict::kError;      // kSkip logs and skips conflicting changes
  ProgressMode progress = ProgressMode::kAuto;      // origins when allowed, else pgbaton.progress
  size_t group_max_rows = 20000;                    // changes per target transaction
  size_t group_max_bytes = 32 << 20;                // bytes of changes per target transaction
  std::chrono::milliseconds group_max_delay{1000};  // a group commits at the latest this old
  size_t copy_min_rows = 8;               // inserts in a row into one relation sent as COPY
  size_t big_txn_changes = 50000;         // larger transactions stream chunk by chunk, alone
  size_t session_queue_bytes = 32 << 20;  // work queued per session (bounds memory)
  Lsn stop_at;                            // stop once everything up to here is applied
  // Where the source stream is durably (for --stop-at when the queue is idle); default: the
  // queue's LastEndLsn.
  std::function<Lsn()> source_position;
  bool trim_queue = true;  // trim the queue up to the target's flushed position
  std::chrono::milliseconds trim_interval{5000};
  bool retry = true;                         // reconnect and resume after retryable errors
  std::chrono::milliseconds idle_wait{100};  // how long one queue read waits
  // Pause requests (applier/pause.h, for `verify --at-lsn`): honoured when set; the longest the
  // applier holds for one before it answers 'expired' and goes on.
  bool pause_requests = true;
  std::chrono::milliseconds pause_max{std::chrono::minutes(5)};
  // --ddl replicate: DDL records (applier/ddl_record.h) replay on the target as barriers, in
  // commit order (applier_ddl.cc). false (--ddl stop): they are ignored, and a relation that
  // differs on the target stops the applier with kSchemaChanged.
  bool ddl_replicate = false;
  // --skip-ddl: the DDL records of the transaction committed at this LSN are not replayed (an
  // operator applied an equivalent by hand); its rows still are. Invalid: none.
  Lsn skip_ddl;
  // Whether DDL on table `schema`.`table` replays (the copy's --include/--exclude); unset: all.
  std::function<bool(const std::string& schema, const std::string& table)> ddl_table_selected;
  // The series the applier counts into: its database's in a cluster migration; null:
  // metrics::CatalogMetrics().
  const metrics::Catalog* metrics = nullptr;
  // Test hook: the process SIGKILLs itself in a DDL transaction, "ddl-before-commit" (the DDL ran
  // in the open target transaction) or "ddl-after-commit" (it committed with the position).
  std::string crash_at;
};

struct ApplierStats {
  uint64_t transactions = 0;  // source transactions applied
  uint64_t changes = 0;       // row changes applied (after sync-LSN filtering)
  uint64_t filtered = 0;      // changes dropped by a table's sync LSN
  uint64_t groups = 0;        // target transactions committed
  uint64_t copy_rows = 0;     // rows sent through COPY
  uint64_t skipped_conflicts = 0;
  uint64_t ddl_replayed = 0;  // DDL statements replayed on the target (--ddl replicate)
  uint64_t ddl_skipped = 0;   // DDL records not replayed (filtered, pgbaton's own, --skip-ddl)
  Lsn applied_lsn;            // the last commit LSN committed on the target
};

class Applier {
 public:
  // The queue must outlive the applier. Nothing connects until Run.
  Applier(const ApplierOptions& options, queue::WorkQueue* queue);
  ~Applier();

  // Applies until `stop` becomes true (then commits what is in flight and returns OK), until
  // everything up to options.stop_at is applied (OK), or until an error that retrying cannot
  // fix: kApplyConflict naming relation, key and LSN (nothing after it is applied), kNotFound /
  // kSchemaChanged for a relation missing or different on the target, kQueueCorrupt, ...
  // Retryable errors (a lost connection, the target restarting) reconnect and resume from the
  // target's position when options.retry is set. Call once; thread-compatible.
  Status Run(const std::atomic<bool>* stop);

  // Counters so far (thread-safe; for progress output and metrics).
  ApplierStats stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgbaton::applier

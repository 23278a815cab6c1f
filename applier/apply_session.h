// One apply connection to the target. Statements are prepared once per relation and column
// set and sent in libpq pipeline mode; runs of inserts into one relation go as multi-row INSERTs
// or COPY (apply_session_insert.cc), updates of rows whose key is their only unique index are
// merged per row and sent as multi-row UPDATEs (apply_session_update.cc). Conflicts (an UPDATE /
// DELETE matching no row, a duplicate key) are found before COMMIT, so a conflicting group is
// rolled back whole. Not thread-safe: one thread drives one session.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "applier/apply_work.h"
#include "applier/progress.h"
#include "applier/row_key.h"
#include "applier/sql_builder.h"
#include "common/pg.h"
#include "common/status.h"

namespace pgbaton::applier {

struct SessionOptions {
  int worker = 0;                     // index of this connection (names its origin)
  bool skip_conflicts = false;        // --on-conflict skip: log and go on
  size_t copy_min_rows = 8;           // a run of at least this many inserts goes as COPY
  size_t copy_max_bytes = 8 << 20;    // a COPY is ended after this many bytes
  size_t sync_every = 512;            // statements between pipeline syncs (bounds buffers)
  size_t max_pending_updates = 2000;  // merged rows held back before the ready ones are sent
  size_t batch_rows = 1000;           // merged updates sent per multi-row UPDATE statement
  // Blocks until every group <= the argument committed (for deferred updates, see
  // ResolvedChange::after_group); an error when the run is failing. Needed with apply jobs > 1.
  std::function<Status(uint64_t)> wait_committed;
};

struct SessionStats {
  uint64_t statements = 0;
  uint64_t copy_rows = 0;
  uint64_t skipped_conflicts = 0;
  uint64_t commits = 0;
};

class ApplySession {
 public:
  // Connects, sets session_replication_role = replica (and synchronous_commit = off when the
  // progress store allows), binds the origin, enters pipeline mode.
  // Errors: the connection's (kConnection is retryable), the origin's.
  static Result<std::unique_ptr<ApplySession>> Open(const std::string& conninfo,
                                                    const ProgressStore& progress,
                                                    const SessionOptions& options);
  ~ApplySession();

  // Sends the changes of `work` (opening a target transaction first if none is open). Results
  // are checked at the next sync. The session owns `work` from here on: merged updates are moved
  // out of it, so that afterwards only each change's kind and the work's bytes are meaningful.
  // Errors: kApplyConflict, kServerError, kConnection, ...
  Status Apply(std::shared_ptr<TxnWork> work);
  // Sends whatever is buffered and checks every result so far: after OK the open transaction
  // holds all changes applied without conflict. Waits first for the groups deferred updates
  // depend on.
  Status Flush();
  // As Flush, but keeps back the deferred updates whose group has not committed yet.
  Status FlushReady();
  // Records `lsn` / `time` as the progress and commits (opening an empty transaction if needed,
  // so that progress advances even when every change was filtered out).
  Status Commit(Lsn lsn, PgTimestamp time);

  // Runs DDL statement `sql` of the source transaction committed at `lsn` in the open target
  // transaction (opening one if needed), after everything sent so far: under `search_path`, and
  // as `role` when that role exists on the target and the session's user may become it (else as
  // the session's user). Errors: kSchemaChanged naming the statement, the LSN and the target's
  // error (nothing of the transaction is committed); kConnection (retryable).
  Status RunDdl(const std::string& sql, const std::string& search_path, const std::string& role,
                Lsn lsn);
  // Sends and checks everything so far, leaves pipeline mode, calls `fn` with the connection
  // (inside the open transaction, if any), and enters pipeline mode again.
  Status WithConnection(const std::function<Status(PgConn&)>& fn);

  const SessionStats& stats() const { return stats_; }

 private:
  struct UpdateBatch;
  struct Expect {
    enum class Kind { kControl, kPrepare, kRow };
    Expect(Kind k, const ResolvedChange* c, Lsn l, bool row = false, const UpdateBatch* b = nullptr)
        : kind(k), change(c), lsn(l), expect_row(row), batch(b) {}
    Kind kind = Kind::kControl;
    const ResolvedChange* change = nullptr;  // kRow (the first row of a batch)
    Lsn lsn;
    bool expect_row = false;
    const UpdateBatch* batch = nullptr;  // kRow of a multi-row UPDATE: every row must match
    size_t rows = 1;                     // kRow of a multi-row INSERT: how many, up to last_lsn
    Lsn last_lsn;
  };

  ApplySession() = default;
  Status Begin();
  // Holds `rc` back in the insert run, or sends it (apply_session_insert.cc).
  Status ApplyInsert(const ResolvedChange& rc, Lsn lsn);
  // Merges `*rc` into the pending updates (taking it), or sends it after what it must follow
  // (apply_session_update.cc).
  Status ApplyUpdateOrDelete(ResolvedChange* rc, Lsn lsn);
  Status SendRow(const ResolvedChange& rc, Lsn lsn);
  Status SendTruncate(const ResolvedChange& rc, Lsn lsn);
  Status SendControl(const std::string& sql, const std::vector<const std::string*>& params);
  Status FlushInserts();
  Status RunCopy();
  Status SendInsertBatch();
  // The name of the statement prepared under `key` on this connection, preparing `sql()` with
  // `params` parameters first if needed (its result is read at the next sync, for `rc`).
  Result<const std::string*> PrepareOnce(const std::string& key, size_t params,
                                         const std::function<std::string()>& sql,
                                         const ResolvedChange* rc, Lsn lsn);
  // Runs prepared `statement` with one text parameter per array literal.
  Status SendArrays(const std::string& statement, const std::vector<std::string>& arrays);
  Status Sync();
  void ReleaseRetained();
  Status ConflictError(const Expect& e, const std::string& what, const std::string& detail);
  Status CheckFailed(const PGresult* res, const Expect& e);

  PgConn conn_;
  const ProgressStore* progress_ = nullptr;
  SessionOptions options_;
  SessionStats stats_;
  bool in_txn_ = false;
  bool wrote_ = false;  // the open transaction sent a row change (so it has a transaction id)
  std::vector<Expect> expects_;  // results still to read, in order
  size_t since_sync_ = 0;
  std::vector<std::shared_ptr<const TxnWork>> retained_;    // owners of changes expects_ point to
  std::unordered_map<std::string, std::string> prepared_;   // relation+shape -> statement name
  std::unordered_map<std::string, std::string> sql_names_;  // control SQL -> statement name

  // Updates held back and merged per row (see Apply): rows of relations whose only unique
  // index is the key, with the key unchanged. Sent at the latest before the commit.
  struct Pending {
    ResolvedChange rc;  // owns the merged new tuple; rc.after_group: the newest wait merged in
    Lsn lsn;            // of the newest update merged in
    uint64_t seq = 0;   // when the row's first update came (orders rows the key order ties)
  };
  using PendingRows = std::unordered_map<RowKey, Pending, RowKey::Hasher>;
  // Takes `rc` (a Mergeable update) as its row's first pending update, or merges it into it.
  Status AddPending(ResolvedChange&& rc, Lsn lsn);
  // Sends the merged updates: all of them (waiting for their groups first), or with
  // `ready_only` those that need no wait, keeping the others merged.
  Status FlushPending(bool ready_only = false);
  PendingRows pending_;
  uint64_t pending_seq_ = 0;
  std::vector<const TargetRelation*> pending_rels_;  // the descriptors pending_ holds rows of
  std::vector<std::vector<Pending>> sent_pending_;   // sent, results not read yet
  // Merged updates of one relation and column set, sent as one multi-row UPDATE.
  struct UpdateBatch {
    const TargetRelation* rel = nullptr;
    std::vector<int> write_cols;
    std::vector<const Pending*> rows;  // point into sent_pending_
  };
  Status SendBatch(const UpdateBatch& batch);
  Status BatchConflict(const UpdateBatch& batch, uint64_t matched);
  std::vector<std::unique_ptr<UpdateBatch>> sent_batches_;  // owners of Expect::batch

  // A run of inserts into one relation with one column set, held back to go as COPY.
  const TargetRelation* run_rel_ = nullptr;
  std::vector<int> run_cols_;
  bool run_batchable_ = false;  // CanBatch(*run_rel_): sent as multi-row INSERTs, not COPY
  std::vector<std::pair<const ResolvedChange*, Lsn>> run_;
  size_t run_bytes_ = 0;
};

}  // namespace pgbaton::applier

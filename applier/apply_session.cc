#include "applier/apply_session.h"

#include <fmt/format.h>

#include "common/log.h"

namespace pgbaton::applier {

namespace {

std::string Field(const PGresult* res, int field) {
  const char* v = res != nullptr ? PQresultErrorField(res, field) : nullptr;
  return v != nullptr ? v : "";
}

}  // namespace

Result<std::unique_ptr<ApplySession>> ApplySession::Open(const std::string& conninfo,
                                                         const ProgressStore& progress,
                                                         const SessionOptions& options) {
  std::unique_ptr<ApplySession> s(new ApplySession());
  s->options_ = options;
  s->progress_ = &progress;
  ConnectOptions co;
  co.label = "target";
  co.application_name = fmt::format("pgbaton applier {}", options.worker);
  PGB_ASSIGN_OR_RETURN(s->conn_, PgConn::Connect(conninfo, co));
  // replica: no user triggers, no foreign-key checks (the source checked them already), as
  // PostgreSQL's own apply worker does. Values arrive in the source's text output format.
  std::string setup =
      "set session_replication_role = replica; set datestyle = 'ISO'; "
      "set intervalstyle = 'postgres'; set statement_timeout = 0; set lock_timeout = 0; "
      // A multi-row UPDATE joins its rows to the table by key: always through the key's
      // index, one probe per row, never by scanning the table (a hash join's choice when the
      // batch is large relative to a small table's estimate).
      "set enable_hashjoin = off; set enable_mergejoin = off";
  if (progress.AsyncCommitSafe()) setup += "; set synchronous_commit = off";
  PGB_RETURN_IF_ERROR(s->conn_.Run(setup));
  PGB_RETURN_IF_ERROR(progress.SetupSession(s->conn_, options.worker));
  if (PQenterPipelineMode(s->conn_.raw()) != 1) {
    return s->conn_.ErrorFrom(nullptr, "entering pipeline mode");
  }
  return s;
}

ApplySession::~ApplySession() = default;

Status ApplySession::SendControl(const std::string& sql,
                                 const std::vector<const std::string*>& params) {
  std::vector<const char*> values;
  for (const auto* p : params) values.push_back(p != nullptr ? p->c_str() : nullptr);
  // Control statements repeat every transaction: prepare them once too.
  auto it = sql_names_.find(sql);
  if (it == sql_names_.end()) {
    std::string name = fmt::format("c{}", sql_names_.size());
    if (PQsendPrepare(conn_.raw(), name.c_str(), sql.c_str(), static_cast<int>(values.size()),
                      nullptr) != 1) {
      return conn_.ErrorFrom(nullptr, "sending a statement");
    }
    expects_.push_back(Expect{Expect::Kind::kPrepare, nullptr, Lsn(), false});
    it = sql_names_.emplace(sql, name).first;
  }
  if (PQsendQueryPrepared(conn_.raw(), it->second.c_str(), static_cast<int>(values.size()),
                          values.data(), nullptr, nullptr, 0) != 1) {
    return conn_.ErrorFrom(nullptr, "sending a statement");
  }
  expects_.push_back(Expect{Expect::Kind::kControl, nullptr, Lsn(), false});
  return Status::Ok();
}

Status ApplySession::Begin() {
  if (in_txn_) return Status::Ok();
  PGB_RETURN_IF_ERROR(SendControl("BEGIN", {}));
  in_txn_ = true;
  return Status::Ok();
}

Status ApplySession::Apply(std::shared_ptr<TxnWork> work) {
  PGB_RETURN_IF_ERROR(Begin());
  retained_.push_back(work);
  for (ResolvedChange& rc : work->changes) {
    switch (rc.change.kind) {
      case queue::ChangeKind::kInsert:
        PGB_RETURN_IF_ERROR(ApplyInsert(rc, work->commit_lsn));
        break;
      case queue::ChangeKind::kUpdate:
      case queue::ChangeKind::kDelete:
        PGB_RETURN_IF_ERROR(ApplyUpdateOrDelete(&rc, work->commit_lsn));
        break;
      case queue::ChangeKind::kTruncate:
        PGB_RETURN_IF_ERROR(FlushPending());
        PGB_RETURN_IF_ERROR(FlushInserts());
        PGB_RETURN_IF_ERROR(SendTruncate(rc, work->commit_lsn));
        break;
      case queue::ChangeKind::kMessage:
        break;  // logical messages are for the stream's readers (cutover), not for the target
    }
    if (since_sync_ >= options_.sync_every) PGB_RETURN_IF_ERROR(Sync());
  }
  return Status::Ok();
}

Result<const std::string*> ApplySession::PrepareOnce(const std::string& key, size_t params,
                                                     const std::function<std::string()>& sql,
                                                     const ResolvedChange* rc, Lsn lsn) {
  auto it = prepared_.find(key);
  if (it == prepared_.end()) {
    std::string name = fmt::format("s{}", prepared_.size());
    if (PQsendPrepare(conn_.raw(), name.c_str(), sql().c_str(), static_cast<int>(params),
                      nullptr) != 1) {
      return conn_.ErrorFrom(nullptr, "sending a statement");
    }
    expects_.push_back(Expect{Expect::Kind::kPrepare, rc, lsn});
    it = prepared_.emplace(key, name).first;
  }
  return &it->second;
}

Status ApplySession::SendArrays(const std::string& statement,
                                const std::vector<std::string>& arrays) {
  std::vector<const char*> values;
  for (const auto& a : arrays) values.push_back(a.c_str());
  if (PQsendQueryPrepared(conn_.raw(), statement.c_str(), static_cast<int>(values.size()),
                          values.data(), nullptr, nullptr, 0) != 1) {
    return conn_.ErrorFrom(nullptr, "sending a statement");
  }
  return Status::Ok();
}

Status ApplySession::SendRow(const ResolvedChange& rc, Lsn lsn) {
  const TargetRelation& rel = *rc.rels[0];
  PGB_ASSIGN_OR_RETURN(PlannedChange pc,
                       PlanChange(rel, rc.change, PlanFlags{options_.skip_conflicts}));
  std::string key = fmt::format("{}:{}", static_cast<const void*>(&rel), pc.shape.Key());
  PGB_ASSIGN_OR_RETURN(
      const std::string* name,
      PrepareOnce(
          key, pc.params.size(), [&] { return BuildSql(rel, pc.shape); }, &rc, lsn));
  std::vector<const char*> values;
  values.reserve(pc.params.size());
  for (const auto* p : pc.params) values.push_back(p != nullptr ? p->c_str() : nullptr);
  if (PQsendQueryPrepared(conn_.raw(), name->c_str(), static_cast<int>(values.size()),
                          values.data(), nullptr, nullptr, 0) != 1) {
    return conn_.ErrorFrom(nullptr, "sending a statement");
  }
  expects_.push_back(Expect{Expect::Kind::kRow, &rc, lsn, pc.expect_row});
  wrote_ = true;
  ++since_sync_;
  ++stats_.statements;
  return Status::Ok();
}

Status ApplySession::SendTruncate(const ResolvedChange& rc, Lsn lsn) {
  std::vector<const TargetRelation*> rels;
  for (const auto& r : rc.rels) rels.push_back(r.get());
  if (rels.empty()) return Status::Ok();
  std::string sql = BuildTruncateSql(rels, rc.change.truncate_flags);
  if (PQsendQueryParams(conn_.raw(), sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0) != 1) {
    return conn_.ErrorFrom(nullptr, "sending a statement");
  }
  expects_.push_back(Expect{Expect::Kind::kRow, &rc, lsn, false});
  wrote_ = true;
  ++since_sync_;
  ++stats_.statements;
  return Status::Ok();
}

Status ApplySession::ConflictError(const Expect& e, const std::string& what,
                                   const std::string& detail) {
  const TargetRelation& rel = *e.change->rels[0];
  std::string msg = fmt::format("apply conflict on relation \"{}\" at commit LSN {}: {}",
                                rel.qualified_name, e.lsn.ToString(), what);
  if (!detail.empty()) msg += ": " + detail;
  return Status::Error(ErrorCode::kApplyConflict, msg,
                       "the target differs from the source (a write on the target, or a table "
                       "copied at a later snapshot without its sync LSN); fix the row on the "
                       "target and run again, or run with --on-conflict skip");
}

Status ApplySession::CheckFailed(const PGresult* res, const Expect& e) {
  Status s = conn_.ErrorFrom(res, "apply");
  if (s.code() == ErrorCode::kApplyConflict && e.change != nullptr) {
    Status c = ConflictError(
        e, "insert found a duplicate key",
        Field(res, PG_DIAG_MESSAGE_PRIMARY) + " " + Field(res, PG_DIAG_MESSAGE_DETAIL));
    if (e.rows <= 1) return c;
    return c.WithContext(fmt::format("one of {} inserts with commit LSNs {} to {}", e.rows,
                                     e.lsn.ToString(), e.last_lsn.ToString()));
  }
  if (e.change != nullptr && !e.change->rels.empty()) {
    return s.WithContext(fmt::format("relation \"{}\" at commit LSN {}",
                                     e.change->rels[0]->qualified_name, e.lsn.ToString()));
  }
  return s;
}

Status ApplySession::Sync() {
  if (expects_.empty()) return Status::Ok();
  PGconn* c = conn_.raw();
  if (PQpipelineSync(c) != 1) return conn_.ErrorFrom(nullptr, "pipeline sync");
  Status first_error;
  const UpdateBatch* short_batch = nullptr;
  uint64_t short_matched = 0;
  for (const Expect& e : expects_) {
    PgResult res(PQgetResult(c));
    if (res.raw() == nullptr) return conn_.ErrorFrom(nullptr, "reading pipeline results");
    ExecStatusType st = PQresultStatus(res.raw());
    if (st == PGRES_FATAL_ERROR) {
      if (first_error.ok()) first_error = CheckFailed(res.raw(), e);
    } else if (st == PGRES_PIPELINE_ABORTED) {
      // skipped after an earlier error
    } else if (e.kind == Expect::Kind::kRow && e.batch != nullptr && first_error.ok()) {
      uint64_t matched = res.AffectedRows();
      if (matched < e.batch->rows.size()) {
        short_batch = e.batch;
        short_matched = matched;
        first_error = Status::Error(ErrorCode::kApplyConflict, "update found no row");
      }
    } else if (e.kind == Expect::Kind::kRow && first_error.ok()) {
      bool none = res.AffectedRows() == 0;
      bool is_insert = e.change->change.kind == queue::ChangeKind::kInsert;
      if (none && (e.expect_row || (is_insert && options_.skip_conflicts))) {
        const char* kind = is_insert ? "insert found a duplicate key"
                           : e.change->change.kind == queue::ChangeKind::kUpdate
                               ? "update found no row"
                               : "delete found no row";
        std::string key = DescribeKey(*e.change->rels[0], e.change->change);
        if (options_.skip_conflicts) {
          ++stats_.skipped_conflicts;
          LogWarning(fmt::format("skipped a conflicting change: {}", kind),
                     {{"relation", e.change->rels[0]->qualified_name},
                      {"key", key},
                      {"commit_lsn", e.lsn.ToString()}});
        } else {
          first_error = ConflictError(e, fmt::format("{} with key {}", kind, key), "");
        }
      }
    }
    // Each result of a pipelined query is followed by a null.
    while (PGresult* extra = PQgetResult(c)) PQclear(extra);
  }
  PgResult sync(PQgetResult(c));
  if (sync.raw() == nullptr || PQresultStatus(sync.raw()) != PGRES_PIPELINE_SYNC) {
    return first_error.ok() ? conn_.ErrorFrom(sync.raw(), "pipeline sync") : first_error;
  }
  if (short_batch != nullptr) first_error = BatchConflict(*short_batch, short_matched);
  expects_.clear();
  since_sync_ = 0;
  ReleaseRetained();
  return first_error;
}

void ApplySession::ReleaseRetained() {
  // Nothing points into the retained work any more: let it go, so that a transaction streamed
  // chunk by chunk is not held whole until its commit.
  // The newest work stays: Apply may still be sending its remaining changes.
  if (expects_.empty()) sent_batches_.clear();
  if (expects_.empty() && sent_pending_.size() > 1) {
    sent_pending_.erase(sent_pending_.begin(),
                        sent_pending_.end() - 1);  // the newest may still be sending
  }
  if (expects_.empty() && run_.empty() && retained_.size() > 1) {
    retained_.erase(retained_.begin(), retained_.end() - 1);
  }
}

Status ApplySession::Flush() {
  PGB_RETURN_IF_ERROR(FlushPending());
  PGB_RETURN_IF_ERROR(FlushInserts());
  return Sync();
}

Status ApplySession::FlushReady() {
  PGB_RETURN_IF_ERROR(FlushPending(/*ready_only=*/true));
  PGB_RETURN_IF_ERROR(FlushInserts());
  return Sync();
}

Status ApplySession::Commit(Lsn lsn, PgTimestamp time) {
  PGB_RETURN_IF_ERROR(Flush());
  PGB_RETURN_IF_ERROR(Begin());
  if (!wrote_) {
    // A transaction without a transaction id writes no commit record, and the origin only
    // advances with a commit record: take an id so that progress moves past transactions that
    // were empty here (filtered by a sync LSN, or only logical messages).
    PGB_RETURN_IF_ERROR(SendControl("select pg_catalog.txid_current()", {}));
  }
  std::string name = progress_->RecordName(options_.worker);
  std::string lsn_text = lsn.ToString();
  std::string time_text = time.ToString();
  PGB_RETURN_IF_ERROR(SendControl(progress_->RecordSql(), {&name, &lsn_text, &time_text}));
  PGB_RETURN_IF_ERROR(SendControl("COMMIT", {}));
  Status s = Sync();
  in_txn_ = false;
  wrote_ = false;
  retained_.clear();
  sent_batches_.clear();
  sent_pending_.clear();
  if (s.ok()) ++stats_.commits;
  return s;
}

Status ApplySession::WithConnection(const std::function<Status(PgConn&)>& fn) {
  PGB_RETURN_IF_ERROR(Flush());
  if (PQexitPipelineMode(conn_.raw()) != 1) {
    return conn_.ErrorFrom(nullptr, "leaving pipeline mode");
  }
  Status s = fn(conn_);
  if (PQenterPipelineMode(conn_.raw()) != 1) {
    return conn_.ErrorFrom(nullptr, "entering pipeline mode");
  }
  return s;
}

Status ApplySession::RunDdl(const std::string& sql, const std::string& search_path,
                            const std::string& role, Lsn lsn) {
  PGB_RETURN_IF_ERROR(Flush());
  PGB_RETURN_IF_ERROR(Begin());
  Status s = WithConnection([&](PgConn& conn) -> Status {
    PGB_RETURN_IF_ERROR(
        conn.ExecParams("select pg_catalog.set_config('search_path', $1, true)", {search_path})
            .status());
    // The source's role where it exists here and this session may become it: objects get the
    // same owner. Elsewhere the statement runs as the applier's own role.
    PGB_RETURN_IF_ERROR(
        conn.ExecParams("select pg_catalog.set_config('role', r.rolname, true) from "
                        "pg_catalog.pg_roles r where r.rolname = $1 and "
                        "pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER')",
                        {role})
            .status());
    PGB_RETURN_IF_ERROR(conn.Run(sql));
    return conn.Run("set local role none; set local search_path to default");
  });
  if (s.ok()) {
    wrote_ = true;
    return s;
  }
  if (s.retryable()) return s;
  return Status::Error(ErrorCode::kSchemaChanged,
                       fmt::format("ddl of the transaction with commit LSN {} failed on the "
                                   "target: {}; statement: {}",
                                   lsn.ToString(), s.message(), sql),
                       fmt::format("nothing of that transaction nor after it was applied; "
                                   "apply an equivalent on the target by hand, then run again "
                                   "with --skip-ddl {}",
                                   lsn.ToString()));
}

}  // namespace pgbaton::applier

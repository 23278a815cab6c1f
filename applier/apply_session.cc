#include "applier/apply_session.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "common/log.h"

namespace pgbaton::applier {

namespace {

std::string Field(const PGresult* res, int field) {
  const char* v = res != nullptr ? PQresultErrorField(res, field) : nullptr;
  return v != nullptr ? v : "";
}

}  // namespace

size_t ApproxBytes(const queue::Change& change) {
  size_t n = sizeof(queue::Change) + 32;
  for (const auto* t : {&change.old_tuple, &change.new_tuple}) {
    if (!t->has_value()) continue;
    for (const auto& v : **t) n += sizeof(queue::Value) + v.data.size();
  }
  return n + change.truncated.size() * 8 + change.message_content.size();
}

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

Status ApplySession::Apply(std::shared_ptr<const TxnWork> work) {
  PGB_RETURN_IF_ERROR(Begin());
  retained_.push_back(work);
  for (const ResolvedChange& rc : work->changes) {
    switch (rc.change.kind) {
      case queue::ChangeKind::kInsert: {
        if (options_.skip_conflicts || !rc.change.new_tuple) {
          PGB_RETURN_IF_ERROR(FlushInserts());
          PGB_RETURN_IF_ERROR(SendRow(rc, work->commit_lsn));
          break;
        }
        const TargetRelation* rel = rc.rels[0].get();
        std::vector<int> cols = InsertColumns(*rel, *rc.change.new_tuple);
        if (rel != run_rel_ || cols != run_cols_ || run_bytes_ > options_.copy_max_bytes) {
          PGB_RETURN_IF_ERROR(FlushInserts());
          run_rel_ = rel;
          run_cols_ = std::move(cols);
          run_batchable_ = CanBatch(*rel);
        }
        run_.emplace_back(&rc, work->commit_lsn);
        run_bytes_ += ApproxBytes(rc.change);
        // Batchable runs go out every batch_rows rows, so the target starts on them at once;
        // COPY runs (see FlushInserts) stay long: each costs a round trip.
        if (run_.size() >= options_.batch_rows && run_batchable_) {
          PGB_RETURN_IF_ERROR(FlushInserts());
        }
        break;
      }
      case queue::ChangeKind::kUpdate:
      case queue::ChangeKind::kDelete: {
        const TargetRelation* rel = rc.rels[0].get();
        if (Mergeable(*rel, rc.change)) {
          // Rows are merged per descriptor version (the tuples' columns differ between
          // versions): updates of the same row under an older version must reach the target
          // before this one, so they are flushed first (DDL mid-transaction, e.g. DROP COLUMN).
          bool other_version = std::any_of(pending_rels_.begin(), pending_rels_.end(),
                                           [rel](const TargetRelation* p) {
                                             return p != rel && p->source.id == rel->source.id;
                                           });
          if (other_version) PGB_RETURN_IF_ERROR(FlushPending());
          AddPending(rc, work->commit_lsn);
          if (pending_.size() >= options_.max_pending_updates) {
            PGB_RETURN_IF_ERROR(FlushPending(/*ready_only=*/true));
            if (pending_.size() >= options_.max_pending_updates) {
              PGB_RETURN_IF_ERROR(FlushPending());  // all deferred: wait for them
            }
          }
          break;
        }
        if (std::find(pending_rels_.begin(), pending_rels_.end(), rel) != pending_rels_.end()) {
          PGB_RETURN_IF_ERROR(FlushPending());  // a delete / key change after merged updates
        }
        PGB_RETURN_IF_ERROR(FlushInserts());
        PGB_RETURN_IF_ERROR(SendRow(rc, work->commit_lsn));
        break;
      }
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

// Several updates of one row inside a target transaction leave the same row as their merge, and
// updates of different rows commute when no unique index but the key relates them (see
// Mergeable). So they are merged per row and sent together: hot rows (pgbench's branches and
// tellers) cost one row per group instead of one per source transaction, and the inserts
// between them become long insert runs.
namespace {

// One array literal per column of `cols` (see AppendArrayElement), over `tuples` in order.
std::vector<std::string> ColumnArrays(const std::vector<int>& cols,
                                      const std::vector<const queue::Tuple*>& tuples) {
  std::vector<std::string> arrays(cols.size());
  for (size_t i = 0; i < cols.size(); ++i) {
    std::string& a = arrays[i];
    a.reserve(tuples.size() * 8);
    a += '{';
    for (size_t r = 0; r < tuples.size(); ++r)
      AppendArrayElement((*tuples[r])[cols[i]], r == 0, &a);
    a += '}';
  }
  return arrays;
}

// Where a merged row goes in the target's key order: by relation, then by the first key column,
// by value for integer types and bytewise otherwise (enough to keep nearby keys together; any
// order is correct).
struct KeyOrder {
  const TargetRelation* rel;
  bool bytes;  // not an integer key: compared as text
  int64_t number;
  const std::string* text;
  size_t index;
  bool operator<(const KeyOrder& o) const {
    if (rel != o.rel) return std::less<const TargetRelation*>()(rel, o.rel);
    if (bytes != o.bytes) return bytes < o.bytes;
    return bytes ? *text < *o.text : number < o.number;
  }
};

KeyOrder KeyOrderOf(const ResolvedChange& rc, size_t index) {
  const TargetRelation* rel = rc.rels[0].get();
  KeyOrder o{rel, true, 0, nullptr, index};
  if (rel->key_columns.empty()) return o;
  int k = rel->key_columns[0];
  o.text = &(*rc.change.new_tuple)[k].data;
  const QualifiedName& type = rel->source.columns[static_cast<size_t>(k)].type;
  if (type.schema == "pg_catalog" &&
      (type.name == "int4" || type.name == "int8" || type.name == "int2")) {
    auto r = std::from_chars(o.text->data(), o.text->data() + o.text->size(), o.number);
    o.bytes = r.ec != std::errc() || r.ptr != o.text->data() + o.text->size();
  }
  return o;
}

// Identifies a row among the merged updates: its relation and key values.
std::string PendingKey(const ResolvedChange& rc) {
  const TargetRelation* rel = rc.rels[0].get();
  std::string key(reinterpret_cast<const char*>(&rel), sizeof(rel));
  for (int k : rel->key_columns) {
    const std::string& v = (*rc.change.new_tuple)[k].data;
    key += '|';
    key += std::to_string(v.size());
    key += ':';
    key += v;
  }
  return key;
}

}  // namespace

void ApplySession::AddPending(const ResolvedChange& rc, Lsn lsn) {
  const TargetRelation* rel = rc.rels[0].get();
  auto [it, inserted] = pending_index_.try_emplace(PendingKey(rc), pending_.size());
  if (inserted) {
    pending_.push_back(Pending{rc, lsn});
    if (std::find(pending_rels_.begin(), pending_rels_.end(), rel) == pending_rels_.end()) {
      pending_rels_.push_back(rel);
    }
    return;
  }
  Pending& p = pending_[it->second];
  queue::Tuple& merged = *p.rc.change.new_tuple;
  const queue::Tuple& next = *rc.change.new_tuple;
  for (size_t i = 0; i < merged.size(); ++i) {
    if (next[i].kind != queue::ValueKind::kUnchangedToast) merged[i] = next[i];
  }
  p.lsn = lsn;
  p.rc.after_group = std::max(p.rc.after_group, rc.after_group);
}

Status ApplySession::FlushPending(bool ready_only) {
  if (pending_.empty()) return Status::Ok();
  std::vector<Pending> keep;  // deferred rows held back by a ready-only flush
  if (ready_only) {
    std::vector<Pending> ready;
    for (Pending& p : pending_) (p.rc.after_group > 0 ? keep : ready).push_back(std::move(p));
    if (ready.empty()) {
      pending_ = std::move(keep);
      return Status::Ok();
    }
    pending_ = std::move(ready);
  } else {
    // Rows another connection's uncommitted group also writes go only after that commit (the
    // scheduler let the rest of their transactions run at once).
    uint64_t wait = 0;
    for (const Pending& p : pending_) wait = std::max(wait, p.rc.after_group);
    if (wait > 0) {
      if (!options_.wait_committed) {
        return Status::Error(ErrorCode::kInternal, "a deferred update but no way to wait for it");
      }
      PGB_RETURN_IF_ERROR(options_.wait_committed(wait));
    }
  }
  PGB_RETURN_IF_ERROR(FlushInserts());
  // In key order, so that the target walks its key index and (usually) its heap in order rather
  // than at random. Merged rows have distinct keys and commute: any order gives the same result.
  std::vector<KeyOrder> order;
  order.reserve(pending_.size());
  for (size_t i = 0; i < pending_.size(); ++i) order.push_back(KeyOrderOf(pending_[i].rc, i));
  std::stable_sort(order.begin(), order.end());
  std::vector<Pending> sorted;
  sorted.reserve(pending_.size());
  for (const KeyOrder& o : order) sorted.push_back(std::move(pending_[o.index]));
  pending_ = std::move(sorted);
  sent_pending_.push_back(std::move(pending_));
  pending_.clear();
  pending_index_.clear();
  pending_rels_.clear();
  for (Pending& p : keep) {
    pending_index_.emplace(PendingKey(p.rc), pending_.size());
    const TargetRelation* rel = p.rc.rels[0].get();
    if (std::find(pending_rels_.begin(), pending_rels_.end(), rel) == pending_rels_.end()) {
      pending_rels_.push_back(rel);
    }
    pending_.push_back(std::move(p));
  }
  // Merged rows have distinct keys and commute (see Mergeable): rows of one relation and one
  // column set go together as multi-row UPDATEs, a statement per batch_rows rows instead of one
  // per row. With --on-conflict skip every row goes alone, so that each conflict is logged.
  std::vector<std::unique_ptr<UpdateBatch>> open;
  auto send = [&](std::unique_ptr<UpdateBatch> b) -> Status {
    if (b->rows.size() == 1) return SendRow(b->rows[0]->rc, b->rows[0]->lsn);
    PGB_RETURN_IF_ERROR(SendBatch(*b));
    sent_batches_.push_back(std::move(b));
    return Status::Ok();
  };
  for (const Pending& p : sent_pending_.back()) {
    const TargetRelation* rel = p.rc.rels[0].get();
    std::vector<int> cols = UpdateColumns(*rel, *p.rc.change.new_tuple);
    if (options_.skip_conflicts || options_.batch_rows < 2 || cols.empty() || !CanBatch(*rel)) {
      PGB_RETURN_IF_ERROR(SendRow(p.rc, p.lsn));
    } else {
      auto it = std::find_if(open.begin(), open.end(),
                             [&](const auto& b) { return b->rel == rel && b->write_cols == cols; });
      if (it == open.end()) {
        open.push_back(std::make_unique<UpdateBatch>());
        it = open.end() - 1;
        (*it)->rel = rel;
        (*it)->write_cols = std::move(cols);
      }
      (*it)->rows.push_back(&p);
      if ((*it)->rows.size() >= options_.batch_rows) {
        std::unique_ptr<UpdateBatch> full = std::move(*it);
        open.erase(it);
        PGB_RETURN_IF_ERROR(send(std::move(full)));
      }
    }
    if (since_sync_ >= options_.sync_every) PGB_RETURN_IF_ERROR(Sync());
  }
  for (auto& b : open) PGB_RETURN_IF_ERROR(send(std::move(b)));
  return Status::Ok();
}

Status ApplySession::SendBatch(const UpdateBatch& batch) {
  const TargetRelation& rel = *batch.rel;
  std::string key = fmt::format("{}:B", static_cast<const void*>(&rel));
  for (int c : batch.write_cols) key += fmt::format(",{}", c);
  std::vector<int> cols = batch.write_cols;
  cols.insert(cols.end(), rel.key_columns.begin(), rel.key_columns.end());
  PGB_ASSIGN_OR_RETURN(
      const std::string* name,
      PrepareOnce(
          key, cols.size(), [&] { return BuildBatchUpdateSql(rel, batch.write_cols); },
          &batch.rows[0]->rc, batch.rows[0]->lsn));
  std::vector<const queue::Tuple*> tuples;
  for (const Pending* p : batch.rows) tuples.push_back(&*p->rc.change.new_tuple);
  PGB_RETURN_IF_ERROR(SendArrays(*name, ColumnArrays(cols, tuples)));
  expects_.push_back(
      Expect{Expect::Kind::kRow, &batch.rows[0]->rc, batch.rows.back()->lsn, true, &batch});
  wrote_ = true;
  ++since_sync_;
  ++stats_.statements;
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

// A multi-row UPDATE matched fewer rows than it had: find one key that matches nothing, so the
// conflict names it as a single-row update would. The transaction is still usable (the UPDATE
// itself succeeded); it is rolled back by the caller's error path all the same.
Status ApplySession::BatchConflict(const UpdateBatch& batch, uint64_t matched) {
  const TargetRelation& rel = *batch.rel;
  std::string what = fmt::format("update found no row for {} of {} merged updates",
                                 batch.rows.size() - matched, batch.rows.size());
  std::vector<const queue::Tuple*> tuples;
  for (const Pending* p : batch.rows) tuples.push_back(&*p->rc.change.new_tuple);
  std::vector<std::string> arrays = ColumnArrays(rel.key_columns, tuples);
  std::vector<const char*> values;
  for (const auto& a : arrays) values.push_back(a.c_str());
  std::string sql = BuildMissingKeysSql(rel);
  PGconn* c = conn_.raw();
  std::string key;
  if (PQsendQueryParams(c, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                        nullptr, nullptr, 0) == 1 &&
      PQpipelineSync(c) == 1) {
    PgResult res(PQgetResult(c));
    if (PQresultStatus(res.raw()) == PGRES_TUPLES_OK && PQntuples(res.raw()) == 1) {
      std::string names, vals;
      for (int i = 0; i < PQnfields(res.raw()); ++i) {
        names += (i ? ", " : "") + rel.columns[rel.key_columns[i]].name;
        vals += (i ? ", " : "") + std::string(PQgetvalue(res.raw(), 0, i)).substr(0, 64);
      }
      key = fmt::format("({})=({})", names, vals);
    }
    while (PGresult* extra = PQgetResult(c)) PQclear(extra);
    PgResult sync(PQgetResult(c));  // the sync's own result
  }
  Lsn lsn = batch.rows.back()->lsn;
  for (const Pending* p : batch.rows) {
    if (!key.empty() && DescribeKey(rel, p->rc.change) == key) lsn = p->lsn;
  }
  Expect e{Expect::Kind::kRow, &batch.rows[0]->rc, lsn, true};
  return ConflictError(e, key.empty() ? what : fmt::format("update found no row with key {}", key),
                       key.empty() ? "" : what);
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

Status ApplySession::FlushInserts() {
  if (run_.empty()) return Status::Ok();
  Status s;
  if (run_.size() >= options_.copy_min_rows) {
    s = run_batchable_ ? SendInsertBatch() : RunCopy();
  } else {
    for (const auto& [rc, lsn] : run_) {
      s = SendRow(*rc, lsn);
      if (!s.ok()) break;
    }
  }
  run_.clear();
  run_bytes_ = 0;
  run_rel_ = nullptr;
  run_cols_.clear();
  ReleaseRetained();
  return s;
}

// A run of inserts as one multi-row INSERT: unlike COPY it stays in the pipeline, so the target
// works on it while the next statements are being built and sent.
Status ApplySession::SendInsertBatch() {
  const TargetRelation& rel = *run_rel_;
  std::string key = fmt::format("{}:I", static_cast<const void*>(&rel));
  for (int c : run_cols_) key += fmt::format(",{}", c);
  PGB_ASSIGN_OR_RETURN(
      const std::string* name,
      PrepareOnce(
          key, run_cols_.size(), [&] { return BuildBatchInsertSql(rel, run_cols_); },
          run_.front().first, run_.front().second));
  std::vector<const queue::Tuple*> tuples;
  for (const auto& [rc, lsn] : run_) tuples.push_back(&*rc->change.new_tuple);
  PGB_RETURN_IF_ERROR(SendArrays(*name, ColumnArrays(run_cols_, tuples)));
  Expect e{Expect::Kind::kRow, run_.front().first, run_.front().second};
  e.rows = run_.size();
  e.last_lsn = run_.back().second;
  expects_.push_back(e);
  wrote_ = true;
  ++since_sync_;
  ++stats_.statements;
  stats_.copy_rows += run_.size();
  return Status::Ok();
}

Status ApplySession::RunCopy() {
  // COPY cannot run inside a pipeline: end the segment, copy, and start a new one. The target
  // transaction stays open throughout (it was begun explicitly).
  PGB_RETURN_IF_ERROR(Sync());
  PGconn* c = conn_.raw();
  if (PQexitPipelineMode(c) != 1) return conn_.ErrorFrom(nullptr, "leaving pipeline mode");
  const TargetRelation& rel = *run_rel_;
  std::string sql = BuildCopySql(rel, run_cols_);
  PgResult start(PQexec(c, sql.c_str()));
  if (PQresultStatus(start.raw()) != PGRES_COPY_IN) {
    return conn_.ErrorFrom(start.raw(), fmt::format("copy into \"{}\"", rel.qualified_name));
  }
  std::string buf;
  buf.reserve(1 << 16);
  bool send_failed = false;
  for (const auto& [rc, lsn] : run_) {
    AppendCopyRow(*rc->change.new_tuple, run_cols_, &buf);
    if (buf.size() >= (1 << 16)) {
      send_failed |= PQputCopyData(c, buf.data(), static_cast<int>(buf.size())) != 1;
      buf.clear();
    }
  }
  if (!buf.empty()) send_failed |= PQputCopyData(c, buf.data(), static_cast<int>(buf.size())) != 1;
  if (send_failed || PQputCopyEnd(c, nullptr) != 1) {
    return conn_.ErrorFrom(nullptr, fmt::format("copy into \"{}\"", rel.qualified_name));
  }
  PgResult done(PQgetResult(c));
  while (PGresult* extra = PQgetResult(c)) PQclear(extra);
  if (PQresultStatus(done.raw()) != PGRES_COMMAND_OK) {
    Expect e{Expect::Kind::kRow, run_.front().first, run_.front().second, false};
    return CheckFailed(done.raw(), e)
        .WithContext(fmt::format("copy of {} rows (commit LSNs {} to {})", run_.size(),
                                 run_.front().second.ToString(), run_.back().second.ToString()));
  }
  stats_.copy_rows += run_.size();
  wrote_ = true;
  if (PQenterPipelineMode(c) != 1) return conn_.ErrorFrom(nullptr, "entering pipeline mode");
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

}  // namespace pgbaton::applier

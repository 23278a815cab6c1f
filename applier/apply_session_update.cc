// ApplySession, merged updates. Several updates of one row inside a target transaction leave
// the same row as their merge, and updates of different rows commute when no unique index but
// the key relates them (see Mergeable). So they are merged per row and sent together: hot rows
// (pgbench's branches and tellers) cost one row per group instead of one per source
// transaction, and the inserts between them become long insert runs. See apply_session.h.
#include <fmt/format.h>

#include <algorithm>

#include "applier/apply_session.h"

namespace pgbaton::applier {

Status ApplySession::ApplyUpdateOrDelete(ResolvedChange* rc, Lsn lsn) {
  const TargetRelation* rel = rc->rels[0].get();
  if (Mergeable(*rel, rc->change)) {
    // Rows are merged per descriptor version (the tuples' columns differ between versions):
    // updates of the same row under an older version must reach the target before this one, so
    // they are flushed first (DDL mid-transaction, e.g. DROP COLUMN).
    bool other_version = std::any_of(
        pending_rels_.begin(), pending_rels_.end(),
        [rel](const TargetRelation* p) { return p != rel && p->source.id == rel->source.id; });
    if (other_version) PGB_RETURN_IF_ERROR(FlushPending());
    PGB_RETURN_IF_ERROR(AddPending(std::move(*rc), lsn));
    if (pending_.size() >= options_.max_pending_updates) {
      PGB_RETURN_IF_ERROR(FlushPending(/*ready_only=*/true));
      if (pending_.size() >= options_.max_pending_updates) {
        PGB_RETURN_IF_ERROR(FlushPending());  // all deferred: wait for them
      }
    }
    return Status::Ok();
  }
  if (std::find(pending_rels_.begin(), pending_rels_.end(), rel) != pending_rels_.end()) {
    PGB_RETURN_IF_ERROR(FlushPending());  // a delete / key change after merged updates
  }
  PGB_RETURN_IF_ERROR(FlushInserts());
  return SendRow(*rc, lsn);
}

Status ApplySession::AddPending(ResolvedChange&& rc, Lsn lsn) {
  const TargetRelation* rel = rc.rels[0].get();
  std::optional<RowKey> key = RowKey::Of(*rel, rel->key_columns, *rc.change.new_tuple);
  if (!key) {
    // Mergeable rules this out: the key is sent, in text.
    return Status::Error(ErrorCode::kInternal,
                         fmt::format("a merged update of \"{}\" without its key at commit LSN {}",
                                     rel->qualified_name, lsn.ToString()));
  }
  auto it = pending_.find(*key);
  if (it == pending_.end()) {
    // The first update of the row: taken whole from the work (the session owns it), not copied.
    pending_.emplace(std::move(*key), Pending{std::move(rc), lsn, pending_seq_++});
    if (std::find(pending_rels_.begin(), pending_rels_.end(), rel) == pending_rels_.end()) {
      pending_rels_.push_back(rel);
    }
    return Status::Ok();
  }
  Pending& p = it->second;
  queue::Tuple& merged = *p.rc.change.new_tuple;
  queue::Tuple& next = *rc.change.new_tuple;
  for (size_t i = 0; i < merged.size(); ++i) {
    if (next[i].kind != queue::ValueKind::kUnchangedToast) merged[i] = std::move(next[i]);
  }
  p.lsn = lsn;
  p.rc.after_group = std::max(p.rc.after_group, rc.after_group);
  return Status::Ok();
}

Status ApplySession::FlushPending(bool ready_only) {
  if (pending_.empty()) return Status::Ok();
  PendingRows keep;  // deferred rows held back by a ready-only flush
  if (ready_only) {
    bool any_ready = std::any_of(pending_.begin(), pending_.end(),
                                 [](const auto& kv) { return kv.second.rc.after_group == 0; });
    if (!any_ready) return Status::Ok();
    for (auto it = pending_.begin(); it != pending_.end();) {
      auto next = std::next(it);
      if (it->second.rc.after_group > 0) keep.insert(pending_.extract(it));
      it = next;
    }
  } else {
    // Rows another connection's uncommitted group also writes go only after that commit (the
    // scheduler let the rest of their transactions run at once).
    uint64_t wait = 0;
    for (const auto& [key, p] : pending_) wait = std::max(wait, p.rc.after_group);
    if (wait > 0) {
      if (!options_.wait_committed) {
        return Status::Error(ErrorCode::kInternal, "a deferred update but no way to wait for it");
      }
      PGB_RETURN_IF_ERROR(options_.wait_committed(wait));
    }
  }
  PGB_RETURN_IF_ERROR(FlushInserts());
  // In key order, so that the target walks its key index and (usually) its heap in order rather
  // than at random. Merged rows have distinct keys and commute: any order gives the same result;
  // rows the key order leaves tied go in the order they came.
  std::vector<PendingRows::iterator> order;
  order.reserve(pending_.size());
  for (auto it = pending_.begin(); it != pending_.end(); ++it) order.push_back(it);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    if (a->first.OrdersBefore(b->first)) return true;
    if (b->first.OrdersBefore(a->first)) return false;
    return a->second.seq < b->second.seq;
  });
  std::vector<Pending> sorted;
  sorted.reserve(order.size());
  for (const auto& it : order) sorted.push_back(std::move(it->second));
  sent_pending_.push_back(std::move(sorted));
  pending_ = std::move(keep);
  pending_rels_.clear();
  for (const auto& [key, p] : pending_) {
    const TargetRelation* rel = p.rc.rels[0].get();
    if (std::find(pending_rels_.begin(), pending_rels_.end(), rel) == pending_rels_.end()) {
      pending_rels_.push_back(rel);
    }
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

}  // namespace pgbaton::applier

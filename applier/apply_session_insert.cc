// ApplySession, insert runs: inserts into one relation with one column set are held back and
// sent together, as one multi-row INSERT per batch_rows rows where the relation's types allow
// (pipelined), else as COPY (which leaves the pipeline for its duration). See apply_session.h.
#include <fmt/format.h>

#include "applier/apply_session.h"

namespace pgbaton::applier {

Status ApplySession::ApplyInsert(const ResolvedChange& rc, Lsn lsn) {
  if (options_.skip_conflicts || !rc.change.new_tuple) {
    PGB_RETURN_IF_ERROR(FlushInserts());
    return SendRow(rc, lsn);
  }
  const TargetRelation* rel = rc.rels[0].get();
  std::vector<int> cols = InsertColumns(*rel, *rc.change.new_tuple);
  if (rel != run_rel_ || cols != run_cols_ || run_bytes_ > options_.copy_max_bytes) {
    PGB_RETURN_IF_ERROR(FlushInserts());
    run_rel_ = rel;
    run_cols_ = std::move(cols);
    run_batchable_ = CanBatch(*rel);
  }
  run_.emplace_back(&rc, lsn);
  run_bytes_ += ApproxBytes(rc.change);
  // Batchable runs go out every batch_rows rows, so the target starts on them at once;
  // COPY runs (see FlushInserts) stay long: each costs a round trip.
  if (run_.size() >= options_.batch_rows && run_batchable_) PGB_RETURN_IF_ERROR(FlushInserts());
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

}  // namespace pgbaton::applier

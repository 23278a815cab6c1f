// DDL records with --ddl replicate (see applier_impl.h and docs/guide/dba.md, "Schema changes
// during the migration"). A transaction holding one is a barrier: every earlier group commits,
// then one session runs the whole transaction in a single target transaction (rows, DDL and the
// applier's position together, so a crash leaves either all of it or none), and only then is
// anything later read against the target's new catalogue.
#include <fmt/format.h>
#include <signal.h>

#include "applier/applier_impl.h"
#include "common/log.h"

namespace pgbaton::applier {

namespace {

// DDL on these objects is filtered by the tables they belong to (ddl_table_selected).
bool FilteredByTable(const DdlObject& o) {
  return !o.relation.empty() &&
         (o.type == "table" || o.type == "index" || o.type == "table column" ||
          o.type == "table constraint" || o.type == "foreign table" || o.type == "trigger");
}

// Changes are handed to sessions in pieces of at most this many (bounds memory for a large
// transaction holding DDL).
constexpr size_t kDdlBatchChanges = 5000;

}  // namespace

Result<bool> Applier::Impl::IsDdlLog(RelationId id, uint32_t version) {
  auto it = ddl_log_ids_.find(id.value);
  if (it != ddl_log_ids_.end()) return it->second;
  PGB_ASSIGN_OR_RETURN(queue::RelationDescriptor d, queue_->GetRelation(id, version));
  bool is = d.schema == kDdlLogSchema && d.name == kDdlLogTable;
  ddl_log_ids_[id.value] = is;
  return is;
}

Result<bool> Applier::Impl::DdlContent(const queue::Change& c, std::string* json) {
  if (c.kind == queue::ChangeKind::kMessage) {
    if (c.message_prefix != kDdlMessagePrefix) return false;
    *json = c.message_content;
    return true;
  }
  if (c.kind != queue::ChangeKind::kInsert || !c.new_tuple) return false;
  PGB_ASSIGN_OR_RETURN(bool ddl_log, IsDdlLog(c.relation, c.relation_version));
  if (!ddl_log) return false;
  PGB_ASSIGN_OR_RETURN(queue::RelationDescriptor d,
                       queue_->GetRelation(c.relation, c.relation_version));
  for (size_t i = 0; i < d.columns.size() && i < c.new_tuple->size(); ++i) {
    if (d.columns[i].name == "payload" && (*c.new_tuple)[i].kind == queue::ValueKind::kText) {
      *json = (*c.new_tuple)[i].data;
      return true;
    }
  }
  return Status::Error(ErrorCode::kQueueCorrupt, "a row of pgbaton.ddl_log has no payload",
                       "the table was changed by hand; reinstall the capture (pgbaton copy "
                       "--ddl replicate)");
}

Status Applier::Impl::RecordSkipped(const queue::CommitRecord& commit,
                                    const std::string& statement) {
  LogWarning("skipped a ddl record (--skip-ddl)",
             {{"commit_lsn", commit.commit_lsn.ToString()}, {"statement", statement}});
  return queue_->PutMeta("ddl/skipped/" + commit.commit_lsn.ToString(), statement);
}

Status Applier::Impl::CollectDdl(const queue::CommitRecord& commit, const ChangeVisitor& visit,
                                 std::vector<DdlStep>* ddl) {
  size_t index = 0;
  size_t segment = 0;  // the first change after the previous record
  Status s = visit([&](queue::Change* c) -> Status {
    std::string json;
    PGB_ASSIGN_OR_RETURN(bool is, DdlContent(*c, &json));
    if (!is) {
      ++index;
      return Status::Ok();
    }
    DdlStep st;
    st.index = st.run_at = index;
    PGB_ASSIGN_OR_RETURN(st.record, DecodeDdlRecord(json));
    const DdlRecord& r = st.record;
    bool selected = true;
    for (const DdlObject& o : r.objects) {
      if (FilteredByTable(o) && options_.ddl_table_selected &&
          !options_.ddl_table_selected(o.schema, o.relation)) {
        selected = false;
      }
    }
    if (OnlyInternalObjects(r)) {
      // pgbaton's own objects and temporary ones: never replayed (the trigger skips most).
    } else if (!selected) {
      LogInfo("ddl on a table left out by --include/--exclude: not replayed",
              {{"commit_lsn", commit.commit_lsn.ToString()}, {"command", r.command}});
    } else if (options_.skip_ddl.IsValid() && commit.commit_lsn == options_.skip_ddl) {
      PGB_RETURN_IF_ERROR(RecordSkipped(commit, r.command));
    } else {
      Result<std::string> stmt = ReplayStatement(r);
      if (stmt.ok()) {
        st.statement = *stmt;
      } else {
        st.error = stmt.status();
      }
      // CREATE TABLE AS / SELECT INTO: the table is created empty before the rows the statement
      // inserted, which came before its record; the rows then apply as any others.
      if (stmt.ok() && !r.create_table.empty() && *stmt == r.create_table) st.run_at = segment;
    }
    if (st.statement.empty() && st.error.ok()) {
      std::lock_guard<std::mutex> l(stats_mu_);
      total_.ddl_skipped++;
    }
    ddl->push_back(std::move(st));
    segment = ++index;
    return Status::Ok();
  });
  return s.ok() ? s
                : s.WithContext(
                      fmt::format("transaction with commit LSN {}", commit.commit_lsn.ToString()));
}

Status Applier::Impl::DispatchLargeMaybeDdl(queue::TransactionReader* reader,
                                            const queue::CommitRecord& commit) {
  std::vector<DdlStep> ddl;
  ChangeVisitor first = [reader](const std::function<Status(queue::Change*)>& fn) {
    return ForEachChunk(reader, [&](queue::ChangeChunk* chunk) -> Status {
      for (auto& c : chunk->changes) PGB_RETURN_IF_ERROR(fn(&c));
      return Status::Ok();
    });
  };
  PGB_RETURN_IF_ERROR(CollectDdl(commit, first, &ddl));
  // Read again from the queue, by whichever thread runs it (the visitor owns what it reads).
  queue::WorkQueue* q = queue_;
  const Lsn lsn = commit.commit_lsn;
  auto with_reader = [q, lsn](const std::function<Status(queue::TransactionReader*)>& fn) {
    PGB_ASSIGN_OR_RETURN(std::unique_ptr<queue::QueueCursor> cursor,
                         q->ReadFrom(Lsn(lsn.value() - 1)));
    PGB_ASSIGN_OR_RETURN(std::unique_ptr<queue::TransactionReader> again,
                         cursor->Next(std::chrono::seconds(10)));
    if (again == nullptr || again->commit().commit_lsn != lsn) {
      return Status::Error(ErrorCode::kInternal,
                           fmt::format("cannot read the transaction with commit LSN {} from the "
                                       "queue again",
                                       lsn.ToString()));
    }
    return fn(again.get());
  };
  if (ddl.empty()) {
    return with_reader([&](queue::TransactionReader* r) { return DispatchLarge(r, commit); });
  }
  ChangeVisitor visit = [with_reader](const std::function<Status(queue::Change*)>& fn) {
    return with_reader([&](queue::TransactionReader* r) {
      return ForEachChunk(r, [&](queue::ChangeChunk* chunk) -> Status {
        for (auto& c : chunk->changes) PGB_RETURN_IF_ERROR(fn(&c));
        return Status::Ok();
      });
    });
  };
  return DispatchDdl(commit, std::move(ddl), visit);
}

Status Applier::Impl::DispatchDdl(const queue::CommitRecord& commit, std::vector<DdlStep> ddl,
                                  const ChangeVisitor& visit) {
  // Every earlier transaction commits on the target before this one starts, and nothing later
  // is read until it committed: later changes are matched against the catalogue it leaves.
  uint64_t close_first = 0;
  Assignment a = planner_->AddBarrier(&close_first);
  PGB_RETURN_IF_ERROR(SendCommit(close_first));
  if (!shared_->WaitCommitted(a.group - 1)) return Status::Ok();  // the run failed already
  for (const DdlStep& st : ddl) {
    if (!st.error.ok()) {
      return Status(st.error).WithContext(
          fmt::format("ddl of the transaction with commit LSN {}", commit.commit_lsn.ToString()));
    }
  }
  LogInfo("replaying ddl", {{"commit_lsn", commit.commit_lsn.ToString()},
                            {"statements", static_cast<int64_t>(ddl.size())}});
  // The session runs it while this thread waits; what it uses is owned by the item (the visitor
  // owns its changes), so a run failing meanwhile leaves nothing dangling.
  auto steps = std::make_shared<std::vector<DdlStep>>(std::move(ddl));
  GroupCommit gc{commit.commit_lsn, commit.commit_time, 1, 0};
  last_group_ = std::max(last_group_, a.group);
  PGB_RETURN_IF_ERROR(Send(
      a.worker, Item::Call(a.group, a.wait_for, gc, [this, commit, steps, visit](ApplySession* s) {
        return RunDdlTransaction(s, commit, *steps, visit);
      })));
  if (!shared_->WaitCommitted(a.group)) return Status::Ok();
  // The target's catalogue changed: look every relation up again. The old descriptors stay
  // alive (sessions key prepared statements by their address).
  for (auto& [key, rel] : relations_) retired_.push_back(rel);
  relations_.clear();
  return Status::Ok();
}

Status Applier::Impl::RunDdlTransaction(ApplySession* session, const queue::CommitRecord& commit,
                                        const std::vector<DdlStep>& ddl,
                                        const ChangeVisitor& visit) {
  ddl_session_ = session;
  ddl_relations_.clear();
  auto retire = [&] {
    for (auto& [key, rel] : ddl_relations_) retired_.push_back(rel);
    ddl_relations_.clear();
  };
  std::vector<queue::Change> batch;
  auto flush = [&]() -> Status {
    if (batch.empty()) return Status::Ok();
    std::shared_ptr<TxnWork> work = NewWork(commit);
    Status s = Resolve(&batch, commit.commit_lsn, work.get(), nullptr);
    batch.clear();
    if (!s.ok() || work->changes.empty()) return s;
    return session->Apply(std::move(work));
  };
  size_t index = 0, next = 0;
  uint64_t replayed = 0;
  Status s = visit([&](queue::Change* c) -> Status {
    for (; next < ddl.size() && ddl[next].run_at == index; ++next) {
      const DdlStep& st = ddl[next];
      if (st.statement.empty()) continue;
      PGB_RETURN_IF_ERROR(flush());
      PGB_RETURN_IF_ERROR(
          session->RunDdl(st.statement, st.record.search_path, st.record.role, commit.commit_lsn));
      ++replayed;
      retire();  // what follows is matched against the catalogue the statement left
    }
    // DDL records themselves are dropped by Resolve (messages, pgbaton.ddl_log rows).
    batch.push_back(std::move(*c));
    ++index;
    return batch.size() >= kDdlBatchChanges ? flush() : Status::Ok();
  });
  if (s.ok()) s = flush();
  if (s.ok() && options_.crash_at == "ddl-before-commit") {
    PGB_RETURN_IF_ERROR(session->Flush());
    raise(SIGKILL);
  }
  if (s.ok()) s = session->Commit(commit.commit_lsn, commit.commit_time);
  if (s.ok() && options_.crash_at == "ddl-after-commit") raise(SIGKILL);
  retire();
  ddl_session_ = nullptr;
  if (s.ok()) {
    std::lock_guard<std::mutex> l(stats_mu_);
    total_.ddl_replayed += replayed;
    LogInfo("replayed ddl", {{"commit_lsn", commit.commit_lsn.ToString()},
                             {"statements", static_cast<int64_t>(replayed)}});
  }
  return s;
}

}  // namespace pgbaton::applier

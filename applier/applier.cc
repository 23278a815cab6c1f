#include "applier/applier.h"

#include <fmt/format.h>
#include <pthread.h>

#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "applier/applier_impl.h"
#include "applier/apply_session.h"
#include "common/log.h"
#include "common/metrics_catalog.h"

namespace pgbaton::applier {

namespace {

using Clock = std::chrono::steady_clock;

// Counts a group's changes by kind and bytes as its work is applied, into the catalogue's
// counters once the group committed.
struct GroupMetrics {
  explicit GroupMetrics(const metrics::Catalog& catalog) : m(catalog) {}
  const metrics::Catalog& m;
  uint64_t kinds[4] = {0, 0, 0, 0};  // insert, update, delete, truncate
  uint64_t bytes = 0;
  void Add(const TxnWork& w) {
    bytes += w.bytes;
    for (const auto& c : w.changes) {
      switch (c.change.kind) {
        case queue::ChangeKind::kInsert:
          ++kinds[0];
          break;
        case queue::ChangeKind::kUpdate:
          ++kinds[1];
          break;
        case queue::ChangeKind::kDelete:
          ++kinds[2];
          break;
        case queue::ChangeKind::kTruncate:
          ++kinds[3];
          break;
        default:
          break;
      }
    }
  }
  void Committed(uint64_t txns, double seconds) {
    static const char* const kNames[4] = {metrics::kKindInsert, metrics::kKindUpdate,
                                          metrics::kKindDelete, metrics::kKindTruncate};
    for (int k = 0; k < 4; ++k) {
      if (kinds[k] > 0) m.changes_total.WithLabels({kNames[k]})->Increment(kinds[k]);
      kinds[k] = 0;
    }
    m.transactions_total.WithLabels({metrics::kStageApplied})->Increment(txns);
    m.bytes_total.WithLabels({metrics::kStageApplied})->Increment(bytes);
    bytes = 0;
    m.apply_batch_size->Observe(static_cast<double>(txns));
    m.apply_batch_seconds->Observe(seconds);
  }
};

void SessionLoop(int worker, ApplySession* session, Channel* channel, SharedState* shared,
                 const metrics::Catalog* catalog) {
  // Named for top -H, perf and gdb (at most 15 characters).
  pthread_setname_np(pthread_self(), fmt::format("pgb-apply-{}", worker).c_str());
  Item it;
  GroupMetrics gm(*catalog);
  while (channel->Pop(&it)) {
    if (it.wait_for > 0 && !shared->WaitCommitted(it.wait_for)) return;
    Status s;
    if (it.kind == Item::Kind::kWork) {
      s = session->Apply(it.work);
      if (s.ok()) gm.Add(*it.work);
    } else {
      const auto commit_start = Clock::now();
      if (it.kind == Item::Kind::kCall) {
        s = it.call(session);  // runs and commits the whole group (applier_ddl.cc)
      } else {
        // Send and check all that need not wait (a conflict rolls the group back), then, in
        // turn, the deferred updates and the commit.
        s = session->FlushReady();
        if (s.ok() && !shared->WaitCommitted(it.group - 1)) return;
        if (s.ok()) s = session->Commit(it.commit.lsn, it.commit.time);
      }
      if (s.ok()) {
        std::lock_guard<std::mutex> l(shared->mu);
        shared->committed = it.group;
        shared->stats.applied_lsn = it.commit.lsn;
        shared->stats.groups++;
        shared->stats.transactions += it.commit.txns;
        shared->stats.changes += it.commit.changes;
        shared->cv.notify_all();
      }
      if (s.ok()) {
        gm.Committed(it.commit.txns,
                     std::chrono::duration<double>(Clock::now() - commit_start).count());
      }
    }
    if (!s.ok()) {
      shared->Fail(s);
      return;
    }
  }
}

}  // namespace

Status ForEachChunk(queue::TransactionReader* reader,
                    const std::function<Status(queue::ChangeChunk*)>& fn) {
  queue::ChangeChunk chunk;
  while (true) {
    PGB_ASSIGN_OR_RETURN(bool more, reader->NextChunk(&chunk));
    if (!more) return Status::Ok();
    PGB_RETURN_IF_ERROR(fn(&chunk));
  }
}

std::shared_ptr<TxnWork> NewWork(const queue::CommitRecord& commit) {
  auto work = std::make_shared<TxnWork>();
  work->commit_lsn = commit.commit_lsn;
  work->commit_time = commit.commit_time;
  return work;
}

Result<TargetRelationPtr> Applier::Impl::Resolve(RelationId id, uint32_t version) {
  auto key = std::make_pair(id.value, version);
  RelationCache& cache = ddl_session_ != nullptr ? ddl_relations_ : relations_;
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  PGB_ASSIGN_OR_RETURN(queue::RelationDescriptor d, queue_->GetRelation(id, version));
  // The relation's other versions (numbered 1, 2, ... and never trimmed) tell whether the target
  // is behind or ahead of `d` after DDL on the source (see LoadTargetRelation).
  std::vector<queue::RelationDescriptor> versions;
  for (uint32_t v = 1;; ++v) {
    if (v == version) continue;
    auto other = queue_->GetRelation(id, v);
    if (!other.ok() && other.status().code() == ErrorCode::kNotFound) break;
    if (!other.ok()) return other.status();
    versions.push_back(std::move(*other));
  }
  TargetRelationPtr ptr;
  if (ddl_session_ != nullptr) {
    // Inside a DDL transaction: the session's connection sees the catalogue as its own
    // uncommitted DDL left it.
    PGB_RETURN_IF_ERROR(ddl_session_->WithConnection([&](PgConn& conn) -> Status {
      PGB_ASSIGN_OR_RETURN(TargetRelation t, LoadTargetRelation(conn, d, versions));
      ptr = std::make_shared<const TargetRelation>(std::move(t));
      return Status::Ok();
    }));
  } else {
    PGB_ASSIGN_OR_RETURN(TargetRelation t, LoadTargetRelation(*control_, d, versions));
    ptr = std::make_shared<const TargetRelation>(std::move(t));
  }
  cache.emplace(key, ptr);
  return ptr;
}

Status Applier::Impl::RecordHighWater(Lsn trim_upto) {
  PGB_ASSIGN_OR_RETURN(Lsn end, queue_->LastEndLsn());
  if (end.IsValid() && end > high_water_) {
    PGB_ASSIGN_OR_RETURN(auto stored, queue_->GetMeta(queue::WorkQueue::kHighWaterEndKey));
    auto old = stored ? Lsn::Parse(*stored) : Result<Lsn>(Lsn::Invalid());
    if (!old.ok() || *old < end) {
      PGB_RETURN_IF_ERROR(queue_->PutMeta(queue::WorkQueue::kHighWaterEndKey, end.ToString()));
    }
    high_water_ = end;
  }
  if (trim_upto > trimmed_through_) {
    PGB_RETURN_IF_ERROR(
        queue_->PutMeta(queue::WorkQueue::kTrimmedThroughKey, trim_upto.ToString()));
    trimmed_through_ = trim_upto;
  }
  return Status::Ok();
}

Status Applier::Impl::LoadSyncLsns() {
  PGB_ASSIGN_OR_RETURN(auto meta, queue_->ListMeta("sync_lsn/"));
  sync_lsns_.clear();
  for (const auto& [k, v] : meta) {
    auto lsn = Lsn::Parse(v);
    if (!lsn.ok()) {
      return Status::Error(ErrorCode::kQueueCorrupt,
                           fmt::format("queue metadata \"{}\" is not an LSN: \"{}\"", k, v),
                           "the value must look like 16/B374D848");
    }
    sync_lsns_[k.substr(std::string("sync_lsn/").size())] = *lsn;
  }
  sync_loaded_at_ = Clock::now();
  return Status::Ok();
}

bool Applier::Impl::Filtered(const TargetRelation& rel, Lsn commit_lsn) {
  auto it = sync_lsns_.find(rel.qualified_name);
  return it != sync_lsns_.end() && commit_lsn <= it->second;
}

Status Applier::Impl::Resolve(std::vector<queue::Change>* changes, Lsn commit_lsn, TxnWork* work,
                              WriteSet* ws) {
  Status s = ResolveChanges(changes, commit_lsn, work, ws);
  if (s.ok()) return s;
  return s.WithContext(fmt::format("transaction with commit LSN {}", commit_lsn.ToString()));
}

Status Applier::Impl::ResolveChanges(std::vector<queue::Change>* changes, Lsn commit_lsn,
                                     TxnWork* work, WriteSet* ws) {
  for (queue::Change& c : *changes) {
    ResolvedChange rc;
    if (c.kind == queue::ChangeKind::kMessage) continue;
    if (c.kind == queue::ChangeKind::kTruncate) {
      std::vector<const TargetRelation*> raw;
      for (size_t i = 0; i < c.truncated.size(); ++i) {
        uint32_t v = i < c.truncated_versions.size() ? c.truncated_versions[i] : 0;
        PGB_ASSIGN_OR_RETURN(TargetRelationPtr r, Resolve(c.truncated[i], v));
        if (Filtered(*r, commit_lsn)) {
          ++filtered_;
          continue;
        }
        raw.push_back(r.get());
        rc.rels.push_back(r);
      }
      if (rc.rels.empty()) continue;
      if (ws != nullptr) AddTruncateKeys(raw, c.truncate_flags, ws);
    } else {
      // pgbaton.ddl_log's rows are DDL records (sources before 14), never rows for the target.
      PGB_ASSIGN_OR_RETURN(bool ddl_log, IsDdlLog(c.relation, c.relation_version));
      if (ddl_log) continue;
      PGB_ASSIGN_OR_RETURN(TargetRelationPtr r, Resolve(c.relation, c.relation_version));
      if (Filtered(*r, commit_lsn)) {
        ++filtered_;
        continue;
      }
      if (ws != nullptr) AddChangeKeys(*r, c, ws, static_cast<int>(work->changes.size()));
      rc.rels.push_back(std::move(r));
    }
    work->bytes += ApproxBytes(c);
    rc.change = std::move(c);
    work->changes.push_back(std::move(rc));
  }
  return Status::Ok();
}

Status Applier::Impl::Send(int worker, Item item) {
  if (channels_[static_cast<size_t>(worker)]->Push(std::move(item))) return Status::Ok();
  // Only a failed run refuses items; SharedState::Fail keeps its first error, not this one.
  return Status::Error(ErrorCode::kInternal, "the applier stopped while handing over work");
}

Status Applier::Impl::SendCommit(uint64_t group) {
  if (group == 0) return Status::Ok();
  last_group_ = std::max(last_group_, group);
  Item it = Item::Commit(group, open_commit_);
  open_commit_.txns = open_commit_.changes = 0;
  return Send(planner_->WorkerOf(group), std::move(it));
}

Status Applier::Impl::OpenSessions(const ProgressStore& progress, SharedState* shared,
                                   std::vector<std::unique_ptr<ApplySession>>* sessions) {
  SessionOptions so;
  so.skip_conflicts = options_.on_conflict == OnConflict::kSkip;
  so.copy_min_rows = options_.copy_min_rows;
  so.wait_committed = [shared](uint64_t group) {
    if (shared->WaitCommitted(group)) return Status::Ok();
    return Status::Error(ErrorCode::kInternal, "the applier stopped while a session waited");
  };
  for (int k = 0; k < options_.jobs; ++k) {
    so.worker = k;
    PGB_ASSIGN_OR_RETURN(std::unique_ptr<ApplySession> s,
                         ApplySession::Open(options_.target_conninfo, progress, so));
    sessions->push_back(std::move(s));
  }
  return Status::Ok();
}

Status Applier::Impl::RunOnce(const std::atomic<bool>* stop, bool* done) {
  *done = false;
  ConnectOptions co;
  co.label = "target";
  co.application_name = "pgbaton applier";
  PGB_ASSIGN_OR_RETURN(PgConn control, PgConn::Connect(options_.target_conninfo, co));
  control_.emplace(std::move(control));
  relations_.clear();
  retired_.clear();
  ddl_relations_.clear();
  ddl_session_ = nullptr;
  PGB_ASSIGN_OR_RETURN(
      ProgressStore progress,
      ProgressStore::Open(*control_, options_.name, options_.progress, options_.jobs));
  PGB_ASSIGN_OR_RETURN(Lsn start, progress.ReadPosition(*control_, /*flushed=*/false));
  PGB_RETURN_IF_ERROR(LoadSyncLsns());
  LogInfo("applier starting",
          {{"target", control_->description()},
           {"from_lsn", start.ToString()},
           {"apply_jobs", options_.jobs},
           {"progress", progress.mode() == ProgressMode::kOrigin ? "origin" : "table"}});
  if (options_.stop_at.IsValid() && start >= options_.stop_at) {
    *done = true;
    return Status::Ok();
  }
  start_ = read_through_ = start;
  last_group_ = 0;
  pause_.reset();
  if (options_.pause_requests) pause_.emplace(PauseListener::Open(&*control_, options_.name));

  SharedState shared;
  std::vector<std::unique_ptr<ApplySession>> sessions;
  PGB_RETURN_IF_ERROR(OpenSessions(progress, &shared, &sessions));
  {
    std::lock_guard<std::mutex> l(stats_mu_);
    shared_ = &shared;
  }
  PlannerOptions po;
  po.jobs = options_.jobs;
  po.group_max_rows = options_.group_max_rows;
  po.group_max_bytes = options_.group_max_bytes;
  po.group_max_delay = options_.group_max_delay;
  Planner planner(po);
  planner_ = &planner;
  open_commit_ = GroupCommit{};
  channels_.clear();
  std::vector<std::thread> threads;
  for (int k = 0; k < options_.jobs; ++k) {
    channels_.push_back(std::make_unique<Channel>(&shared, options_.session_queue_bytes));
  }
  for (int k = 0; k < options_.jobs; ++k) {
    threads.emplace_back(
        SessionLoop, k, sessions[k].get(), channels_[k].get(), &shared,
        options_.metrics != nullptr ? options_.metrics : &metrics::CatalogMetrics());
  }

  Status status = Coordinate(stop, progress, start, done);
  // Commit what is open (also on stop: it is all consistent), then let the sessions drain.
  if (status.ok() && !shared.Failed()) {
    status = SendCommit(planner.CloseIfDue(Clock::now(), /*force=*/true));
  }
  if (!status.ok()) shared.Fail(status);
  for (auto& c : channels_) c->Close();
  for (auto& t : threads) t.join();
  AddTotals(shared, sessions);
  channels_.clear();
  planner_ = nullptr;
  sessions.clear();
  pause_.reset();
  control_.reset();
  if (shared.failed) {
    *done = false;
    return shared.error;
  }
  return Status::Ok();
}

void Applier::Impl::AddTotals(const SharedState& shared,
                              const std::vector<std::unique_ptr<ApplySession>>& sessions) {
  std::lock_guard<std::mutex> l(stats_mu_);
  total_.transactions += shared.stats.transactions;
  total_.changes += shared.stats.changes;
  total_.groups += shared.stats.groups;
  total_.filtered += filtered_;
  if (shared.stats.applied_lsn.IsValid()) total_.applied_lsn = shared.stats.applied_lsn;
  for (const auto& s : sessions) {
    total_.copy_rows += s->stats().copy_rows;
    total_.skipped_conflicts += s->stats().skipped_conflicts;
  }
  filtered_ = 0;
  shared_ = nullptr;
}

Status Applier::Impl::Coordinate(const std::atomic<bool>* stop, const ProgressStore& progress,
                                 Lsn start, bool* done) {
  trim_ = options_.trim_queue;
  last_trim_ = Clock::now();
  PGB_ASSIGN_OR_RETURN(std::unique_ptr<queue::QueueCursor> cursor, queue_->ReadFrom(start));
  auto stopped = [&] { return (stop != nullptr && stop->load()) || shared_->Failed(); };
  while (!stopped()) {
    {
      std::lock_guard<std::mutex> l(shared_->mu);
      planner_->Committed(shared_->committed);
    }
    PGB_RETURN_IF_ERROR(Maintain(progress));
    // The read step: the next transaction in commit order, or none within idle_wait. At the
    // queue's tail what the open group holds is all there is for now: it is committed before
    // waiting, so a steady trickle is applied as it comes instead of a group delay later (under
    // a backlog the next transaction is always there and groups stay large).
    PGB_ASSIGN_OR_RETURN(std::unique_ptr<queue::TransactionReader> reader,
                         cursor->Next(std::chrono::milliseconds(0)));
    if (reader == nullptr) {
      PGB_RETURN_IF_ERROR(SendCommit(planner_->CloseIfDue(Clock::now(), /*force=*/true)));
      PGB_ASSIGN_OR_RETURN(reader, cursor->Next(options_.idle_wait));
    }
    // Looked at after the read, which may have waited: a request that came meanwhile is seen
    // before the transaction read is handed out.
    PGB_RETURN_IF_ERROR(PollPause());
    if (reader == nullptr) {
      PGB_RETURN_IF_ERROR(OnIdle(done));
      if (*done) return Status::Ok();
      // A pause whose LSN the source has passed with nothing left to read before it: answered
      // here, as no transaction at or past it comes to hold for.
      const Lsn limit = PauseLimit();
      if (limit.IsValid() && pause_->request().stage == PauseStage::kPause) {
        PGB_ASSIGN_OR_RETURN(bool all, ReadEverythingBefore(limit));
        if (all) PGB_RETURN_IF_ERROR(HoldForPause());
      }
      continue;
    }
    const queue::CommitRecord commit = reader->commit();
    // Held before a pause request's LSN until it is released (or given up on).
    for (Lsn limit = PauseLimit(); limit.IsValid() && commit.commit_lsn >= limit;
         limit = PauseLimit()) {
      if (stopped()) return Status::Ok();  // the held transaction is read again on restart
      PGB_RETURN_IF_ERROR(HoldForPause());
    }
    read_through_ = commit.commit_lsn;
    if (options_.stop_at.IsValid() && commit.commit_lsn > options_.stop_at) {
      *done = true;
      return Status::Ok();
    }
    if (commit.change_count > options_.big_txn_changes && options_.ddl_replicate) {
      PGB_RETURN_IF_ERROR(DispatchLargeMaybeDdl(reader.get(), commit));
    } else if (commit.change_count > options_.big_txn_changes) {
      PGB_RETURN_IF_ERROR(DispatchLarge(reader.get(), commit));
    } else {
      PGB_RETURN_IF_ERROR(DispatchGrouped(reader.get(), commit));
    }
  }
  return Status::Ok();
}

Status Applier::Impl::Maintain(const ProgressStore& progress) {
  auto now = Clock::now();
  if (trim_ && now - last_trim_ >= options_.trim_interval) {
    last_trim_ = now;
    PGB_ASSIGN_OR_RETURN(Lsn pos, progress.ReadPosition(*control_, /*flushed=*/true));
    if (pos.IsValid()) {
      // What the queue held, and how far it is trimmed, outlive the trim: they tell a later
      // start whether the slot and the target still chain with the queue (tools/common/
      // identity.h).
      Status t = RecordHighWater(pos);
      if (t.ok()) t = queue_->Trim(pos);
      if (!t.ok()) {
        LogWarning("cannot trim the queue; leaving it to the writer", {{"error", t.message()}});
        trim_ = false;
      }
    }
  }
  if (now - sync_loaded_at_ > std::chrono::seconds(2)) PGB_RETURN_IF_ERROR(LoadSyncLsns());
  return Status::Ok();
}

Status Applier::Impl::OnIdle(bool* done) {
  // Commit what is open now rather than waiting for the delay.
  PGB_RETURN_IF_ERROR(SendCommit(planner_->CloseIfDue(Clock::now(), /*force=*/true)));
  if (!options_.stop_at.IsValid()) return Status::Ok();
  PGB_ASSIGN_OR_RETURN(*done, ReadEverythingBefore(options_.stop_at));
  return Status::Ok();
}

Result<bool> Applier::Impl::ReadEverythingBefore(Lsn lsn) {
  Lsn source = Lsn::Invalid();
  if (options_.source_position) {
    source = options_.source_position();
  } else {
    auto l = queue_->LastEndLsn();
    if (l.ok()) source = *l;
  }
  if (source < lsn) return false;
  // The source is past `lsn`, so the queue holds every transaction up to it (the slot confirms
  // only what the queue holds durably). A transaction appended between the empty read and that
  // look at the source is still unread: true only when nothing newer than what this run read is
  // in the queue (the next read takes it).
  PGB_ASSIGN_OR_RETURN(Lsn last, queue_->LastCommitLsn());
  return !last.IsValid() || last <= read_through_;
}

Lsn Applier::Impl::AppliedLsn() {
  std::lock_guard<std::mutex> l(shared_->mu);
  return shared_->stats.applied_lsn.IsValid() ? shared_->stats.applied_lsn : start_;
}

Status Applier::Impl::PollPause() {
  if (!pause_) return Status::Ok();
  PGB_RETURN_IF_ERROR(pause_->Poll());
  const PauseRequest& r = pause_->request();
  if (r.stage != PauseStage::kRequested || r.id == answered_id_) return Status::Ok();
  answered_id_ = r.id;
  // Step 1: hold at hold_from only if nothing at or past it was handed to a session yet.
  const bool can = !read_through_.IsValid() || read_through_ < r.hold_from;
  return pause_->Answer(can ? PauseStage::kHolding : PauseStage::kPassed, AppliedLsn());
}

Lsn Applier::Impl::PauseLimit() const {
  if (!pause_) return Lsn::Invalid();
  const PauseRequest& r = pause_->request();
  if (r.id == 0 || r.id == expired_id_) return Lsn::Invalid();
  switch (r.stage) {
    case PauseStage::kHolding:
      return r.hold_from;
    case PauseStage::kPause:
    case PauseStage::kPaused:
      return r.before_lsn;
    default:
      return Lsn::Invalid();
  }
}

Status Applier::Impl::HoldForPause() {
  const PauseRequest& r = pause_->request();
  if (hold_id_ != r.id) {
    hold_id_ = r.id;
    hold_started_ = Clock::now();
    LogInfo("holding for a pause request", {{"before_lsn", PauseLimit().ToString()}});
  }
  if (r.stage == PauseStage::kPause) {
    // Everything before the pause's LSN was handed out: once it is committed, say so.
    PGB_RETURN_IF_ERROR(SendCommit(planner_->CloseIfDue(Clock::now(), /*force=*/true)));
    if (!shared_->WaitCommitted(last_group_)) return Status::Ok();  // the run failed
    return pause_->Answer(PauseStage::kPaused, AppliedLsn());
  }
  if (Clock::now() - hold_started_ > options_.pause_max) {
    LogWarning("gave up holding for a pause request: its requester did not release it",
               {{"held_s", std::chrono::duration<double>(Clock::now() - hold_started_).count()}});
    expired_id_ = r.id;
    return pause_->Answer(PauseStage::kExpired, AppliedLsn());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return PollPause();
}

Status Applier::Impl::DispatchLarge(queue::TransactionReader* reader,
                                    const queue::CommitRecord& commit) {
  uint64_t close_first = 0;
  Assignment a = planner_->AddBarrier(&close_first);
  PGB_RETURN_IF_ERROR(SendCommit(close_first));
  uint64_t wait_for = a.wait_for;  // the first chunk waits, the others follow it
  uint64_t changes = 0;
  PGB_RETURN_IF_ERROR(ForEachChunk(reader, [&](queue::ChangeChunk* chunk) -> Status {
    std::shared_ptr<TxnWork> work = NewWork(commit);
    PGB_RETURN_IF_ERROR(Resolve(&chunk->changes, commit.commit_lsn, work.get(), nullptr));
    changes += work->changes.size();
    PGB_RETURN_IF_ERROR(Send(a.worker, Item::Work(a.group, wait_for, std::move(work))));
    wait_for = 0;
    return Status::Ok();
  }));
  open_commit_ = GroupCommit{commit.commit_lsn, commit.commit_time, 1, changes};
  return SendCommit(a.group);
}

Status Applier::Impl::DispatchGrouped(queue::TransactionReader* reader,
                                      const queue::CommitRecord& commit) {
  auto changes = std::make_shared<std::vector<queue::Change>>();
  PGB_RETURN_IF_ERROR(ForEachChunk(reader, [&](queue::ChangeChunk* chunk) {
    for (auto& c : chunk->changes) changes->push_back(std::move(c));
    return Status::Ok();
  }));
  if (options_.ddl_replicate) {
    // A transaction holding DDL records is a barrier of its own (applier_ddl.cc); the visitor
    // owns the changes, as a session may still read them after a failed run's coordinator left.
    std::vector<DdlStep> ddl;
    ChangeVisitor visit = [changes](const std::function<Status(queue::Change*)>& fn) -> Status {
      for (auto& c : *changes) PGB_RETURN_IF_ERROR(fn(&c));
      return Status::Ok();
    };
    PGB_RETURN_IF_ERROR(CollectDdl(commit, visit, &ddl));
    if (!ddl.empty()) return DispatchDdl(commit, std::move(ddl), visit);
  }
  return DispatchChanges(std::move(*changes), commit);
}

Status Applier::Impl::DispatchChanges(std::vector<queue::Change> changes,
                                      const queue::CommitRecord& commit) {
  std::shared_ptr<TxnWork> work = NewWork(commit);
  WriteSet ws;
  WriteSet* keys = options_.jobs > 1 ? &ws : nullptr;  // one connection: nothing to schedule
  PGB_RETURN_IF_ERROR(Resolve(&changes, commit.commit_lsn, work.get(), keys));
  uint64_t close_first = 0;
  Assignment a =
      planner_->Add(ws, work->changes.size() + 1, work->bytes, Clock::now(), &close_first);
  PGB_RETURN_IF_ERROR(SendCommit(close_first));
  for (const auto& [index, group] : a.deferred) {
    uint64_t& after = work->changes[static_cast<size_t>(index)].after_group;
    after = std::max(after, group);
  }
  open_commit_.lsn = commit.commit_lsn;
  open_commit_.time = commit.commit_time;
  open_commit_.txns++;
  open_commit_.changes += work->changes.size();
  if (!work->changes.empty() || a.wait_for > 0) {
    PGB_RETURN_IF_ERROR(Send(a.worker, Item::Work(a.group, a.wait_for, std::move(work))));
  }
  return SendCommit(planner_->CloseIfDue(Clock::now(), /*force=*/false));
}

Status Applier::Impl::Run(const std::atomic<bool>* stop) {
  auto backoff = std::chrono::milliseconds(500);
  while (true) {
    bool done = false;
    Status s = RunOnce(stop, &done);
    if (s.ok()) return s;
    if (!options_.retry || !s.retryable() || (stop != nullptr && stop->load())) return s;
    LogWarning("applier lost the target; resuming from the target's position",
               {{"error", s.message()}, {"retry_in_ms", backoff.count()}});
    auto until = Clock::now() + backoff;
    while (Clock::now() < until && !(stop != nullptr && stop->load())) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    backoff = std::min(backoff * 2, std::chrono::milliseconds(10000));
  }
}

Applier::Applier(const ApplierOptions& options, queue::WorkQueue* queue)
    : impl_(std::make_unique<Impl>(options, queue)) {}
Applier::~Applier() = default;
Status Applier::Run(const std::atomic<bool>* stop) { return impl_->Run(stop); }
ApplierStats Applier::stats() const { return impl_->stats(); }

}  // namespace pgbaton::applier

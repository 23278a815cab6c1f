#include "applier/applier.h"

#include <fmt/format.h>
#include <pthread.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "applier/apply_session.h"
#include "applier/apply_work.h"
#include "common/log.h"
#include "common/metrics_catalog.h"

namespace pgbaton::applier {

namespace {

using Clock = std::chrono::steady_clock;

// What the coordinator sends a session.
struct Item {
  enum class Kind { kWork, kCommit } kind = Kind::kWork;
  uint64_t group = 0;
  uint64_t wait_for = 0;  // kWork: run only after this group committed
  std::shared_ptr<const TxnWork> work;
  Lsn lsn;  // kCommit: the group's last commit LSN and time
  PgTimestamp time;
  uint64_t txns = 0;  // kCommit: source transactions and changes in the group
  uint64_t changes = 0;
  size_t bytes = 0;
};

// State shared by the coordinator and the sessions.
struct Shared {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t committed = 0;  // every group <= this committed
  Lsn committed_lsn;
  bool failed = false;
  Status error;
  ApplierStats stats;

  void Fail(Status s) {
    std::lock_guard<std::mutex> l(mu);
    if (!failed) {
      failed = true;
      error = std::move(s);
    }
    cv.notify_all();
  }
};

// A bounded queue of items for one session; bounded by bytes so memory stays flat whatever the
// backlog. Push blocks while full; both ends give up when the run fails.
class Channel {
 public:
  Channel(Shared* shared, size_t capacity) : shared_(shared), capacity_(capacity) {}
  bool Push(Item item) {
    std::unique_lock<std::mutex> l(shared_->mu);
    shared_->cv.wait(l, [&] { return shared_->failed || items_.empty() || bytes_ < capacity_; });
    if (shared_->failed) return false;
    bytes_ += item.bytes;
    items_.push_back(std::move(item));
    // Only an empty channel has a session waiting on it: wake it then, not on every item.
    if (items_.size() == 1) shared_->cv.notify_all();
    return true;
  }
  bool Pop(Item* out) {
    std::unique_lock<std::mutex> l(shared_->mu);
    shared_->cv.wait(l, [&] { return shared_->failed || closed_ || !items_.empty(); });
    if (shared_->failed || items_.empty()) return false;
    *out = std::move(items_.front());
    items_.pop_front();
    // Only a full channel has the coordinator waiting on it.
    bool was_full = bytes_ >= capacity_;
    bytes_ -= out->bytes;
    if (was_full) shared_->cv.notify_all();
    return true;
  }
  void Close() {
    std::lock_guard<std::mutex> l(shared_->mu);
    closed_ = true;
    shared_->cv.notify_all();
  }

 private:
  Shared* shared_;
  size_t capacity_;
  std::deque<Item> items_;
  size_t bytes_ = 0;
  bool closed_ = false;
};

// Counts a group's changes by kind and bytes as its work is applied, into the catalogue's
// counters once the group committed.
struct GroupMetrics {
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
    const metrics::Catalog& m = metrics::CatalogMetrics();
    static const char* const kNames[4] = {metrics::kKindInsert, metrics::kKindUpdate,
                                          metrics::kKindDelete, metrics::kKindTruncate};
    for (int k = 0; k < 4; ++k) {
      if (kinds[k] > 0) m.changes_total->WithLabels({kNames[k]})->Increment(kinds[k]);
      kinds[k] = 0;
    }
    m.transactions_total->WithLabels({metrics::kStageApplied})->Increment(txns);
    m.bytes_total->WithLabels({metrics::kStageApplied})->Increment(bytes);
    bytes = 0;
    m.apply_batch_size->Observe(static_cast<double>(txns));
    m.apply_batch_seconds->Observe(seconds);
  }
};

void SessionLoop(int worker, ApplySession* session, Channel* channel, Shared* shared) {
  // Named for top -H, perf and gdb (at most 15 characters).
  pthread_setname_np(pthread_self(), fmt::format("pgb-apply-{}", worker).c_str());
  Item it;
  GroupMetrics gm;
  while (channel->Pop(&it)) {
    if (it.wait_for > 0) {
      std::unique_lock<std::mutex> l(shared->mu);
      shared->cv.wait(l, [&] { return shared->failed || shared->committed >= it.wait_for; });
      if (shared->failed) return;
    }
    Status s;
    if (it.kind == Item::Kind::kWork) {
      s = session->Apply(it.work);
      if (s.ok()) gm.Add(*it.work);
    } else {
      const auto commit_start = Clock::now();
      // Send and check all that need not wait (a conflict rolls the group back), then, in turn,
      // the deferred updates and the commit.
      s = session->FlushReady();
      if (s.ok()) {
        std::unique_lock<std::mutex> l(shared->mu);
        shared->cv.wait(l, [&] { return shared->failed || shared->committed + 1 >= it.group; });
        if (shared->failed) return;
      }
      if (s.ok()) s = session->Commit(it.lsn, it.time);
      if (s.ok()) {
        std::lock_guard<std::mutex> l(shared->mu);
        shared->committed = it.group;
        shared->committed_lsn = it.lsn;
        shared->stats.applied_lsn = it.lsn;
        shared->stats.groups++;
        shared->stats.transactions += it.txns;
        shared->stats.changes += it.changes;
        shared->cv.notify_all();
      }
      if (s.ok()) {
        gm.Committed(it.txns, std::chrono::duration<double>(Clock::now() - commit_start).count());
      }
    }
    if (!s.ok()) {
      shared->Fail(s);
      return;
    }
  }
}

}  // namespace

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
  Status RunOnce(const std::atomic<bool>* stop, bool* done);
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
  bool SendCommit(uint64_t group);

  ApplierOptions options_;
  queue::WorkQueue* queue_;
  std::mutex stats_mu_;
  ApplierStats total_;  // from finished runs
  Shared* shared_ = nullptr;

  // Per run.
  std::optional<PgConn> control_;
  std::map<std::pair<uint32_t, uint32_t>, TargetRelationPtr> relations_;
  std::unordered_map<std::string, Lsn> sync_lsns_;
  Clock::time_point sync_loaded_at_;
  Lsn high_water_, trimmed_through_;  // what RecordHighWater last wrote
  std::vector<std::unique_ptr<Channel>> channels_;
  Planner* planner_ = nullptr;
  Lsn group_lsn_;
  PgTimestamp group_time_;
  uint64_t group_txns_ = 0, group_changes_ = 0;
  uint64_t filtered_ = 0;
};

Result<TargetRelationPtr> Applier::Impl::Resolve(RelationId id, uint32_t version) {
  auto key = std::make_pair(id.value, version);
  auto it = relations_.find(key);
  if (it != relations_.end()) return it->second;
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
  PGB_ASSIGN_OR_RETURN(TargetRelation t, LoadTargetRelation(*control_, d, versions));
  auto ptr = std::make_shared<const TargetRelation>(std::move(t));
  relations_.emplace(key, ptr);
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

bool Applier::Impl::SendCommit(uint64_t group) {
  if (group == 0) return true;
  Item it;
  it.kind = Item::Kind::kCommit;
  it.group = group;
  it.lsn = group_lsn_;
  it.time = group_time_;
  it.txns = group_txns_;
  it.changes = group_changes_;
  group_txns_ = group_changes_ = 0;
  return channels_[planner_->WorkerOf(group)]->Push(std::move(it));
}

Status Applier::Impl::RunOnce(const std::atomic<bool>* stop, bool* done) {
  *done = false;
  ConnectOptions co;
  co.label = "target";
  co.application_name = "pgbaton applier";
  PGB_ASSIGN_OR_RETURN(PgConn control, PgConn::Connect(options_.target_conninfo, co));
  control_.emplace(std::move(control));
  relations_.clear();
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

  Shared shared;
  {
    std::lock_guard<std::mutex> l(stats_mu_);
    shared_ = &shared;
  }
  std::vector<std::unique_ptr<ApplySession>> sessions;
  SessionOptions so;
  so.skip_conflicts = options_.on_conflict == OnConflict::kSkip;
  so.copy_min_rows = options_.copy_min_rows;
  so.wait_committed = [&shared](uint64_t group) {
    std::unique_lock<std::mutex> l(shared.mu);
    shared.cv.wait(l, [&] { return shared.failed || shared.committed >= group; });
    if (shared.failed) {
      return Status::Error(ErrorCode::kInternal, "the applier stopped while a session waited");
    }
    return Status::Ok();
  };
  for (int k = 0; k < options_.jobs; ++k) {
    so.worker = k;
    auto s = ApplySession::Open(options_.target_conninfo, progress, so);
    if (!s.ok()) {
      std::lock_guard<std::mutex> l(stats_mu_);
      shared_ = nullptr;
      return s.status();
    }
    sessions.push_back(std::move(*s));
  }
  PlannerOptions po;
  po.jobs = options_.jobs;
  po.group_max_rows = options_.group_max_rows;
  po.group_max_bytes = options_.group_max_bytes;
  po.group_max_delay = options_.group_max_delay;
  Planner planner(po);
  planner_ = &planner;
  channels_.clear();
  std::vector<std::thread> threads;
  for (int k = 0; k < options_.jobs; ++k) {
    channels_.push_back(std::make_unique<Channel>(&shared, options_.session_queue_bytes));
  }
  for (int k = 0; k < options_.jobs; ++k) {
    threads.emplace_back(SessionLoop, k, sessions[k].get(), channels_[k].get(), &shared);
  }
  group_txns_ = group_changes_ = 0;

  // The coordinator loop. `status` ends it with an error; `*done` when --stop-at is reached.
  Status status;
  auto last_trim = Clock::now();
  bool trim = options_.trim_queue;
  auto cursor_r = queue_->ReadFrom(start);
  std::unique_ptr<queue::QueueCursor> cursor;
  if (!cursor_r.ok()) {
    status = cursor_r.status();
  } else {
    cursor = std::move(*cursor_r);
  }
  auto failed = [&] {
    std::lock_guard<std::mutex> l(shared.mu);
    return shared.failed;
  };
  while (status.ok() && !(stop != nullptr && stop->load()) && !failed()) {
    {
      std::lock_guard<std::mutex> l(shared.mu);
      planner.Committed(shared.committed);
    }
    auto now = Clock::now();
    if (trim && now - last_trim >= options_.trim_interval) {
      last_trim = now;
      auto pos = progress.ReadPosition(*control_, /*flushed=*/true);
      if (!pos.ok()) {
        status = pos.status();
        break;
      }
      if (pos->IsValid()) {
        // What the queue held, and how far it is trimmed, outlive the trim: they tell a later
        // start whether the slot and the target still chain with the queue (tools/common/
        // identity.h).
        Status t = RecordHighWater(*pos);
        if (t.ok()) t = queue_->Trim(*pos);
        if (!t.ok()) {
          LogWarning("cannot trim the queue; leaving it to the writer", {{"error", t.message()}});
          trim = false;
        }
      }
    }
    if (now - sync_loaded_at_ > std::chrono::seconds(2)) {
      status = LoadSyncLsns();
      if (!status.ok()) break;
    }
    auto next = cursor->Next(options_.idle_wait);
    if (!next.ok()) {
      status = next.status();
      break;
    }
    std::unique_ptr<queue::TransactionReader> reader = std::move(*next);
    if (reader == nullptr) {
      // Idle: commit what is open now rather than waiting for the delay.
      if (!SendCommit(planner.CloseIfDue(Clock::now(), /*force=*/true))) break;
      if (options_.stop_at.IsValid()) {
        Lsn source = Lsn::Invalid();
        if (options_.source_position) {
          source = options_.source_position();
        } else {
          auto l = queue_->LastEndLsn();
          if (l.ok()) source = *l;
        }
        if (source >= options_.stop_at) {
          *done = true;
          break;
        }
      }
      continue;
    }
    const queue::CommitRecord commit = reader->commit();
    if (options_.stop_at.IsValid() && commit.commit_lsn > options_.stop_at) {
      *done = true;
      break;
    }
    if (commit.change_count > options_.big_txn_changes) {
      // Too large to hold: it runs alone, chunk by chunk, after every earlier group commits.
      uint64_t close_first = 0;
      Assignment a = planner.AddBarrier(&close_first);
      if (!SendCommit(close_first)) break;
      bool first = true;
      queue::ChangeChunk chunk;
      uint64_t changes = 0;
      while (status.ok()) {
        auto more = reader->NextChunk(&chunk);
        if (!more.ok()) {
          status = more.status();
          break;
        }
        if (!*more) break;
        auto work = std::make_shared<TxnWork>();
        work->commit_lsn = commit.commit_lsn;
        work->commit_time = commit.commit_time;
        status = Resolve(&chunk.changes, commit.commit_lsn, work.get(), nullptr);
        if (!status.ok()) break;
        changes += work->changes.size();
        Item it{Item::Kind::kWork, a.group, first ? a.wait_for : 0, work, {}, {}, 0, 0,
                work->bytes};
        first = false;
        if (!channels_[a.worker]->Push(std::move(it))) break;
      }
      if (!status.ok()) break;
      group_lsn_ = commit.commit_lsn;
      group_time_ = commit.commit_time;
      group_txns_ = 1;
      group_changes_ = changes;
      if (!SendCommit(a.group)) break;
      continue;
    }
    auto work = std::make_shared<TxnWork>();
    work->commit_lsn = commit.commit_lsn;
    work->commit_time = commit.commit_time;
    WriteSet ws;
    queue::ChangeChunk chunk;
    while (status.ok()) {
      auto more = reader->NextChunk(&chunk);
      if (!more.ok()) {
        status = more.status();
        break;
      }
      if (!*more) break;
      status =
          Resolve(&chunk.changes, commit.commit_lsn, work.get(), options_.jobs > 1 ? &ws : nullptr);
    }
    if (!status.ok()) break;
    uint64_t close_first = 0;
    Assignment a =
        planner.Add(ws, work->changes.size() + 1, work->bytes, Clock::now(), &close_first);
    if (!SendCommit(close_first)) break;
    for (const auto& [index, group] : a.deferred) {
      uint64_t& after = work->changes[static_cast<size_t>(index)].after_group;
      after = std::max(after, group);
    }
    group_lsn_ = commit.commit_lsn;
    group_time_ = commit.commit_time;
    group_txns_++;
    group_changes_ += work->changes.size();
    if (!work->changes.empty() || a.wait_for > 0) {
      size_t bytes = work->bytes;
      Item it{Item::Kind::kWork, a.group, a.wait_for, std::move(work), {}, {}, 0, 0, bytes};
      if (!channels_[a.worker]->Push(std::move(it))) break;
    }
    if (!SendCommit(planner.CloseIfDue(Clock::now(), false))) break;
  }
  // Commit what is open (also on stop: it is all consistent), then let the sessions drain.
  if (status.ok() && !failed()) SendCommit(planner.CloseIfDue(Clock::now(), /*force=*/true));
  if (!status.ok()) shared.Fail(status);
  for (auto& c : channels_) c->Close();
  for (auto& t : threads) t.join();
  {
    std::lock_guard<std::mutex> l(stats_mu_);
    total_.transactions += shared.stats.transactions;
    total_.changes += shared.stats.changes;
    total_.groups += shared.stats.groups;
    total_.filtered += filtered_;
    if (shared.stats.applied_lsn.IsValid()) total_.applied_lsn = shared.stats.applied_lsn;
    for (auto& s : sessions) {
      total_.copy_rows += s->stats().copy_rows;
      total_.skipped_conflicts += s->stats().skipped_conflicts;
    }
    filtered_ = 0;
    shared_ = nullptr;
  }
  channels_.clear();
  planner_ = nullptr;
  sessions.clear();
  control_.reset();
  if (shared.failed) {
    *done = false;
    return shared.error;
  }
  return Status::Ok();
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

Result<Lsn> ReadTargetPosition(PgConn& conn, const std::string& name, bool flushed) {
  PGB_ASSIGN_OR_RETURN(std::string has_table,
                       conn.QueryValue("select to_regclass('pgbaton.progress') is not null"));
  Lsn best;
  for (ProgressMode m : {ProgressMode::kOrigin, ProgressMode::kTable}) {
    if (m == ProgressMode::kTable && has_table != "t") continue;
    PGB_ASSIGN_OR_RETURN(ProgressStore store, ProgressStore::ForReading(name, m));
    Result<Lsn> l = store.ReadPosition(conn, flushed);
    // A role that may not read origins has none of its own: its applier uses the table.
    if (!l.ok() && m == ProgressMode::kOrigin && l.status().code() == ErrorCode::kPermission) {
      continue;
    }
    if (!l.ok()) return l.status();
    best = std::max(best, *l);
  }
  return best;
}

}  // namespace pgbaton::applier

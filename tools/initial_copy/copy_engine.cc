#include "tools/initial_copy/copy_engine.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "catalog/source_catalog.h"
#include "common/log.h"
#include "common/metrics_catalog.h"
#include "common/pg.h"
#include "common/sql_ident.h"
#include "tools/common/identity.h"
#include "tools/initial_copy/catalog.h"
#include "tools/initial_copy/data_copy.h"
#include "tools/initial_copy/ddl_capture.h"
#include "tools/initial_copy/large_objects.h"
#include "tools/initial_copy/post_data.h"
#include "tools/initial_copy/rate_limiter.h"
#include "tools/initial_copy/schema.h"
#include "tools/initial_copy/snapshot.h"
#include "tools/initial_copy/source_load.h"

namespace pgbaton::tools::copy {
namespace {

constexpr const char* kDone = "done";
constexpr const char* kStarted = "started";
constexpr const char* kCopying = "copying";

// The queue's metadata, serialized (workers record tables concurrently).
class Meta {
 public:
  explicit Meta(queue::WorkQueue* q) : q_(q) {}
  Status Put(const std::string& key, const std::string& value) {
    std::lock_guard<std::mutex> l(mu_);
    return q_->PutMeta(key, value);
  }
  Result<std::string> Get(const std::string& key) {
    std::lock_guard<std::mutex> l(mu_);
    PGB_ASSIGN_OR_RETURN(std::optional<std::string> v, q_->GetMeta(key));
    return v.value_or("");
  }
  Result<std::map<std::string, std::string>> List(const std::string& prefix) {
    std::lock_guard<std::mutex> l(mu_);
    return q_->ListMeta(prefix);
  }

 private:
  queue::WorkQueue* q_;
  std::mutex mu_;
};

Result<PgConn> Connect(const std::string& conninfo, const char* label) {
  ConnectOptions co;
  co.label = label;
  co.application_name = "pgbaton copy";
  return PgConn::Connect(conninfo, co);
}

Status CheckVersions(const CopyOptions& o, PgConn& src, PgConn& dst) {
  if (dst.ServerMajor() < src.ServerMajor()) {
    return Status::Error(ErrorCode::kVersion,
                         fmt::format("target ({}) runs PostgreSQL {}, older than the source's {}",
                                     dst.description(), dst.ServerMajor(), src.ServerMajor()),
                         "migrate to a target of the same or a newer major version");
  }
  PGB_ASSIGN_OR_RETURN(int dump_major, PgDumpMajor(o.pg_dump));
  if (dump_major < src.ServerMajor()) {
    return Status::Error(
        ErrorCode::kVersion,
        fmt::format("pg_dump {} (\"{}\") cannot dump the schema of source ({}) running "
                    "PostgreSQL {}: pg_dump must be at least as new as the source",
                    dump_major, o.pg_dump, src.description(), src.ServerMajor()),
        fmt::format("install the PostgreSQL {0} client (e.g. postgresql-client-{0}) and pass "
                    "--pg-dump /usr/lib/postgresql/{0}/bin/pg_dump",
                    src.ServerMajor()));
  }
  return Status::Ok();
}

Status CheckIdentity(const PgConn& src, const std::vector<TableInfo>& tables) {
  std::vector<const TableInfo*> bad;
  for (const auto& t : tables) {
    if (!t.has_identity) bad.push_back(&t);
  }
  if (bad.empty()) return Status::Ok();
  const TableInfo& t = *bad.front();
  std::string q = QuoteQualified(t.schema, t.name);
  std::string others;
  if (bad.size() > 1) {
    others = fmt::format(" (and {} more:", bad.size() - 1);
    for (size_t i = 1; i < bad.size() && i < 6; ++i) others += " \"" + bad[i]->Key() + "\"";
    others += bad.size() > 6 ? " ...)" : ")";
  }
  return Status::Error(
      ErrorCode::kNoReplicaIdentity,
      fmt::format("table \"{}\" on source ({}) has no primary key and no replica identity{}: "
                  "its updates and deletes cannot be replicated",
                  t.Key(), src.description(), others),
      fmt::format("add a primary key, or run ALTER TABLE {} REPLICA IDENTITY FULL (or USING "
                  "INDEX a unique index) on the source, or leave it out with --exclude '{}'",
                  q, t.Key()));
}

// Creates the publication unless it exists: FOR ALL TABLES, or the selected roots when filtering.
Status EnsurePublication(const CopyOptions& o, PgConn& src, const TableFilter& filter,
                         const std::vector<TableInfo>& selected) {
  std::vector<QualifiedName> roots;
  if (filter.filtering()) {
    std::set<QualifiedName> seen;
    for (const auto& t : selected) {
      if (seen.insert(t.Root()).second) roots.push_back(t.Root());
    }
  }
  return catalog::EnsurePublication(src, o.name, roots).status();
}

Result<PgConn> OpenSnapshotSession(const CopyOptions& o, const SnapshotRef& snap) {
  PGB_ASSIGN_OR_RETURN(PgConn conn, Connect(o.source, "source"));
  PGB_RETURN_IF_ERROR(conn.Run("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"));
  Status st = conn.Run(fmt::format("SET TRANSACTION SNAPSHOT {}", conn.QuoteLiteral(snap.name)));
  if (!st.ok()) {
    return Status::Error(
        ErrorCode::kSnapshotLost,
        fmt::format("snapshot \"{}\" is lost: the source session that exported it ended, so "
                    "it cannot be imported ({})",
                    snap.name, st.message()),
        "run the same command again: it copies at a new snapshot");
  }
  return conn;
}

Result<bool> TargetHasAll(PgConn& dst, const std::vector<TableInfo>& tables) {
  for (const auto& t : tables) {
    PGB_ASSIGN_OR_RETURN(PgResult r, dst.ExecParams("SELECT to_regclass($1) IS NOT NULL",
                                                    {QuoteQualified(t.schema, t.name)}));
    if (!r.GetBool(0, 0)) return false;
  }
  return true;
}

Status CheckTargetEmpty(PgConn& dst, const TableInfo& t) {
  std::string q = QuoteQualified(t.schema, t.name);
  auto r = dst.QueryValue(fmt::format("SELECT EXISTS (SELECT 1 FROM ONLY {})", q));
  if (!r.ok()) {
    if (r.status().code() == ErrorCode::kNotFound) {
      return Status::Error(
          ErrorCode::kNotFound,
          fmt::format("table \"{}\" does not exist on target ({})", t.Key(), dst.description()),
          "the schema on the target differs from the source's; copy into an "
          "empty database");
    }
    return r.status();
  }
  if (*r == "t") {
    return Status::Error(ErrorCode::kTargetNotEmpty,
                         fmt::format("table \"{}\" on target ({}) already holds rows that this "
                                     "copy did not write",
                                     t.Key(), dst.description()),
                         fmt::format("copy into an empty database, or empty it first (TRUNCATE "
                                     "{}) if those rows are not needed",
                                     q));
  }
  return Status::Ok();
}

// Whether table `t`, recorded as copied with `recorded_rows` rows ("" when not recorded), lost
// them on the target: it is empty although the copy wrote rows. Errors: kNotFound when the table
// itself is gone (its schema must be restored first), the target's.
Result<bool> CopiedTableLost(PgConn& dst, const TableInfo& t, const std::string& recorded_rows) {
  std::string q = QuoteQualified(t.schema, t.name);
  PGB_ASSIGN_OR_RETURN(PgResult exists, dst.ExecParams("SELECT to_regclass($1) IS NOT NULL", {q}));
  if (!exists.GetBool(0, 0)) {
    return Status::Error(
        ErrorCode::kNotFound,
        fmt::format("table \"{}\" was copied by this migration but no longer exists on target "
                    "({})",
                    t.Key(), dst.description()),
        "the target was changed behind pgbaton's back: restore the table's definition there "
        "(e.g. pg_dump --schema-only -t from the source) and run copy again, which copies its "
        "rows anew, or start over with `pgbaton cleanup` and a new copy into an empty database");
  }
  if (recorded_rows.empty() || recorded_rows == "0") return false;
  PGB_ASSIGN_OR_RETURN(std::string any,
                       dst.QueryValue(fmt::format("SELECT EXISTS (SELECT 1 FROM ONLY {})", q)));
  if (any == "t") return false;
  LogWarning("a table recorded as copied is empty on the target; copying it again",
             {{"table", t.Key()}, {"rows_copied", recorded_rows}, {"target", dst.description()}});
  return true;
}

// On a first run (no schema restored by this queue yet), the target must not have any of the
// selected tables: a table there was not made by this copy. Checked before anything is created
// on either side.
Status CheckTargetFresh(PgConn& dst, const std::vector<TableInfo>& tables) {
  PGB_ASSIGN_OR_RETURN(std::vector<catalog::UserTable> on_target, catalog::ListUserTables(dst));
  std::set<std::string> present;
  for (const auto& u : on_target) present.insert(u.Key());
  std::vector<const TableInfo*> there;
  for (const auto& t : tables) {
    if (present.count(t.Key()) > 0) there.push_back(&t);
  }
  if (there.empty()) return Status::Ok();
  const TableInfo& t = *there.front();
  std::string q = QuoteQualified(t.schema, t.name);
  PGB_ASSIGN_OR_RETURN(std::string rows,
                       dst.QueryValue(fmt::format("SELECT EXISTS (SELECT 1 FROM ONLY {})", q)));
  std::string others = there.size() > 1
                           ? fmt::format(" (and {} more of the source's tables)", there.size() - 1)
                           : "";
  return Status::Error(
      ErrorCode::kTargetNotEmpty,
      fmt::format("table \"{}\" already exists on target ({}){}{}, and this copy did not create "
                  "it",
                  t.Key(), dst.description(), rows == "t" ? " and holds rows" : " (empty)", others),
      fmt::format("copy into an empty database, or drop what is in the way (DROP TABLE {}) if it "
                  "is not needed; nothing was changed on either side",
                  q));
}

// Says which tables go in text and why: binary is the default wherever every column's type has
// one binary form on every major (TableInfo::binary_safe).
void LogCopyFormats(const CopyOptions& o, const std::vector<TableInfo>& tables) {
  if (tables.empty()) return;
  if (o.text) {
    LogInfo("copying every table in text format (--text)", {{"tables", tables.size()}});
    return;
  }
  size_t binary = 0;
  std::string text;
  for (const auto& t : tables) {
    if (t.binary_safe) {
      ++binary;
    } else {
      text += fmt::format("{}{} (column {})", text.empty() ? "" : ", ", t.Key(), t.text_reason);
    }
  }
  LogFields f = {{"binary_tables", binary}, {"text_tables", tables.size() - binary}};
  if (!text.empty()) f.push_back({"text", text});
  LogInfo("copy format: binary where every column type has the same binary form on both majors", f);
}

// Sets the target's sequences to the source's values. A sequence the target lacks was left out
// of the copied schema by the filter.
Status CopySequences(PgConn& src, PgConn& dst, std::vector<catalog::Sequence> seqs) {
  PGB_ASSIGN_OR_RETURN(std::vector<QualifiedName> missing, catalog::MissingOn(dst, seqs));
  std::set<QualifiedName> left_out(missing.begin(), missing.end());
  std::erase_if(seqs, [&](const catalog::Sequence& s) { return left_out.count(s.name) > 0; });
  PGB_RETURN_IF_ERROR(catalog::ReadValues(src, &seqs));
  return catalog::WriteValues(dst, seqs);
}

// Protecting the source during the data phase (--max-copy-rate, --source-load-limit): the rate
// cap and the load monitor hold the copy workers only; the decoder that `migrate` runs meanwhile
// is what frees the source's WAL, and never waits. Lives for the data phase: the destructor stops
// the monitor and clears the pause from the progress and the metrics.
class SourceProtection {
 public:
  SourceProtection(const CopyOptions& o, Progress* progress) : o_(o), progress_(progress) {
    if (o.max_copy_rate > 0) {
      rate_ = std::make_unique<RateLimiter>(o.max_copy_rate, SystemClock());
      progress->SetRateCap(o.max_copy_rate);
      LogInfo("copy workers capped by --max-copy-rate (all together)",
              {{"bytes_per_s", o.max_copy_rate}});
    }
    if (!o.source_load.any()) return;
    LogFields f;
    if (o.source_load.active_sessions > 0) {
      f.push_back({"active_sessions", o.source_load.active_sessions});
    }
    if (o.source_load.standby_lag.count() > 0) {
      f.push_back({"standby_lag_s", static_cast<double>(o.source_load.standby_lag.count()) / 1000});
    }
    f.push_back({"resume_at", fmt::format("{:.0f}% of each limit", kResumeFraction * 100)});
    LogInfo("copy workers pause while the source is over --source-load-limit", f);
    SetPausedMetrics({});
    gate_ = std::make_unique<LoadGate>(o.source_load);
    SourceLoadMonitorOptions mo;
    mo.conninfo = o.source;
    mo.limits = o.source_load;
    mo.interval = std::chrono::milliseconds(o.source_load_interval_ms);
    mo.own_sessions = &own_sessions_;
    mo.on_change = [this](bool paused, const std::string& reason,
                          const std::vector<std::string>& labels) {
      progress_->SetPaused(paused ? fmt::format("source load ({})", reason) : "");
      SetPausedMetrics(labels);
    };
    monitor_ = std::make_unique<SourceLoadMonitor>(std::move(mo), gate_.get());
  }

  ~SourceProtection() {
    if (!monitor_) return;
    monitor_.reset();
    progress_->SetPaused("");
    SetPausedMetrics({});
  }

  void Attach(DataCopyJob* job) {
    job->rate = rate_.get();
    job->load_gate = gate_.get();
    job->own_sessions = &own_sessions_;
    job->metrics = o_.metrics;
  }

 private:
  // pgbaton_copy_paused{reason}: 1 for the signals in `labels`, 0 for the other watched ones.
  void SetPausedMetrics(const std::vector<std::string>& labels) const {
    const metrics::Catalog& m = o_.metrics != nullptr ? *o_.metrics : metrics::CatalogMetrics();
    const std::pair<const char*, bool> watched[] = {
        {metrics::kPausedActiveSessions, o_.source_load.active_sessions > 0},
        {metrics::kPausedStandbyLag, o_.source_load.standby_lag.count() > 0}};
    for (const auto& [label, on] : watched) {
      if (!on) continue;
      const bool paused = std::find(labels.begin(), labels.end(), label) != labels.end();
      m.copy_paused.WithLabels({label})->Set(paused ? 1 : 0);
    }
  }

  const CopyOptions& o_;
  Progress* progress_;
  std::unique_ptr<RateLimiter> rate_;
  SessionSet own_sessions_;
  std::unique_ptr<LoadGate> gate_;
  std::unique_ptr<SourceLoadMonitor> monitor_;  // last: stopped before what it uses goes
};

// Large objects at the snapshot `ref` (logical decoding does not carry them): spread over the
// copy's workers, many small ones per target transaction. The phase is recorded as started and
// done in the queue; within it, the target itself says which objects are there (each batch
// commits whole), so a run after a crash writes only what is missing or differs, and never an
// object twice.
Status CopyLargeObjects(const CopyOptions& o, const SnapshotRef& ref, Meta& meta,
                        Progress* progress) {
  PGB_RETURN_IF_ERROR(meta.Put("copy/phase/large_objects", kStarted));
  // The cutover's re-sync compares owners the way the copy wrote them.
  PGB_RETURN_IF_ERROR(meta.Put("copy/no_owner", o.no_owner ? "true" : "false"));
  progress->BeginPhase("large-objects");
  LargeObjectSyncOptions lo;
  lo.source = o.source;
  lo.target = o.target;
  lo.snapshot = ref.name;
  lo.jobs = o.jobs;
  lo.no_owner = o.no_owner;
  lo.application_name = "pgbaton copy";
  lo.on_plan = [&](size_t, size_t batches) { progress->SetItemsTotal(batches); };
  lo.on_batch_done = [&](int n, size_t) {
    progress->ItemDone();
    AtTestPoint(o, fmt::format("large-objects:{}", n));
  };
  PGB_ASSIGN_OR_RETURN(LargeObjectSyncReport r, SyncLargeObjects(lo));
  if (r.source_objects > 0 || r.differences() > 0) progress->Note(r.Summary());
  PGB_RETURN_IF_ERROR(meta.Put("copy/large_objects", std::to_string(r.source_objects)));
  PGB_RETURN_IF_ERROR(meta.Put("copy/phase/large_objects", kDone));
  AtTestPoint(o, "after-large-objects");
  return Status::Ok();
}

// A first run writes every large object of the source: any already on the target was not made
// by this copy (and would be unlinked), so the copy refuses before it changes anything.
Status CheckNoLargeObjects(PgConn& dst) {
  PGB_ASSIGN_OR_RETURN(std::string n,
                       dst.QueryValue("SELECT count(*) FROM pg_catalog.pg_largeobject_metadata"));
  if (n == "0") return Status::Ok();
  return Status::Error(ErrorCode::kTargetNotEmpty,
                       fmt::format("target ({}) already holds {} large objects that this copy "
                                   "did not write",
                                   dst.description(), n),
                       "copy into an empty database, or unlink them first (SELECT lo_unlink(oid) "
                       "FROM pg_largeobject_metadata) if they are not needed");
}

}  // namespace

void AtTestPoint(const CopyOptions& o, const std::string& point) {
  const size_t colon = o.hold_at.rfind(':');
  if (colon != std::string::npos && o.hold_at.compare(0, colon, point) == 0 &&
      colon == point.size()) {
    const int ms = std::atoi(o.hold_at.c_str() + colon + 1);
    LogInfo("test hook: the copy holds", {{"at", point}, {"ms", ms}});
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  }
  if (!o.crash_at.empty() && o.crash_at == point) {
    fflush(stdout);
    fflush(stderr);
    raise(SIGKILL);
  }
  if (!o.pause_at.empty() && o.pause_at == point) {
    fflush(stdout);
    fflush(stderr);
    raise(SIGSTOP);
  }
}

Result<bool> CopyFinished(queue::WorkQueue* queue) {
  PGB_ASSIGN_OR_RETURN(std::optional<std::string> analyze, queue->GetMeta("copy/phase/analyze"));
  return analyze.has_value() && *analyze == kDone;
}

Result<std::unique_ptr<queue::WorkQueue>> OpenCopyQueue(MigrationCheck check,
                                                        const queue::QueueOptions& qo,
                                                        CopyOptions* options) {
  check.bind = true;
  check.record_on_target = false;
  LiveSides live;
  PGB_ASSIGN_OR_RETURN(std::unique_ptr<queue::WorkQueue> q,
                       OpenCheckedQueue(
                           check, [&] { return queue::WorkQueue::Open(qo); }, false, &live));
  options->after_schema = [check, live] { return RecordOnTarget(check, live); };
  return q;
}

Status RunCopy(const CopyOptions& o, queue::WorkQueue* queue, Progress* progress) {
  Meta meta(queue);
  progress->BeginPhase("preflight");
  PGB_ASSIGN_OR_RETURN(PgConn src, Connect(o.source, "source"));
  PGB_ASSIGN_OR_RETURN(PgConn dst, Connect(o.target, "target"));
  PGB_RETURN_IF_ERROR(CheckVersions(o, src, dst));
  PGB_RETURN_IF_ERROR(CheckExtensions(src, dst));
  TableFilter filter(o.include, o.exclude);
  PGB_ASSIGN_OR_RETURN(TableList current, ListTables(src, filter));
  if (filter.filtering() && current.selected.empty()) {
    return Status::Error(
        ErrorCode::kNotFound,
        fmt::format("no table on source ({}) matches --include/--exclude", src.description()),
        "patterns are globs on schema.table, e.g. 'public.*' or 'sales.order_*'");
  }
  PGB_RETURN_IF_ERROR(CheckIdentity(src, current.selected));

  PGB_ASSIGN_OR_RETURN(auto states, meta.List("copy/state/"));
  PGB_ASSIGN_OR_RETURN(std::string pre_phase, meta.Get("copy/phase/pre_data"));
  if (pre_phase.empty()) {
    PGB_RETURN_IF_ERROR(CheckTargetFresh(dst, current.selected));
    PGB_RETURN_IF_ERROR(CheckNoLargeObjects(dst));
  }
  auto state_of = [&](const TableInfo& t) {
    auto it = states.find("copy/state/" + t.Key());
    return it == states.end() ? std::string() : it->second;
  };
  if (pre_phase == kDone) {
    // A table recorded as copied must still be there with its rows; one that was emptied is
    // copied again (at a new snapshot, with a new sync LSN), so "done" means what is there.
    PGB_ASSIGN_OR_RETURN(auto rows, meta.List("copy/rows/"));
    for (const auto& t : current.selected) {
      if (state_of(t) != kDone) continue;
      auto it = rows.find("copy/rows/" + t.Key());
      PGB_ASSIGN_OR_RETURN(bool recopy,
                           CopiedTableLost(dst, t, it == rows.end() ? "" : it->second));
      if (recopy) states["copy/state/" + t.Key()] = kCopying;
    }
  }
  PGB_ASSIGN_OR_RETURN(std::string lo_phase, meta.Get("copy/phase/large_objects"));
  bool need_snapshot = pre_phase != kDone || lo_phase != kDone;
  for (const auto& t : current.selected) need_snapshot = need_snapshot || state_of(t) != kDone;

  progress->BeginPhase("snapshot");
  PGB_RETURN_IF_ERROR(EnsurePublication(o, src, filter, current.selected));
  if (o.ddl_replicate) {
    // Before the slot: every DDL statement after the copy's snapshot is recorded.
    PGB_RETURN_IF_ERROR(InstallDdlCapture(src, o.name));
    PGB_RETURN_IF_ERROR(RecordDdlFilter(queue, o.include, o.exclude));
  }
  PGB_ASSIGN_OR_RETURN(bool slot_exists, SlotExists(src, o.name));
  std::unique_ptr<SlotSnapshot> snap;
  if (!slot_exists) {
    // A slot this queue was fed by (or that copy created) is gone: the changes since are lost,
    // and a new slot would hide that.
    PGB_ASSIGN_OR_RETURN(bool streamed, QueueHasStreamed(queue));
    if (streamed) {
      return Status::Error(
          ErrorCode::kSlotMissing,
          fmt::format("slot \"{}\" on source ({}) does not exist, but this migration's queue "
                      "\"{}\" was made with it: the slot was dropped mid-migration and the "
                      "changes made since are lost",
                      o.name, src.description(), o.queue_dir),
          "nothing was created; start over: `pgbaton cleanup`, then `pgbaton copy` into an "
          "empty database");
    }
    // The first run: the slot that `pgbaton run` streams from; its consistent point is the
    // oldest sync LSN, so the stream holds every change any table needs.
    PGB_ASSIGN_OR_RETURN(snap, SlotSnapshot::Create(o.source, o.name, /*temporary=*/false));
    PGB_RETURN_IF_ERROR(RecordSlot(queue, o.name, snap->snapshot().lsn));
    PGB_RETURN_IF_ERROR(meta.Put("copy/slot", o.name));
    PGB_RETURN_IF_ERROR(meta.Put("copy/consistent_lsn", snap->snapshot().lsn.ToString()));
    progress->Note(fmt::format("created replication slot \"{}\" at {} (snapshot {})", o.name,
                               snap->snapshot().lsn.ToString(), snap->snapshot().name));
    AtTestPoint(o, "after-slot");
  } else if (need_snapshot) {
    // A resumed copy: the streaming slot stays as it is (it still holds the changes since its
    // older consistent point); a temporary slot gives a fresh snapshot, whose later LSN becomes
    // the sync LSN of the tables copied now. The temporary slot goes away with its session.
    std::string temp = fmt::format("{}_copy_{}", o.name, getpid());
    PGB_ASSIGN_OR_RETURN(snap, SlotSnapshot::Create(o.source, temp, /*temporary=*/true));
    progress->Note(
        fmt::format("resuming at a new snapshot {} (temporary slot \"{}\"); tables "
                    "copied now get sync LSN {}",
                    snap->snapshot().name, temp, snap->snapshot().lsn.ToString()));
  }
  if (o.on_slot) PGB_RETURN_IF_ERROR(o.on_slot());

  // Post-data entries, built early (a table's indexes as soon as its data is done, while other
  // tables are still copying) and then the rest after the data.
  PGB_ASSIGN_OR_RETURN(std::string post_phase, meta.Get("copy/phase/post_data"));
  PostDataJob pj;
  bool pj_ready = false;
  std::set<size_t> built;  // guarded by post_data.cc's lock while builders run
  int n_built = 0;
  auto prepare_post = [&]() -> Status {
    if (pj_ready) return Status::Ok();
    PGB_ASSIGN_OR_RETURN(std::string post_sql, meta.Get("copy/post_data_sql"));
    PGB_ASSIGN_OR_RETURN(auto recorded, meta.List("copy/post/"));
    for (const auto& [k, v] : recorded) {
      built.insert(static_cast<size_t>(std::strtoull(k.c_str() + 10, nullptr, 10)));
    }
    pj.options = &o;
    pj.post_data = SplitPostData(post_sql);
    for (const auto& t : current.selected)
      pj.table_bytes[QualifiedName{t.schema, t.name}] = t.bytes;
    pj.resuming = post_phase == kStarted;
    pj.progress = progress;
    pj.is_done = [&](size_t i) { return built.count(i) > 0; };
    pj.mark_done = [&](size_t i) -> Status {
      PGB_RETURN_IF_ERROR(meta.Put(fmt::format("copy/post/{}", i), kDone));
      built.insert(i);
      AtTestPoint(o, fmt::format("post-data:{}", ++n_built));
      return Status::Ok();
    };
    pj_ready = true;
    return Status::Ok();
  };
  std::unique_ptr<EarlyIndexBuilder> early;

  if (snap) {
    const SnapshotRef ref = snap->snapshot();
    PGB_ASSIGN_OR_RETURN(PgConn snap_conn, OpenSnapshotSession(o, ref));
    PGB_ASSIGN_OR_RETURN(TableList tables, ListTables(snap_conn, filter));

    progress->BeginPhase("schema", 1);
    if (pre_phase != kDone) {
      PGB_ASSIGN_OR_RETURN(std::string pre, DumpSection(o, ref.name, "pre-data", tables.excluded));
      PGB_ASSIGN_OR_RETURN(std::string post,
                           DumpSection(o, ref.name, "post-data", tables.excluded));
      PGB_RETURN_IF_ERROR(meta.Put("copy/post_data_sql", post));
      // The restore is one transaction: if an earlier run got as far as committing it, every
      // table is there and it must not run twice.
      bool restored = false;
      if (pre_phase == kStarted) {
        PGB_ASSIGN_OR_RETURN(restored, TargetHasAll(dst, tables.selected));
      }
      if (!restored) {
        PGB_RETURN_IF_ERROR(meta.Put("copy/phase/pre_data", kStarted));
        PGB_RETURN_IF_ERROR(RestoreInOneTransaction(o, pre));
      }
      PGB_RETURN_IF_ERROR(meta.Put("copy/phase/pre_data", kDone));
      progress->ItemDone();
      AtTestPoint(o, "after-schema");
    }
    if (o.after_schema) PGB_RETURN_IF_ERROR(o.after_schema());

    // Tables not done yet: a table we never started must be empty on the target; one we
    // started is emptied (its rows are from an older snapshot or incomplete).
    DataCopyJob job;
    job.options = &o;
    job.snapshot = ref;
    for (const auto& t : tables.selected) {
      std::string st = state_of(t);
      if (st == kDone) continue;
      if (st.empty()) {
        PGB_RETURN_IF_ERROR(CheckTargetEmpty(dst, t));
      } else {
        PGB_RETURN_IF_ERROR(
            dst.Run(fmt::format("TRUNCATE ONLY {}", QuoteQualified(t.schema, t.name))));
      }
      job.tables.push_back(t);
    }
    for (const auto& t : job.tables) {
      PGB_RETURN_IF_ERROR(meta.Put("copy/state/" + t.Key(), kCopying));
    }
    LogCopyFormats(o, job.tables);
    PGB_ASSIGN_OR_RETURN(std::vector<Chunk> chunks,
                         PlanChunks(snap_conn, job.tables, ChunkBytesFor(o, job.tables)));
    for (const auto& t : job.tables) job.progress.push_back(progress->AddTable(t.Key(), t.bytes));
    progress->SetChunks(chunks.size());
    progress->BeginPhase("data", job.tables.size());
    if (post_phase != kDone) {
      PGB_RETURN_IF_ERROR(prepare_post());
      PGB_RETURN_IF_ERROR(meta.Put("copy/phase/post_data", kStarted));
      early = std::make_unique<EarlyIndexBuilder>(&pj);
    }
    std::string lsn = ref.lsn.ToString();
    job.on_table_done = [&](size_t i, PgConn& target) -> Status {
      // The chunks committed asynchronously; a synchronous commit flushes the WAL past all of
      // them before the table is recorded as done.
      PGB_RETURN_IF_ERROR(
          target.Run("BEGIN; SET LOCAL synchronous_commit = on; SELECT txid_current(); COMMIT"));
      const std::string key = job.tables[i].Key();
      PGB_RETURN_IF_ERROR(meta.Put("sync_lsn/" + key, lsn));
      PGB_RETURN_IF_ERROR(
          meta.Put("copy/rows/" + key, std::to_string(job.progress[i]->rows.load())));
      PGB_RETURN_IF_ERROR(meta.Put("copy/state/" + key, kDone));
      progress->ItemDone();
      AtTestPoint(o, "table:" + key);
      if (early) early->SubmitTable(job.tables[i].schema, job.tables[i].name);
      return Status::Ok();
    };
    job.on_chunk_done = [&](int n) {
      AtTestPoint(o, fmt::format("data:{}", n));
      AtTestPoint(o, fmt::format("data-left:{}", static_cast<int>(chunks.size()) - n));
    };
    PGB_RETURN_IF_ERROR(snap->CheckAlive());
    Status copied;
    {
      SourceProtection protection(o, progress);
      protection.Attach(&job);
      copied = CopyData(job, chunks);
    }
    PGB_RETURN_IF_ERROR(copied);
    if (early) PGB_RETURN_IF_ERROR(early->Finish());
    AtTestPoint(o, "after-data");
    if (lo_phase != kDone) PGB_RETURN_IF_ERROR(CopyLargeObjects(o, ref, meta, progress));
  }
  // The snapshot is no longer needed: end the exporting session (a temporary slot is dropped).
  snap.reset();

  PGB_ASSIGN_OR_RETURN(std::string seq_phase, meta.Get("copy/phase/sequences"));
  if (seq_phase != kDone) {
    // Sequences are not transactional (inside the snapshot a read sees the current value too):
    // read now, after every table's data, a value is at least any key the copied rows hold.
    // Cutover sets them again once writers are fenced.
    PGB_ASSIGN_OR_RETURN(std::vector<catalog::Sequence> seqs, catalog::ListSequences(src));
    // An extension's sequences are its own business (pg_dump leaves them out too).
    std::erase_if(seqs, [](const catalog::Sequence& s) { return s.extension_member; });
    progress->BeginPhase("sequences", seqs.size());
    PGB_RETURN_IF_ERROR(CopySequences(src, dst, seqs));
    for (size_t i = 0; i < seqs.size(); ++i) progress->ItemDone();
    PGB_RETURN_IF_ERROR(meta.Put("copy/phase/sequences", kDone));
  }

  if (post_phase != kDone) {
    PGB_RETURN_IF_ERROR(prepare_post());
    size_t remaining = 0;
    for (size_t i = 0; i < pj.post_data.entries.size(); ++i) remaining += pj.is_done(i) ? 0 : 1;
    PGB_RETURN_IF_ERROR(meta.Put("copy/phase/post_data", kStarted));
    progress->BeginPhase("post-data", remaining);
    PGB_RETURN_IF_ERROR(RunPostData(pj));
    PGB_RETURN_IF_ERROR(meta.Put("copy/phase/post_data", kDone));
  }

  PGB_ASSIGN_OR_RETURN(std::string mv_phase, meta.Get("copy/phase/matviews"));
  if (mv_phase != kDone) {
    // pg_dump puts materialized view contents in the data section: refresh them here, after the
    // indexes. One may read another, so a refresh that fails on an unpopulated one is retried
    // after the others.
    PGB_ASSIGN_OR_RETURN(auto mvs, catalog::ListPopulatedMatviews(src));
    progress->BeginPhase("matviews", mvs.size());
    std::vector<QualifiedName> pending = mvs;
    Status last;
    for (size_t pass = 0; pass <= mvs.size() && !pending.empty(); ++pass) {
      std::vector<QualifiedName> failed;
      for (const QualifiedName& mv : pending) {
        std::string q = QuoteQualified(mv);
        PGB_ASSIGN_OR_RETURN(PgResult exists,
                             dst.ExecParams("SELECT to_regclass($1) IS NOT NULL", {q}));
        if (exists.GetBool(0, 0)) last = dst.Run("REFRESH MATERIALIZED VIEW " + q);
        if (exists.GetBool(0, 0) && !last.ok()) {
          failed.push_back(mv);
        } else {
          progress->ItemDone();
        }
      }
      if (failed.size() == pending.size()) break;
      pending = std::move(failed);
    }
    if (!pending.empty()) {
      return last.WithContext(fmt::format("refreshing materialized view \"{}.{}\" on target",
                                          pending.front().schema, pending.front().name));
    }
    PGB_RETURN_IF_ERROR(meta.Put("copy/phase/matviews", kDone));
  }

  PGB_ASSIGN_OR_RETURN(std::string analyze_phase, meta.Get("copy/phase/analyze"));
  if (analyze_phase != kDone) {
    std::vector<std::pair<std::string, std::string>> names;
    std::set<std::string> seen;
    for (const auto& t : current.selected) {
      for (auto [s, n] : {std::pair{t.schema, t.name}, std::pair{t.root_schema, t.root_name}}) {
        // Tables analyzed right after their indexes (during the data phase) are not again.
        if (early && early->Analyzed(s + "." + n)) continue;
        if (seen.insert(s + "." + n).second) names.emplace_back(s, n);
      }
    }
    progress->BeginPhase("analyze", names.size());
    PGB_RETURN_IF_ERROR(AnalyzeTables(o, names, progress));
    PGB_RETURN_IF_ERROR(meta.Put("copy/phase/analyze", kDone));
  }
  return Status::Ok();
}

}  // namespace pgbaton::tools::copy

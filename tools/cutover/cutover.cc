#include "tools/cutover/cutover.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <thread>

#include "applier/applier.h"
#include "catalog/source_catalog.h"
#include "common/conninfo.h"
#include "common/log.h"
#include "common/pg.h"
#include "common/sql_ident.h"
#include "queue/work_queue.h"
#include "tools/common/identity.h"
#include "tools/common/signals.h"
#include "tools/cutover/bypass.h"
#include "tools/cutover/fleet.h"
#include "tools/cutover/globals_check.h"
#include "tools/cutover/reverse.h"
#include "tools/cutover/strategies.h"
#include "tools/initial_copy/large_objects.h"

namespace pgbaton::tools::cutover {

namespace {

using Clock = std::chrono::steady_clock;

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

std::string NewCutoverId() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::random_device rd;
  return fmt::format("{:04}{:02}{:02}T{:02}{:02}{:02}Z-{:06x}", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, rd() & 0xffffff);
}

Result<PgConn> Connect(const std::string& conninfo, const std::string& label) {
  ConnectOptions co;
  co.label = label;
  co.application_name = "pgbaton cutover";
  return PgConn::Connect(conninfo, co);
}

// The applier is running when its slot on the source is active (the decoder streams) and the
// target has apply sessions ("pgbaton applier ..." in pg_stat_activity, the application_name
// every apply connection sets). Errors: kApplierNotRunning naming which half is missing.
Status CheckApplierRunning(PgConn& source, PgConn& target, const std::string& name) {
  PGB_ASSIGN_OR_RETURN(
      PgResult slot,
      source.ExecParams("select active from pg_catalog.pg_replication_slots where slot_name = $1",
                        {name}));
  if (slot.rows() == 0) {
    return Status::Error(ErrorCode::kApplierNotRunning,
                         fmt::format("replication slot \"{}\" does not exist on source", name),
                         "start the migration (pgbaton copy, then pgbaton run) first, or pass "
                         "the migration's --name");
  }
  if (!slot.GetBool(0, 0)) {
    return Status::Error(ErrorCode::kApplierNotRunning,
                         fmt::format("replication slot \"{}\" on source is not active: nothing "
                                     "is streaming changes",
                                     name),
                         "start pgbaton run (or stream) and wait until status shows low lag");
  }
  PGB_ASSIGN_OR_RETURN(std::string sessions,
                       target.QueryValue("select count(*) from pg_catalog.pg_stat_activity where "
                                         "datname = current_database() and application_name like "
                                         "'pgbaton applier%'"));
  if (sessions == "0") {
    return Status::Error(
        ErrorCode::kApplierNotRunning,
        fmt::format("no pgbaton applier session on target ({})", target.description()),
        "start pgbaton run (or apply) and wait until status shows low lag");
  }
  return Status::Ok();
}

// The applier advances its origin only with a transaction that changes a row (a transaction
// holding only a logical message is not committed on the target until a later one is), so the
// sentinel travels in a transaction that also writes a row of pgbaton.cutover_sentinel, a table
// pgbaton owns on both clusters and adds to the migration's publication.
constexpr const char* kSentinelTable =
    "create schema if not exists pgbaton; create table if not exists pgbaton.cutover_sentinel ("
    "id text primary key, at timestamptz not null default now())";

Status EnsureSentinelTable(PgConn& source, PgConn& target, const std::string& publication) {
  // The target first: the applier must find the table before the first row arrives.
  PGB_RETURN_IF_ERROR(
      target.Run(kSentinelTable).WithContext("creating pgbaton.cutover_sentinel on target"));
  PGB_RETURN_IF_ERROR(
      source.Run(kSentinelTable).WithContext("creating pgbaton.cutover_sentinel on source"));
  PGB_ASSIGN_OR_RETURN(
      PgResult pub,
      source.ExecParams(
          "select puballtables, exists (select 1 from pg_catalog.pg_publication_tables "
          "t where t.pubname = p.pubname and t.schemaname = 'pgbaton' and "
          "t.tablename = 'cutover_sentinel') from pg_catalog.pg_publication p "
          "where p.pubname = $1",
          {publication}));
  if (pub.rows() == 0) {
    return Status::Error(ErrorCode::kPublicationMissing,
                         fmt::format("publication \"{}\" does not exist on source", publication),
                         "pass the migration's --name");
  }
  if (!pub.GetBool(0, 0) && !pub.GetBool(0, 1)) {
    PGB_RETURN_IF_ERROR(source
                            .Run(fmt::format("alter publication {} add table "
                                             "pgbaton.cutover_sentinel",
                                             QuoteIdent(publication)))
                            .WithContext("adding pgbaton.cutover_sentinel to the publication"));
  }
  return Status::Ok();
}

// Writes the message and a sentinel row in one source transaction; returns the message's LSN.
// The transaction's commit LSN is past it, and every transaction committed before it has a
// commit LSN before it.
Result<Lsn> EmitMessage(PgConn& source, const std::string& id, const std::string& content) {
  PGB_RETURN_IF_ERROR(source.Run("begin"));
  auto lsn = source.QueryValue(
      "select pg_catalog.pg_logical_emit_message(true, 'pgbaton', $1)::text", {content});
  Status s = lsn.status();
  if (s.ok()) {
    s = source
            .ExecParams(
                "insert into pgbaton.cutover_sentinel (id) values ($1) on conflict (id) "
                "do update set at = now()",
                {id})
            .status();
  }
  if (s.ok()) s = source.Run("commit");
  if (!s.ok()) {
    (void)source.Run("rollback");
    return s;
  }
  return Lsn::Parse(*lsn);
}

// Waits until the target's position for `name` reaches `bar`. Reconnects to the target when the
// connection breaks; every second checks that the applier is still there. Errors: kTimeout,
// kApplierNotRunning, kInterrupted.
Status WaitApplied(std::optional<PgConn>& target, const std::string& target_conninfo,
                   const std::string& name, Lsn bar, std::chrono::milliseconds timeout,
                   ErrorCode timeout_code, const std::string& what) {
  auto start = Clock::now();
  auto deadline = start + timeout;
  auto last_alive_check = start;
  Status last = Status::Ok();
  Lsn pos;
  while (true) {
    if (StopRequested().load()) {
      return Status::Error(ErrorCode::kInterrupted, fmt::format("{}: interrupted", what));
    }
    if (!target || !target->connected()) {
      auto c = Connect(target_conninfo, "target");
      if (c.ok()) {
        target.emplace(std::move(*c));
      } else {
        last = c.status();
        target.reset();
      }
    }
    if (target) {
      auto p = applier::ReadTargetPosition(*target, name, /*flushed=*/false);
      if (p.ok()) {
        pos = *p;
        if (pos >= bar) return Status::Ok();
      } else {
        last = p.status();
      }
      if (Clock::now() - last_alive_check > std::chrono::seconds(1) && target->connected()) {
        last_alive_check = Clock::now();
        auto n = target->QueryValue(
            "select count(*) from pg_catalog.pg_stat_activity where datname = "
            "current_database() and application_name like 'pgbaton applier%'");
        if (n.ok() && *n == "0") {
          return Status::Error(ErrorCode::kApplierNotRunning,
                               fmt::format("{}: the applier stopped (no pgbaton applier session "
                                           "on target); applied up to {}, waiting for {}",
                                           what, pos.ToString(), bar.ToString()),
                               "restart pgbaton run, then run the cutover again");
        }
      }
    }
    if (Clock::now() > deadline) {
      std::string cause = last.ok() ? "" : fmt::format(" (last error: {})", last.message());
      return Status::Error(
          timeout_code,
          fmt::format("{}: the target applied up to {}, not {} within {} ms{}", what,
                      pos.ToString(), bar.ToString(), timeout.count(), cause),
          timeout_code == ErrorCode::kLagTooHigh
              ? "wait until pgbaton status shows lower lag, or raise --max-lag"
              : "check the applier (pgbaton status) and the target; raise "
                "--timeout if it is just slow");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// Every source sequence with its value now. Errors: kPermission naming one the role may not read.
Result<std::vector<catalog::Sequence>> ReadSequences(PgConn& source) {
  PGB_ASSIGN_OR_RETURN(std::vector<catalog::Sequence> seqs, catalog::ListSequences(source));
  PGB_RETURN_IF_ERROR(catalog::ReadValues(source, &seqs));
  return seqs;
}

Status CheckSequencesOnTarget(PgConn& target, const std::vector<catalog::Sequence>& seqs) {
  PGB_ASSIGN_OR_RETURN(std::vector<QualifiedName> missing, catalog::MissingOn(target, seqs));
  if (missing.empty()) return Status::Ok();
  return Status::Error(
      ErrorCode::kNotFound,
      fmt::format("sequence {} does not exist on target", QuoteQualified(missing.front())),
      "copy the schema to the target (pgbaton copy) before the cutover");
}

// The migration's existing queue (RocksDB or Kafka, as `o` names it).
queue::QueueOptions ExistingQueue(const CutoverOptions& o) {
  queue::QueueOptions qo;
  qo.dir = o.queue_dir;
  qo.kafka_brokers = o.kafka_brokers;
  qo.kafka_topic = o.kafka_topic;
  qo.migration_name = o.name;
  qo.create_if_missing = false;
  return qo;
}

void StoreReport(const CutoverOptions& o, CutoverReport* report) {
  std::string json = report->ToJson().dump();
  queue::QueueOptions qo = ExistingQueue(o);
  // The Kafka queue has no writer lock: its metadata topic takes the timeline beside the stream.
  auto q = queue::WorkQueue::Open(qo);
  if (q.ok()) {
    Status s = (*q)->PutMeta("cutover/last", json);
    if (s.ok()) {
      report->stored_at =
          o.kafka_brokers.empty()
              ? fmt::format("queue \"{}\" metadata cutover/last", o.queue_dir)
              : fmt::format("kafka topic \"{}.meta\" key m/cutover/last", o.kafka_topic);
      return;
    }
    LogWarning("cannot store the cutover timeline in the queue", {{"error", s.message()}});
  } else if (!o.kafka_brokers.empty()) {
    LogWarning("cannot store the cutover timeline in the kafka queue",
               {{"error", q.status().message()}});
    return;
  }
  // The queue is held open by `pgbaton run` (it stays up after the cutover): keep the timeline
  // beside the queue's files instead.
  std::string path = o.queue_dir + "/cutover-last.json";
  std::ofstream out(path, std::ios::trunc);
  out << json << "\n";
  out.close();
  if (out) {
    report->stored_at = path;
  } else {
    LogWarning("cannot store the cutover timeline", {{"path", path}});
  }
}

class Runner {
 public:
  Runner(const CutoverOptions& o, CutoverReport* r) : o_(o), r_(r) {}

  // Fencing the wrong cluster, or waiting on positions of another migration, must not start:
  // both sides and the queue (read-only; `run` holds it) are checked against its records.
  Status CheckIdentity() {
    MigrationCheck check;
    check.name = o_.name;
    check.verb = "cutover";
    check.source_conninfo = o_.source_conninfo;
    check.target_conninfo = o_.target_conninfo;
    PGB_ASSIGN_OR_RETURN(LiveSides live, CheckSides(check));
    std::unique_ptr<queue::WorkQueue> q;
    if (!o_.queue_dir.empty() || !o_.kafka_brokers.empty()) {
      queue::QueueOptions qo = ExistingQueue(o_);
      qo.read_only = true;
      check = [&] {
        MigrationCheck c = QueueCheck(qo, "cutover");
        c.source_conninfo = o_.source_conninfo;
        c.target_conninfo = o_.target_conninfo;
        return c;
      }();
      auto opened = queue::WorkQueue::Open(qo);
      if (opened.ok()) q = std::move(*opened);  // a queue that cannot be read is checked later
    }
    if (q) {
      // A copy made with --no-owner left the target's large objects to the target's user: the
      // re-sync compares and writes them the same way.
      auto no_owner = q->GetMeta("copy/no_owner");
      lo_no_owner_ = no_owner.ok() && no_owner->has_value() && **no_owner == "true";
    }
    return CheckQueue(check, live, q.get(), /*queue_read_only=*/true);
  }

  Status Run() {
    if (!o_.pause_at.empty() && o_.pause_at != "before-fence" && o_.pause_at != "after-fence" &&
        o_.pause_at != "before-flip") {
      return Status::Error(ErrorCode::kUsage, fmt::format("unknown --pause-at \"{}\"", o_.pause_at),
                           "a test hook: before-fence, after-fence or before-flip");
    }
    StrategyContext ctx;
    ctx.source_conninfo = o_.source_conninfo;
    ctx.target_conninfo = o_.target_conninfo;
    ctx.cutover_id = r_->id;
    ctx.timeout = o_.timeout;
    ctx.flip_timeout = o_.flip_timeout;
    PGB_RETURN_IF_ERROR(MakeStrategies(ctx));
    if (o_.reverse && fence_->Kind() == "readonly") {
      return Status::Error(ErrorCode::kUsage, "--reverse cannot be used with --fence readonly",
                           "the reverse stream writes to the old cluster, which the read-only "
                           "fence leaves read-only: use the pgbouncer or roles fence");
    }
    r_->fence = fence_->Describe();
    r_->flip = flip_->Describe();

    // --- check ---
    auto t = Clock::now();
    open_phase_ = "check";  // a check that fails is recorded by RecordUnfinishedPhase
    PGB_RETURN_IF_ERROR(CheckIdentity());
    PGB_ASSIGN_OR_RETURN(PgConn source, Connect(o_.source_conninfo, "source"));
    source_.emplace(std::move(source));
    PGB_ASSIGN_OR_RETURN(PgConn target, Connect(o_.target_conninfo, "target"));
    target_.emplace(std::move(target));
    PGB_ASSIGN_OR_RETURN(database_, source_->QueryValue("select current_database()"));
    PGB_RETURN_IF_ERROR(CheckApplierRunning(*source_, *target_, o_.name));
    PGB_RETURN_IF_ERROR(EnsureSentinelTable(*source_, *target_, o_.name));
    // Lag in time: a probe message through decoder, queue and applier.
    auto probe_start = Clock::now();
    PGB_ASSIGN_OR_RETURN(Lsn probe,
                         EmitMessage(*source_, r_->id + "/probe",
                                     nlohmann::json{{"cutover", r_->id}, {"probe", true}}.dump()));
    PGB_RETURN_IF_ERROR(WaitApplied(target_, o_.target_conninfo, o_.name, probe, o_.max_lag,
                                    ErrorCode::kLagTooHigh, "lag probe"));
    r_->lag_ms = MsSince(probe_start);
    PGB_ASSIGN_OR_RETURN(std::string current,
                         source_->QueryValue("select pg_catalog.pg_current_wal_lsn()::text"));
    PGB_ASSIGN_OR_RETURN(Lsn source_lsn, Lsn::Parse(current));
    PGB_ASSIGN_OR_RETURN(Lsn applied, applier::ReadTargetPosition(*target_, o_.name, false));
    r_->lag_bytes = static_cast<int64_t>(source_lsn.BytesSince(applied));
    if (static_cast<uint64_t>(r_->lag_bytes) > o_.max_lag_bytes) {
      return Status::Error(
          ErrorCode::kLagTooHigh,
          fmt::format("the applier is {} bytes behind the source (applied {}, "
                      "source at {}), more than --max-lag-bytes {}",
                      r_->lag_bytes, applied.ToString(), source_lsn.ToString(), o_.max_lag_bytes),
          "wait until pgbaton status shows lower lag, or raise --max-lag-bytes");
    }
    PGB_RETURN_IF_ERROR(fence_->Check(*source_));
    PGB_RETURN_IF_ERROR(flip_->Check(*source_, *target_));
    PGB_ASSIGN_OR_RETURN(auto seqs, ReadSequences(*source_));
    PGB_RETURN_IF_ERROR(CheckSequencesOnTarget(*target_, seqs));
    PGB_ASSIGN_OR_RETURN(globals_, CheckGlobals(*source_, *target_, o_.source_conninfo,
                                                o_.target_conninfo, o_.sync_globals));
    if (o_.reverse) PGB_RETURN_IF_ERROR(CheckReverse(ReverseOptionsFrom()));
    PGB_ASSIGN_OR_RETURN(std::string los,
                         source_->QueryValue("SELECT count(*) FROM pg_largeobject_metadata"));
    Add("check", t,
        fmt::format("applier running, lag {} ms / {} bytes, {} sequences{}", r_->lag_ms,
                    r_->lag_bytes, seqs.size(), globals_.note));

    if (o_.dry_run) {
      r_->plan = {
          "fence: " + fence_->Describe(),
          fmt::format("bypass-check: no client session of \"{}\" on source may write around "
                      "the fence (in a transaction, or active after it); {}",
                      database_,
                      o_.terminate_bypass ? "any are terminated" : "any abort the cutover"),
          "drain: write a sentinel with pg_logical_emit_message and wait until the target's "
          "origin passes it",
          fmt::format("sequences: copy {} sequence values to the target", seqs.size()),
          fmt::format("globals: {}", globals_.to_apply > 0
                                         ? fmt::format("apply {} difference(s) (--sync-globals)",
                                                       globals_.to_apply)
                                         : "nothing to apply"),
          fmt::format("large-objects: re-sync {} large objects (oid, owner, ACL, comment, md5 "
                      "of contents on both sides; create, replace, unlink what differs)",
                      los)};
      if (o_.reverse) {
        r_->plan.push_back("reverse: start " + DescribeReverse(ReverseOptionsFrom()));
      }
      r_->plan.push_back("bypass-recheck: the same over the drain, before the flip");
      r_->plan.push_back("flip: " + flip_->Describe());
      r_->plan.push_back("on any failure before the flip is done: undo the fence");
      return Status::Ok();
    }

    InstallSignalHandlers();
    // --- large objects, before the fence --- Logical decoding does not carry them: what
    // changed since the copy is brought over now, while writers still run, so that the step
    // inside the fence only has what changed in the last moments to write (its md5 comparison
    // still reads every object). Not part of the write pause.
    if (los != "0") {
      t = Clock::now();
      open_phase_ = "lo-presync";
      PGB_ASSIGN_OR_RETURN(copy::LargeObjectSyncReport pre, SyncLargeObjects());
      Add("lo-presync", t, pre.Summary());
    }

    MaybePause("before-fence");
    // --- fence --- (from here on every error undoes the fence)
    fence_start_ = Clock::now();
    t = fence_start_;
    Status s = fence_->Apply(*source_);
    Add("fence", t, fence_->Describe());
    if (!s.ok()) {
      r_->fence_undone = fence_->Undone();  // Apply undoes itself on error
      // Members that did pause held their clients until the undo.
      if (fence_->Kind() == "pgbouncer") r_->write_pause_ms = MsSince(fence_start_);
      return s;
    }
    fenced_ = true;

    // --- bypass-check --- The fence only holds for clients that go through it: a session on the
    // source that is in a transaction, or runs statements while every pooler is paused, can
    // still write, and a write after the sentinel would be lost at the flip.
    t = Clock::now();
    auto since = SourceClock(*source_);
    if (!since.ok()) return Fail("bypass-check", t, since.status());
    fenced_at_ = *since;
    s = CheckBypass("after the fence", /*watch=*/true);
    if (!s.ok()) return Fail("bypass-check", t, s);
    Add("bypass-check", t, BypassDetail());
    MaybePause("after-fence");
    if (StopRequested().load()) {
      return Status::Error(ErrorCode::kInterrupted, "cutover interrupted after fencing");
    }

    PGB_RETURN_IF_ERROR(DrainAndSync());

    // --- bypass-recheck --- The same question over the whole drain: a client that wrote
    // straight to the source after the first look. With --terminate-bypass it is ended and the
    // drain runs again, so that its last writes reach the new cluster.
    for (int round = 0;; ++round) {
      t = Clock::now();
      auto found = FindBypassing(*source_, {database_}, fenced_at_);
      if (!found.ok()) return Fail("bypass-recheck", t, found.status());
      if (found->empty()) {
        Add("bypass-recheck", t, "no client session wrote around the fence during the drain");
        break;
      }
      if (!o_.terminate_bypass || round > 0) {
        Record(*found);
        return Fail("bypass-recheck", t, BypassError(*found, "during the drain"));
      }
      s = TerminateBypassing(*source_, &*found, o_.timeout);
      Record(*found);
      if (!s.ok()) return Fail("bypass-recheck", t, s);
      Add("bypass-recheck", t,
          fmt::format("terminated {} session(s) that wrote around the fence; draining again",
                      found->size()));
      PGB_RETURN_IF_ERROR(DrainAndSync());
    }

    if (o_.reverse) {
      t = Clock::now();
      auto started = StartReverse(ReverseOptionsFrom());
      if (!started.ok()) return Fail("reverse", t, started.status());
      reverse_ = *started;
      r_->reverse_command = started->command;
      r_->reverse_pid = started->pid;
      Add("reverse", t, fmt::format("reverse stream started (pid {})", started->pid));
    }

    MaybePause("before-flip");
    // --- flip ---
    t = Clock::now();
    s = flip_->Run(*target_);
    if (!s.ok()) return Fail("flip", t, s);
    Add("flip", t, flip_->Describe());
    reverse_.reset();  // it now carries the writers' changes back: it stays
    fenced_ = false;   // the writers are on the new cluster: nothing to undo
    r_->write_pause_ms = MsSince(fence_start_);
    // A fleet member that points at the new cluster but did not RESUME: its clients wait (on the
    // new cluster, so nothing is split), and the operator must RESUME it.
    for (const auto& m : fence_->Members()) {
      if (m.state == "resumed" || fence_->Kind() != "pgbouncer" || flip_->Kind() != "pgbouncer") {
        continue;
      }
      return Status::Error(
          ErrorCode::kFlipFailed,
          fmt::format("writers are on the new cluster, but {} is not resumed: {}", m.name, m.error),
          fmt::format("RESUME {} on that pgbouncer's admin console: its clients wait until then",
                      m.database));
    }
    return Status::Ok();
  }

  // Undoes the fence after a failure (reconnecting to the source if needed).
  void UndoFence(Status* error) {
    if (!fenced_) return;
    auto t = Clock::now();
    Status s = Status::Ok();
    if (!source_ || !source_->connected()) {
      auto c = Connect(o_.source_conninfo, "source");
      if (c.ok())
        source_.emplace(std::move(*c));
      else
        s = c.status();
    }
    if (s.ok()) s = fence_->Undo(*source_);
    Add("undo", t,
        s.ok() ? "fence undone: writers are back on the old cluster"
               : "undoing the fence failed: " + s.message());
    r_->write_pause_ms = MsSince(fence_start_);
    if (s.ok()) {
      r_->fence_undone = true;
      fenced_ = false;
      return;
    }
    *error = Status::Error(
        error->code(),
        fmt::format("{}; and undoing the fence failed: {}", error->message(), s.message()),
        "undo the fence by hand: " + UndoHint());
  }

  // Each pooler's state into the report (after the run and any undo).
  void RecordMembers() {
    if (fence_) r_->poolers = fence_->Members();
  }

  // After a failure inside a phase that records no failure itself (the checks): "failed: ...".
  void RecordUnfinishedPhase(const Status& error, Clock::time_point start) {
    if (!open_phase_.empty()) (void)Fail(open_phase_, start, error);
  }

  // After a failure that came after the reverse stream was started (the flip failed): writers
  // stay on the old cluster, so the reverse stream has nothing to carry and its slot would only
  // hold WAL on the new cluster and make the next attempt's check fail.
  void StopReverseAfterFailure() {
    if (!reverse_) return;
    auto t = Clock::now();
    Status s = StopReverse(ReverseOptionsFrom(), *reverse_, o_.timeout);
    if (s.ok()) {
      r_->reverse_stopped = true;
      Add("undo", t,
          fmt::format("reverse stream stopped (pid {}); its slot \"{}\" dropped on the new "
                      "cluster",
                      reverse_->pid, ReverseOptionsFrom().name));
    } else {
      LogWarning("could not stop the reverse stream", {{"error", s.message()}, {"hint", s.hint()}});
      Add("undo", t,
          fmt::format("stopping the reverse stream failed: {} (hint: {})", s.message(), s.hint()));
    }
    reverse_.reset();
  }

 private:
  // Builds fence_ and flip_ from the options: one roles or readonly fence, or a PgBouncer fleet
  // (every --fence pgbouncer: plus [[cutover.pgbouncer]]).
  Status MakeStrategies(const StrategyContext& ctx) {
    std::vector<std::string> admins, others;
    for (const auto& f : o_.fence) {
      if (f.rfind("pgbouncer:", 0) == 0) {
        admins.push_back(f.substr(10));
      } else {
        others.push_back(f);
      }
    }
    if (o_.fence.empty() && o_.pgbouncers.empty()) {
      return Status::Error(ErrorCode::kUsage, "cutover needs --fence",
                           "--fence pgbouncer:ADMIN_CONNINFO (repeat it for a fleet), "
                           "roles:R1,R2 or readonly; or [[cutover.pgbouncer]] in the config file");
    }
    if (!others.empty() && (others.size() > 1 || !admins.empty() || !o_.pgbouncers.empty())) {
      return Status::Error(ErrorCode::kUsage, "only --fence pgbouncer: may be given more than once",
                           "fence with PgBouncer (any number of them), or with one roles or "
                           "readonly fence");
    }
    std::string flip = o_.flip;
    if (others.empty()) {
      std::string bouncer_db = o_.pgbouncer_db;
      if (bouncer_db.empty()) {
        PGB_ASSIGN_OR_RETURN(auto parts, ConninfoParts(o_.source_conninfo));
        bouncer_db = parts.count("dbname") ? parts["dbname"] : "";
        if (bouncer_db.empty()) {
          return Status::Error(ErrorCode::kUsage, "cannot tell which PgBouncer database to pause",
                               "name the database in --source, or pass --pgbouncer-db");
        }
      }
      PGB_ASSIGN_OR_RETURN(auto members, AssembleMembers(admins, o_.pgbouncer_ini,
                                                         o_.pgbouncer_flip_cmd, o_.pgbouncers));
      PGB_ASSIGN_OR_RETURN(fence_, MakeFleet(members, bouncer_db, ctx));
      if (flip.empty()) flip = "pgbouncer";
    } else if (others[0] == "roles") {
      // The site's credential rotation as the fence: the concrete roles held NOLOGIN on the
      // target (globals --hold-logins) are the writers' roles; group roles stay as they are.
      PGB_ASSIGN_OR_RETURN(std::vector<std::string> held,
                           HeldLogins(o_.target_conninfo, "--fence roles"));
      std::string spec = "roles:";
      for (size_t i = 0; i < held.size(); ++i) spec += (i > 0 ? "," : "") + held[i];
      PGB_ASSIGN_OR_RETURN(fence_, MakeFence(spec, ctx));
    } else {
      PGB_ASSIGN_OR_RETURN(fence_, MakeFence(others[0], ctx));
    }
    if (flip.empty()) {
      return Status::Error(ErrorCode::kUsage, "cutover needs --flip",
                           "--flip pgbouncer, roles[:R1,R2] or command:CMD");
    }
    std::vector<std::string> flip_roles;
    if (flip == "roles" && fence_->Kind() != "roles") {
      PGB_ASSIGN_OR_RETURN(flip_roles, HeldLogins(o_.target_conninfo, "--flip roles"));
    }
    PGB_ASSIGN_OR_RETURN(flip_, MakeFlip(flip, ctx, fence_.get(), flip_roles));
    return Status::Ok();
  }

  // Looks for sessions that bypass the fence; with `watch`, twice, `bypass_window` apart (a
  // client that writes now and then is idle between its writes). Terminates them with
  // --terminate-bypass, else fails with kFenceBypassed.
  Status CheckBypass(const std::string& when, bool watch) {
    PGB_ASSIGN_OR_RETURN(auto found, FindBypassing(*source_, {database_}, fenced_at_));
    if (found.empty() && watch) {
      std::this_thread::sleep_for(o_.bypass_window);
      PGB_ASSIGN_OR_RETURN(found, FindBypassing(*source_, {database_}, fenced_at_));
    }
    if (found.empty()) return Status::Ok();
    if (!o_.terminate_bypass) {
      Record(found);
      return BypassError(found, when);
    }
    Status s = TerminateBypassing(*source_, &found, o_.timeout);
    Record(found);
    return s;
  }
  void Record(const std::vector<BypassSession>& found) {
    r_->bypassing.insert(r_->bypassing.end(), found.begin(), found.end());
  }
  std::string BypassDetail() const {
    if (r_->bypassing.empty()) {
      return fmt::format("no client session of \"{}\" on source can write around the fence",
                         database_);
    }
    std::string list;
    for (const auto& b : r_->bypassing) list += (list.empty() ? "" : "; ") + DescribeSession(b);
    return fmt::format("terminated {} session(s) writing around the fence: {}",
                       r_->bypassing.size(), list);
  }

  // Writes the sentinel and waits until the target applied it, then copies sequences and
  // re-syncs large objects. Each failure is recorded in its phase.
  Status DrainAndSync() {
    // --- drain ---
    auto t = Clock::now();
    auto sentinel = EmitMessage(*source_, r_->id, nlohmann::json{{"cutover", r_->id}}.dump());
    if (!sentinel.ok()) {
      return Fail("drain", t, sentinel.status().WithContext("writing the sentinel on source"));
    }
    r_->sentinel_lsn = *sentinel;
    // The applier records a transaction's commit LSN in its origin, and transactions reach the
    // target as a prefix of the source's commit order. The sentinel's commit LSN is past the
    // message's LSN, and every transaction committed before it has a commit LSN before it: once
    // the origin reaches the message's LSN, all of them are on the target.
    Status s = WaitApplied(target_, o_.target_conninfo, o_.name, *sentinel, o_.timeout,
                           ErrorCode::kTimeout, "drain");
    if (!s.ok()) return Fail("drain", t, s);
    Add("drain", t, fmt::format("sentinel {} applied", sentinel->ToString()));

    // --- sequences ---
    t = Clock::now();
    auto fresh = ReadSequences(*source_);
    s = fresh.ok() ? catalog::WriteValues(*target_, *fresh) : fresh.status();
    if (!s.ok()) return Fail("sequences", t, s);
    r_->sequences = static_cast<int>(fresh->size());
    Add("sequences", t, fmt::format("{} sequence values copied", fresh->size()));

    // --- globals --- (--sync-globals) Roles and settings changed on the source since the last
    // sync, which the WAL does not carry, brought over while writers are fenced (once: a drain
    // run again after --terminate-bypass finds them level).
    if (globals_.to_apply > 0) {
      t = Clock::now();
      auto applied = ApplyGlobals(o_.source_conninfo, o_.target_conninfo);
      if (!applied.ok()) return Fail("globals", t, applied.status());
      Add("globals", t, fmt::format("{} difference(s) applied", *applied));
      globals_.to_apply = 0;
    }

    // --- large objects --- Writers are fenced and every change before the fence is applied:
    // the large objects created, changed or unlinked since the copy (or the step before the
    // fence) are brought over, so that nothing written before the fence is lost.
    t = Clock::now();
    auto lo = SyncLargeObjects();
    if (!lo.ok()) return Fail("large-objects", t, lo.status());
    r_->large_objects = static_cast<int64_t>(lo->source_objects);
    r_->large_objects_synced = static_cast<int64_t>(lo->differences());
    Add("large-objects", t, lo->Summary());
    return Status::Ok();
  }

  Result<copy::LargeObjectSyncReport> SyncLargeObjects() const {
    copy::LargeObjectSyncOptions lo;
    lo.source = o_.source_conninfo;
    lo.target = o_.target_conninfo;
    lo.jobs = o_.large_object_jobs;
    lo.no_owner = lo_no_owner_;
    lo.application_name = "pgbaton cutover";
    return copy::SyncLargeObjects(lo);
  }
  void Add(const std::string& name, Clock::time_point start, const std::string& detail) {
    r_->phases.push_back({name, MsSince(start), detail});
    if (name == open_phase_) open_phase_.clear();
  }
  // Records that phase `name` failed with `s` (the timeline shows where the cutover stopped).
  Status Fail(const std::string& name, Clock::time_point start, Status s) {
    Add(name, start, "failed: " + s.message());
    return s;
  }
  void MaybePause(const std::string& point) {
    if (o_.pause_at != point) return;
    std::fflush(stdout);
    std::fflush(stderr);
    raise(SIGSTOP);
  }
  std::string UndoHint() const {
    if (fence_->Kind() == "pgbouncer") {
      return "point every pgbouncer of the fleet at the old cluster (see each one's state in the "
             "report) and RESUME the database on each admin console";
    }
    if (fence_->Kind() == "roles") return "ALTER ROLE ... LOGIN for the fenced roles on the source";
    return "ALTER DATABASE ... RESET default_transaction_read_only on the source";
  }
  ReverseOptions ReverseOptionsFrom() const {
    ReverseOptions ro;
    ro.new_conninfo = o_.target_conninfo;
    ro.old_conninfo = o_.source_conninfo;
    ro.queue_dir = o_.reverse_queue_dir.empty() ? o_.queue_dir + ".reverse" : o_.reverse_queue_dir;
    ro.name = o_.name + "_reverse";
    ro.binary = o_.pgbaton_binary;
    return ro;
  }

  const CutoverOptions& o_;
  CutoverReport* r_;
  GlobalsCheck globals_;  // what the check found of the globals; the fence's part to apply
  std::unique_ptr<Fence> fence_;
  std::unique_ptr<Flip> flip_;
  std::optional<PgConn> source_, target_;
  std::optional<ReverseStarted> reverse_;  // started and not yet handed over by a flip
  std::string open_phase_;                 // the phase running when Run returns an error
  Clock::time_point fence_start_;
  std::string fenced_at_;  // the source's clock when the fence was complete
  std::string database_;   // the source database (the fenced one)
  bool fenced_ = false;
  bool lo_no_owner_ = false;  // the copy ran with --no-owner (queue meta copy/no_owner)
};

}  // namespace

Status RunCutover(const CutoverOptions& options, CutoverReport* report) {
  report->id = NewCutoverId();
  report->dry_run = options.dry_run;
  auto start = Clock::now();
  Runner runner(options, report);
  Status s = runner.Run();
  if (!s.ok()) {
    runner.RecordUnfinishedPhase(s, start);
    runner.UndoFence(&s);
    runner.StopReverseAfterFailure();
  }
  runner.RecordMembers();
  report->ok = s.ok();
  report->error = s;
  report->phases.push_back({"total", MsSince(start), ""});
  if (!options.dry_run && (!options.queue_dir.empty() || !options.kafka_brokers.empty())) {
    StoreReport(options, report);
  }
  return s;
}

}  // namespace pgbaton::tools::cutover

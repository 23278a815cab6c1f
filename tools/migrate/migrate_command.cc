#include "tools/migrate/migrate_command.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "applier/applier.h"
#include "common/conninfo.h"
#include "common/log.h"
#include "queue/memory_tail.h"
#include "queue/work_queue.h"
#include "tools/common/apply_flags.h"
#include "tools/common/cluster.h"
#include "tools/common/identity.h"
#include "tools/common/last_error.h"
#include "tools/common/metrics_sampler.h"
#include "tools/common/migration_flags.h"
#include "tools/common/positions.h"
#include "tools/common/resource_usage.h"
#include "tools/common/signals.h"
#include "tools/common/stream_thread.h"
#include "tools/globals_sync/sync.h"
#include "tools/initial_copy/copy_engine.h"
#include "tools/initial_copy/copy_flags.h"
#include "tools/initial_copy/ddl_capture.h"
#include "tools/initial_copy/progress.h"
#include "tools/migrate/catch_up.h"
#include "tools/migrate/plan.h"
#include "tools/preflight_checks/preflight.h"
#include "tools/verification/at_lsn.h"
#include "tools/verification/verify.h"

namespace pgbaton::tools {
namespace {

using Clock = std::chrono::steady_clock;

// One database's migration inside a migrate process: what it works on and how far it got. A
// single-database migrate has one, with an empty `database`.
struct Member {
  std::string database;  // cluster mode: the database, for lines and logs; "" otherwise
  std::string name;      // the migration's name for it: slot, publication, origin, queue
  MigrationStart start;
  copy::CopyOptions copy;
  applier::ApplierOptions apply;
  std::atomic<bool> streaming{false};  // the decoder runs (set by the copy's on_slot)
  // The backlog at the last catch-up line, and when: the pace between lines gives the ETA.
  std::optional<std::pair<Clock::time_point, double>> last_backlog;
  Status verify_status;  // --verify's outcome (set by the watch thread before it stops)

  // "" or `database "app": `, in front of the lines for people.
  std::string Prefix() const {
    return database.empty() ? "" : fmt::format("database \"{}\": ", database);
  }
};

// Cluster mode copies one database at a time (each with all of --jobs, so the cluster never has
// more copy sessions open than --jobs) while every database copied so far streams and applies.
// Database `index` copies once every database before it in the order has copied or found its
// copy finished (Done); a stop request ends a wait.
class CopyTurns {
 public:
  explicit CopyTurns(size_t databases) : done_(databases, false) {}

  Status Wait(size_t index, const std::string& database) {
    std::unique_lock<std::mutex> lock(mu_);
    while (!std::all_of(done_.begin(), done_.begin() + static_cast<std::ptrdiff_t>(index),
                        [](bool d) { return d; })) {
      if (StopRequested()) {
        return Status::Error(ErrorCode::kInterrupted,
                             fmt::format("stopped before the copy of database \"{}\"", database),
                             "run the same command again: each database resumes where it stopped");
      }
      cv_.wait_for(lock, std::chrono::milliseconds(200));
    }
    return Status::Ok();
  }
  void Done(size_t index) {
    std::lock_guard<std::mutex> lock(mu_);
    done_[index] = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<bool> done_;
};

class MigrateCommand : public Command {
 public:
  using Command::Command;

  Status Run() override {
    PGB_RETURN_IF_ERROR(copy_.Resolve());
    PGB_ASSIGN_OR_RETURN(MigrationStart start, flags_.Start(global().name, "migrate"));
    if (flags_.queue.kafka()) {
      return Status::Error(ErrorCode::kUsage,
                           "migrate keeps its queue in RocksDB (--queue-dir) for now",
                           "with a Kafka queue, run `pgbaton copy` and then `pgbaton run`");
    }
    PGB_RETURN_IF_ERROR(globals_.CheckCluster(cluster_.enabled()));
    if (!cluster_.enabled()) {
      Member m;
      m.name = global().name;
      m.start = std::move(start);
      PGB_RETURN_IF_ERROR(Prepare(&m, flags_.queue.dir));
      if (plan_) return Plan(m);
      return MigrateOne(m, nullptr, 0);
    }
    if (plan_) {
      return Status::Error(ErrorCode::kUsage, "--plan covers one database for now",
                           "run migrate --plan once per database (the conninfo's dbname), "
                           "without --databases");
    }
    PGB_ASSIGN_OR_RETURN(std::vector<ClusterMember> selected,
                         ResolveCluster(cluster_, start, global().name, ClusterUse::kCreate));
    std::vector<std::unique_ptr<Member>> members;
    std::vector<std::string> names;
    for (const ClusterMember& c : selected) {
      auto m = std::make_unique<Member>();
      m->database = c.database;
      m->name = c.name;
      m->start = c.start;
      PGB_RETURN_IF_ERROR(Prepare(m.get(), c.start.queue.dir));
      // --apply-jobs is the cluster's budget of apply sessions, shared out (at least one each).
      m->apply.jobs = std::max(1, m->apply.jobs / static_cast<int>(selected.size()));
      names.push_back(c.database);
      members.push_back(std::move(m));
    }
    // Before anything is created: the roles and databases, then every new database's preflight.
    if (!globals_.skip) {
      PGB_ASSIGN_OR_RETURN(globals::DiffOptions diff, globals_.ToDiffOptions(names));
      PGB_RETURN_IF_ERROR(globals::SyncBeforeCopy(start.source, start.target, diff, "migrate"));
    }
    PGB_RETURN_IF_ERROR(CheckTargetDatabases(selected, start.target));
    if (!skip_preflight_) {
      for (const auto& m : members) {
        if (IsFresh(m->copy.queue_dir)) PGB_RETURN_IF_ERROR(Preflight(*m));
      }
    }
    PGB_RETURN_IF_ERROR(RecordClusterMembers(start.queue.dir, selected));
    // One endpoint for the process; each database's series carry its name (label database).
    PGB_ASSIGN_OR_RETURN(endpoint_, StartMetricsServer(flags_.metrics));
    LogInfo("migrate starting for a cluster",
            {{"databases", members.size()},
             {"copy_jobs", copy_.options.jobs},
             {"apply_jobs_per_database", members.front()->apply.jobs}});
    CopyTurns turns(members.size());
    return ForEachMember(selected, true, [&](const ClusterMember& c) {
      const size_t index = static_cast<size_t>(&c - selected.data());
      return MigrateOne(*members[index], &turns, index);
    });
  }

 private:
  void AddFlags(CLI::App* sub) override {
    flags_.Register(sub, Need::kRequired, Need::kRequired,
                    {.dir_help = "the work queue: the changes streamed during the copy, and the "
                                 "copy's progress"});
    copy_.Register(sub);
    apply_.progress_flag = "--apply-progress";
    apply_.Register(sub);
    cluster_.Register(sub);
    globals_.Register(sub, true);
    sub->add_option("--until", until_,
                    "caught-up: exit 0 once the target first trails the source by less than "
                    "--caught-up-lag-ms (default: follow the source until stopped); with "
                    "--databases, once every database has")
        ->check(CLI::IsMember({"caught-up"}));
    sub->add_option("--caught-up-lag-ms", caught_up_lag_ms_,
                    "the replay lag under which the target counts as caught up")
        ->capture_default_str()
        ->check(CLI::Range(1, 3600000));
    sub->add_option("--batch-delay-ms", batch_delay_ms_,
                    "decoder group commit: append to the queue at most this often")
        ->capture_default_str();
    sub->add_flag("--verify", verify_,
                  "once caught up, compare source and target at one source LSN while writes go "
                  "on (verify --at-lsn); a difference stops migrate with exit code 81");
    sub->add_flag("--skip-preflight", skip_preflight_,
                  "start without running preflight's checks first (they run on a fresh queue)");
    CLI::Option* plan =
        sub->add_flag("--plan", plan_,
                      "create nothing: print what the migration would copy (tables by size, "
                      "split tables), how long the copy should take (timed on a sample), the "
                      "queue's disk, the connections per side and preflight's findings; exit 3 "
                      "when there are blockers");
    // Not tied to --plan by CLI11's needs(): PGBATON_JSON, set for preflight's or status's --json,
    // must not make every migrate a usage error. Without --plan it has no effect.
    sub->add_flag("--json", plan_json_, "with --plan: the plan as one JSON document");
    sub->add_option("--plan-sample-seconds", plan_sample_seconds_,
                    "with --plan: how long to sample the source's WAL rate, and then its read "
                    "rate")
        ->capture_default_str()
        ->check(CLI::Range(0.5, 600.0))
        ->needs(plan);
  }

  // Fills `m`'s copy and apply options from the flags, for its conninfos and `queue_dir`.
  Status Prepare(Member* m, const std::string& queue_dir) {
    copy::CopyOptions& o = m->copy;
    o = copy_.options;
    o.name = m->name;
    o.source = m->start.source;
    o.target = m->start.target;
    o.queue_dir = queue_dir;
    o.progress_json = copy_.ProgressJson();
    o.metrics = m->start.Series();
    PGB_ASSIGN_OR_RETURN(m->apply, apply_.ToOptions(m->name, o.target));
    m->apply.metrics = m->start.Series();
    o.ddl_replicate = m->apply.ddl_replicate;
    return Status::Ok();
  }

  // --plan: before anything is created, the plan only reads (tools/migrate/plan.h).
  Status Plan(const Member& m) {
    migrate::PlanOptions po;
    po.copy = m.copy;
    po.queue_dir = m.copy.queue_dir;
    po.apply_jobs = m.apply.jobs;
    po.sample_seconds = plan_sample_seconds_;
    return migrate::RunPlan(po, plan_json_);
  }

  // A fresh migration: no queue yet, or an empty directory.
  static bool IsFresh(const std::string& queue_dir) {
    std::error_code ec;
    return !std::filesystem::exists(queue_dir, ec) || std::filesystem::is_empty(queue_dir, ec);
  }

  // One database from preflight to following the source. `turns`: cluster mode, where the copy
  // waits for turn `index`; null for a single database.
  Status MigrateOne(Member& m, CopyTurns* turns, size_t index) {
    copy::CopyOptions& o = m.copy;
    // A fresh migration (no queue yet, or an empty directory) starts with preflight; a resumed
    // one has passed it (and its slot and half-filled target would now read as blockers). A
    // cluster ran every database's before starting any.
    std::error_code ec;
    const bool existed = std::filesystem::exists(o.queue_dir, ec);
    const bool fresh = IsFresh(o.queue_dir);
    if (turns == nullptr && fresh && !skip_preflight_) PGB_RETURN_IF_ERROR(Preflight(m));
    copy::AtTestPoint(o, "after-preflight");

    m.start.check.slot_must_be_idle = true;
    PGB_ASSIGN_OR_RETURN(std::unique_ptr<queue::WorkQueue> opened,
                         copy::OpenCopyQueue(m.start.check, m.start.queue, &o));
    // As in `run`: the applier takes what the decoder appended from memory while it keeps up;
    // the queue still holds every transaction durably first, and is read after a restart or when
    // the applier falls behind the memory budget (during a long copy, it does). Everything that
    // only looks at the queue (the copy's records, the sampler, the catch-up probe) uses the
    // durable queue itself, so that it takes nothing out of memory.
    PGB_ASSIGN_OR_RETURN(std::unique_ptr<queue::MemoryTailQueue> q,
                         queue::WithMemoryTail(std::move(opened)));
    queue::WorkQueue* durable = q->backend();
    MetricsSamplerOptions mo = m.start.SamplerOptions(durable);
    mo.record_samples = true;  // RocksDB: metadata writes are thread-safe
    VerbMetrics metrics;
    if (turns == nullptr) {
      PGB_ASSIGN_OR_RETURN(metrics, StartVerbMetrics(flags_.metrics, mo));
    } else {
      metrics = StartDatabaseMetrics(endpoint_.get(), mo);
    }
    LogFields fields = {{"source", DescribeConninfo(o.source)},
                        {"target", DescribeConninfo(o.target)},
                        {"queue", o.queue_dir},
                        {"jobs", o.jobs}};
    if (!m.database.empty()) fields.insert(fields.begin(), {"database", m.database});
    LogInfo("migrate starting", std::move(fields));

    // The decoder starts as soon as the slot exists and drains the source into the queue for
    // the whole copy: the slot then holds the WAL since the server's last running-transactions
    // record or two, not the copy's (a 16+ source is asked for one every second: StreamThread).
    std::optional<StreamThread> stream;
    o.on_slot = [&]() -> Status {
      stream.emplace(o.source, m.name, q.get(), batch_delay_ms_, m.start.Series());
      m.streaming.store(true);
      LogInfo("decoder streaming into the queue while the copy runs", {{"slot", m.name}});
      return Status::Ok();
    };
    // A database whose copy an earlier run finished does not wait for its turn: its decoder and
    // applier start at once.
    Status st = Status::Ok();
    if (turns != nullptr) {
      auto finished = copy::CopyFinished(durable);
      if (!finished.ok()) {
        turns->Done(index);
        return finished.status();
      }
      if (*finished) {
        turns->Done(index);
      } else {
        st = turns->Wait(index, m.database);
      }
    }
    if (st.ok()) st = Copy(m, durable);
    if (turns != nullptr) turns->Done(index);
    if (st.ok() && stream && stream->ended()) st = stream->status();
    if (!st.ok()) {
      if (stream) stream->Stop();
      RecordLastError(durable, "migrate", st);
      if (fresh) RemoveIfNothingStarted(o.queue_dir, std::move(q), std::move(metrics), existed);
      return st;
    }

    // Catch-up and steady state, as `run`: the first signal drains and stops.
    if (!stream) stream.emplace(o.source, m.name, q.get(), batch_delay_ms_, m.start.Series());
    InstallSignalHandlers();
    applier::ApplierOptions& apply = m.apply;
    apply.source_position = SlotReadPosition(o.source, m.name, q.get());
    PGB_ASSIGN_OR_RETURN(apply.ddl_table_selected, copy::LoadDdlFilter(durable));
    std::atomic<bool> stop_apply{false};
    std::atomic<bool> caught_up{false};
    std::thread watch([&] { Watch(m, durable, &stop_apply, &caught_up); });
    applier::Applier applier(apply, q.get());
    Status s = applier.Run(&stop_apply);
    stop_apply.store(true);
    watch.join();
    stream->Stop();
    const Status& decoder_status = stream->status();
    applier::ApplierStats as = applier.stats();
    LogFields done = {{"decoded_transactions", stream->stats().transactions},
                      {"confirmed_lsn", stream->stats().confirmed.ToString()},
                      {"applied_transactions", as.transactions},
                      {"applied_lsn", as.applied_lsn.ToString()},
                      {"caught_up", caught_up.load()},
                      {"read_from_memory", q->memory_stats().from_memory},
                      {"read_from_queue", q->memory_stats().from_backend}};
    if (!m.database.empty()) done.insert(done.begin(), {"database", m.database});
    LogInfo("migrate stopped", WithResourceUsage(std::move(done)));
    Status result = decoder_status.ok() ? s : decoder_status;
    if (result.ok()) result = m.verify_status;
    RecordLastError(durable, "migrate", result);
    return result;
  }

  // Preflight's checks; its blockers stop the migration before anything is created.
  Status Preflight(const Member& m) {
    preflight::PreflightOptions po;
    po.source = m.copy.source;
    po.target = m.copy.target;
    po.name = m.name;
    po.no_owner = m.copy.no_owner;
    po.ddl_replicate = m.copy.ddl_replicate;
    preflight::PreflightReport report = preflight::RunPreflight(po);
    if (!report.connection_error.ok()) return report.connection_error;
    for (const preflight::Finding& f : report.findings) {
      LogFields fields = {{"check", f.check}, {"fix", f.fix}};
      if (!m.database.empty()) fields.insert(fields.begin(), {"database", m.database});
      if (f.severity == preflight::Severity::kError) {
        LogError("preflight: " + f.message, std::move(fields));
      } else if (f.severity == preflight::Severity::kWarning) {
        LogWarning("preflight: " + f.message, std::move(fields));
      }
    }
    if (!report.CanStart()) {
      return Status::Error(
          ErrorCode::kPreflightFailed,
          fmt::format("{}preflight found {} blocker(s); nothing was created", m.Prefix(),
                      report.CountOf(preflight::Severity::kError)),
          "fix each blocker above (`pgbaton preflight` lists them with their fixes) and run "
          "migrate again");
    }
    LogInfo(m.Prefix() + "preflight passed",
            {{"warnings", report.CountOf(preflight::Severity::kWarning)}});
    return Status::Ok();
  }

  // The copy, with a line now and then on what the decoder does meanwhile: the WAL the slot
  // holds stays small, and the snapshot's age is the one thing the source keeps for the copy.
  Status Copy(Member& m, queue::WorkQueue* q) {
    const copy::CopyOptions& o = m.copy;
    copy::Progress progress(stdout, o.progress_json, o.progress_interval_ms);
    progress.SetDatabase(m.database);
    std::atomic<bool> done{false};
    const auto start = Clock::now();
    std::thread note([&] {
      std::optional<PgConn> src;
      auto next = start + std::chrono::seconds(10);
      while (!done.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (Clock::now() < next || !m.streaming.load()) continue;
        next = Clock::now() + std::chrono::seconds(10);
        if (!src) {
          ConnectOptions co;
          co.label = "source";
          co.application_name = "pgbaton migrate";
          auto c = PgConn::Connect(o.source, co);
          if (!c.ok()) continue;
          src.emplace(std::move(*c));
        }
        auto pos = ReadSourcePositions(*src, m.name);
        if (!pos.ok()) {
          src.reset();
          continue;
        }
        progress.Note(fmt::format(
            "stream: decoded up to {}; the slot holds {:.1f} MB of WAL; the copy's snapshot is "
            "{:.0f} s old",
            pos->confirmed_flush_lsn.ToString(), static_cast<double>(pos->wal_held_bytes) / 1e6,
            std::chrono::duration<double>(Clock::now() - start).count()));
      }
    });
    Status st = copy::RunCopy(o, q, &progress);
    done.store(true);
    note.join();
    progress.Finish(st.ok());
    return st;
  }

  // Reports the lag while the applier runs; stops it on a signal, when the stream failed, and
  // with --until caught-up once the lag is under the threshold.
  void Watch(Member& m, queue::WorkQueue* q, std::atomic<bool>* stop_apply,
             std::atomic<bool>* caught_up) {
    migrate::CatchUpOptions co;
    co.source = m.copy.source;
    co.target = m.copy.target;
    co.name = m.name;
    co.queue = q;
    migrate::CatchUpProbe probe(co);
    const double threshold = caught_up_lag_ms_ / 1000.0;
    const bool until = !until_.empty();
    auto next_line = Clock::now();
    // A stop of either kind ends a measurement at once.
    std::atomic<bool> stop{false};
    std::thread relay([&] {
      while (!stop_apply->load() && !StopRequested().load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      stop.store(true);
      stop_apply->store(true);
    });
    while (!stop.load()) {
      auto lag = probe.Measure(stop);
      if (!lag.ok()) {
        LogDebug("catch-up probe failed; trying again", {{"error", lag.status().message()}});
        std::this_thread::sleep_for(std::chrono::seconds(1));
        continue;
      }
      if (!lag->has_value()) break;
      const migrate::Lag& l = **lag;
      const bool under = l.reached && l.replay_seconds < threshold;
      if (under && !caught_up->exchange(true)) {
        LogInfo(m.Prefix() + "caught up: the target trails the source by less than the threshold",
                {{"replay_lag_s", l.replay_seconds}, {"threshold_s", threshold}});
        if (until) {
          PrintLine(m.Prefix() + fmt::format("caught up: replay lag {:.3f} s (under {:.3f} s)",
                                             l.replay_seconds, threshold));
        }
        // The gate: both sides compared at one source LSN while the applier runs on.
        if (verify_) m.verify_status = VerifyAtLsn(m);
        if (until || !m.verify_status.ok()) {
          stop_apply->store(true);
          break;
        }
      }
      if (Clock::now() >= next_line) {
        next_line = Clock::now() + std::chrono::seconds(10);
        std::optional<double> eta;
        const auto now = Clock::now();
        if (m.last_backlog) {
          eta = migrate::CatchUpEtaSeconds(
              m.last_backlog->second, l.backlog_seconds,
              std::chrono::duration<double>(now - m.last_backlog->first).count());
        }
        m.last_backlog.emplace(now, l.backlog_seconds);
        PrintLag(m, l, l.reached ? std::optional<double>(0.0) : eta);
      }
      // One mark a second at most: each is a small transaction on the source.
      if (l.reached) std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    stop.store(true);
    relay.join();
  }

  // --verify: source and target compared at one source LSN (tools/verification/at_lsn.h).
  Status VerifyAtLsn(const Member& m) {
    verify::AtLsnOptions ao;
    ao.name = m.name;
    ao.source = m.copy.source;
    ao.target = m.copy.target;
    LogInfo(m.Prefix() + "verifying the target at one source LSN", {});
    verify::VerifyOptions vo;
    vo.stop = &StopRequested();
    PGB_ASSIGN_OR_RETURN(verify::VerifyReport report, verify::VerifyAtLsn(ao, vo));
    const std::string text =
        m.copy.progress_json ? verify::FormatReportJsonLine(report) : verify::FormatReport(report);
    {
      std::lock_guard<std::mutex> lock(out_mu_);
      if (!m.database.empty() && !m.copy.progress_json) fmt::print("{}\n", m.Prefix());
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    }
    const int differ = report.differing_tables();
    if (differ == 0) return Status::Ok();
    return Status::Error(
        ErrorCode::kVerifyMismatch,
        fmt::format("{}verify at source LSN {}: {} of {} tables differ between source and target",
                    m.Prefix(), report.source_lsn.ToString(), differ, report.tables.size()),
        "both sides were read at the same source LSN, so these rows really differ: see each "
        "table's differing keys above; do not cut over");
  }

  // One catch-up line; `eta`: seconds until caught up at the pace since the last line (nullopt:
  // not gaining, or no earlier line yet).
  void PrintLag(const Member& m, const migrate::Lag& l, std::optional<double> eta) {
    if (m.copy.progress_json) {
      PrintLine(fmt::format(
          "{{\"phase\":\"catch-up\",{}\"replay_lag_s\":{:.3f},\"replay_lag_known\":{},"
          "\"backlog_s\":{:.3f},\"eta_s\":{},\"mark_lsn\":\"{}\"}}",
          m.database.empty() ? "" : "\"database\":" + nlohmann::json(m.database).dump() + ",",
          l.replay_seconds, l.reached, l.backlog_seconds,
          eta ? fmt::format("{:.1f}", *eta) : "null", l.mark.ToString()));
    } else if (l.reached) {
      PrintLine(m.Prefix() + fmt::format("catch-up: replay lag {:.2f} s", l.replay_seconds));
    } else {
      PrintLine(m.Prefix() +
                fmt::format("catch-up: behind by more than {:.0f} s (oldest unapplied "
                            "transaction {:.0f} s old; {})",
                            l.replay_seconds, l.backlog_seconds,
                            eta ? fmt::format("caught up in about {:.0f} s at this pace", *eta)
                                : "not gaining on the source yet"));
    }
  }

  // A whole line on stdout: the databases of a cluster print from threads of their own.
  void PrintLine(const std::string& line) {
    std::lock_guard<std::mutex> lock(out_mu_);
    fmt::print("{}\n", line);
    std::fflush(stdout);
  }

  // A refused first run (before the slot was made: versions, a target not empty) leaves no
  // queue behind to be mistaken for a migration later: the directory it created goes, or the
  // empty one it was given is emptied again.
  static void RemoveIfNothingStarted(const std::string& dir, std::unique_ptr<queue::WorkQueue> q,
                                     VerbMetrics metrics, bool keep_directory) {
    auto slot = q->GetMeta(kIdentitySlotKey);
    if (!slot.ok() || slot->has_value()) return;
    metrics = {};
    q.reset();
    std::error_code ec;
    if (!keep_directory) {
      std::filesystem::remove_all(dir, ec);
      return;
    }
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      std::filesystem::remove_all(entry.path(), ec);
    }
  }

  MigrationFlags flags_;
  ClusterFlags cluster_;
  std::unique_ptr<MetricsServer> endpoint_;  // cluster mode: --metrics-addr, for every database
  globals::GlobalsFlags globals_;
  copy::CopyFlags copy_;
  ApplyFlags apply_;
  std::string until_;
  int caught_up_lag_ms_ = 1000;
  int batch_delay_ms_ = 50;
  bool skip_preflight_ = false;
  bool verify_ = false;
  bool plan_ = false;
  bool plan_json_ = false;
  double plan_sample_seconds_ = 3;
  std::mutex out_mu_;  // whole lines on stdout
};

}  // namespace

std::unique_ptr<Command> MakeMigrateCommand(GlobalOptions* g) {
  return std::make_unique<MigrateCommand>(
      g, "migrate",
      "preflight, copy while the source's changes stream into the queue, then apply and keep "
      "following the source (resumable: run the same command again)");
}

}  // namespace pgbaton::tools

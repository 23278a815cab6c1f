#include "tools/migrate/migrate_command.h"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <optional>
#include <thread>

#include "applier/applier.h"
#include "common/conninfo.h"
#include "common/log.h"
#include "queue/work_queue.h"
#include "tools/common/apply_flags.h"
#include "tools/common/identity.h"
#include "tools/common/last_error.h"
#include "tools/common/metrics_sampler.h"
#include "tools/common/migration_flags.h"
#include "tools/common/positions.h"
#include "tools/common/resource_usage.h"
#include "tools/common/signals.h"
#include "tools/common/stream_thread.h"
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
    copy::CopyOptions& o = copy_.options;
    o.name = global().name;
    o.source = start.source;
    o.target = start.target;
    o.queue_dir = flags_.queue.dir;
    o.progress_json = copy_.ProgressJson();
    PGB_ASSIGN_OR_RETURN(applier::ApplierOptions apply, apply_.ToOptions(global().name, o.target));
    o.ddl_replicate = apply.ddl_replicate;
    if (plan_) {
      // Before anything is created: the plan only reads (tools/migrate/plan.h).
      migrate::PlanOptions po;
      po.copy = o;
      po.queue_dir = o.queue_dir;
      po.apply_jobs = apply.jobs;
      po.sample_seconds = plan_sample_seconds_;
      return migrate::RunPlan(po, plan_json_);
    }

    // A fresh migration (no queue yet, or an empty directory) starts with preflight; a resumed
    // one has passed it (and its slot and half-filled target would now read as blockers).
    std::error_code ec;
    const bool existed = std::filesystem::exists(o.queue_dir, ec);
    const bool fresh = !existed || std::filesystem::is_empty(o.queue_dir, ec);
    if (fresh && !skip_preflight_) PGB_RETURN_IF_ERROR(Preflight());
    copy::AtTestPoint(o, "after-preflight");

    start.check.slot_must_be_idle = true;
    PGB_ASSIGN_OR_RETURN(std::unique_ptr<queue::WorkQueue> q,
                         copy::OpenCopyQueue(start.check, start.queue, &o));
    MetricsSamplerOptions mo = start.SamplerOptions(q.get());
    mo.record_samples = true;  // RocksDB: metadata writes are thread-safe
    PGB_ASSIGN_OR_RETURN(VerbMetrics metrics, StartVerbMetrics(flags_.metrics, mo));
    LogInfo("migrate starting", {{"source", DescribeConninfo(o.source)},
                                 {"target", DescribeConninfo(o.target)},
                                 {"queue", o.queue_dir},
                                 {"jobs", o.jobs}});

    // The decoder starts as soon as the slot exists and drains the source into the queue for
    // the whole copy: the slot then holds the WAL since the server's last running-transactions
    // record or two, not the copy's (a 16+ source is asked for one every second: StreamThread).
    std::optional<StreamThread> stream;
    o.on_slot = [&]() -> Status {
      stream.emplace(o.source, global().name, q.get(), batch_delay_ms_);
      streaming_.store(true);
      LogInfo("decoder streaming into the queue while the copy runs", {{"slot", global().name}});
      return Status::Ok();
    };
    Status st = Copy(q.get());
    if (st.ok() && stream && stream->ended()) st = stream->status();
    if (!st.ok()) {
      if (stream) stream->Stop();
      RecordLastError(q.get(), "migrate", st);
      if (fresh) RemoveIfNothingStarted(std::move(q), std::move(metrics), existed);
      return st;
    }

    // Catch-up and steady state, as `run`: the first signal drains and stops.
    if (!stream) stream.emplace(o.source, global().name, q.get(), batch_delay_ms_);
    InstallSignalHandlers();
    apply.source_position = SlotReadPosition(o.source, global().name, q.get());
    PGB_ASSIGN_OR_RETURN(apply.ddl_table_selected, copy::LoadDdlFilter(q.get()));
    std::atomic<bool> stop_apply{false};
    std::atomic<bool> caught_up{false};
    std::thread watch([&] { Watch(q.get(), &stop_apply, &caught_up); });
    applier::Applier applier(apply, q.get());
    Status s = applier.Run(&stop_apply);
    stop_apply.store(true);
    watch.join();
    stream->Stop();
    const Status& decoder_status = stream->status();
    applier::ApplierStats as = applier.stats();
    LogInfo("migrate stopped",
            WithResourceUsage({{"decoded_transactions", stream->stats().transactions},
                               {"confirmed_lsn", stream->stats().confirmed.ToString()},
                               {"applied_transactions", as.transactions},
                               {"applied_lsn", as.applied_lsn.ToString()},
                               {"caught_up", caught_up.load()}}));
    Status result = decoder_status.ok() ? s : decoder_status;
    if (result.ok()) result = verify_status_;
    RecordLastError(q.get(), "migrate", result);
    return result;
  }

 private:
  void AddFlags(CLI::App* sub) override {
    flags_.Register(sub, Need::kRequired, Need::kRequired,
                    {.dir_help = "the work queue: the changes streamed during the copy, and the "
                                 "copy's progress"});
    copy_.Register(sub);
    apply_.progress_flag = "--apply-progress";
    apply_.Register(sub);
    sub->add_option("--until", until_,
                    "caught-up: exit 0 once the target first trails the source by less than "
                    "--caught-up-lag-ms (default: follow the source until stopped)")
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

  // Preflight's checks; its blockers stop the migration before anything is created.
  Status Preflight() {
    preflight::PreflightOptions po;
    po.source = copy_.options.source;
    po.target = copy_.options.target;
    po.name = global().name;
    po.no_owner = copy_.options.no_owner;
    po.ddl_replicate = copy_.options.ddl_replicate;
    preflight::PreflightReport report = preflight::RunPreflight(po);
    if (!report.connection_error.ok()) return report.connection_error;
    for (const preflight::Finding& f : report.findings) {
      if (f.severity == preflight::Severity::kError) {
        LogError("preflight: " + f.message, {{"check", f.check}, {"fix", f.fix}});
      } else if (f.severity == preflight::Severity::kWarning) {
        LogWarning("preflight: " + f.message, {{"check", f.check}, {"fix", f.fix}});
      }
    }
    if (!report.CanStart()) {
      return Status::Error(
          ErrorCode::kPreflightFailed,
          fmt::format("preflight found {} blocker(s); nothing was created",
                      report.CountOf(preflight::Severity::kError)),
          "fix each blocker above (`pgbaton preflight` lists them with their fixes) and run "
          "migrate again");
    }
    LogInfo("preflight passed", {{"warnings", report.CountOf(preflight::Severity::kWarning)}});
    return Status::Ok();
  }

  // The copy, with a line now and then on what the decoder does meanwhile: the WAL the slot
  // holds stays small, and the snapshot's age is the one thing the source keeps for the copy.
  Status Copy(queue::WorkQueue* q) {
    const copy::CopyOptions& o = copy_.options;
    copy::Progress progress(stdout, o.progress_json, o.progress_interval_ms);
    std::atomic<bool> done{false};
    const auto start = Clock::now();
    std::thread note([&] {
      std::optional<PgConn> src;
      auto next = start + std::chrono::seconds(10);
      while (!done.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (Clock::now() < next || !streaming_.load()) continue;
        next = Clock::now() + std::chrono::seconds(10);
        if (!src) {
          ConnectOptions co;
          co.label = "source";
          co.application_name = "pgbaton migrate";
          auto c = PgConn::Connect(o.source, co);
          if (!c.ok()) continue;
          src.emplace(std::move(*c));
        }
        auto pos = ReadSourcePositions(*src, global().name);
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
  void Watch(queue::WorkQueue* q, std::atomic<bool>* stop_apply, std::atomic<bool>* caught_up) {
    migrate::CatchUpOptions co;
    co.source = copy_.options.source;
    co.target = copy_.options.target;
    co.name = global().name;
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
        LogInfo("caught up: the target trails the source by less than the threshold",
                {{"replay_lag_s", l.replay_seconds}, {"threshold_s", threshold}});
        if (until) {
          fmt::print("caught up: replay lag {:.3f} s (under {:.3f} s)\n", l.replay_seconds,
                     threshold);
          std::fflush(stdout);
        }
        // The gate: both sides compared at one source LSN while the applier runs on.
        if (verify_) verify_status_ = VerifyAtLsn();
        if (until || !verify_status_.ok()) {
          stop_apply->store(true);
          break;
        }
      }
      if (Clock::now() >= next_line) {
        next_line = Clock::now() + std::chrono::seconds(10);
        std::optional<double> eta;
        const auto now = Clock::now();
        if (last_backlog_) {
          eta = migrate::CatchUpEtaSeconds(
              last_backlog_->second, l.backlog_seconds,
              std::chrono::duration<double>(now - last_backlog_->first).count());
        }
        last_backlog_.emplace(now, l.backlog_seconds);
        PrintLag(l, l.reached ? std::optional<double>(0.0) : eta);
      }
      // One mark a second at most: each is a small transaction on the source.
      if (l.reached) std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    stop.store(true);
    relay.join();
  }

  // --verify: source and target compared at one source LSN (tools/verification/at_lsn.h).
  Status VerifyAtLsn() {
    verify::AtLsnOptions ao;
    ao.name = global().name;
    ao.source = copy_.options.source;
    ao.target = copy_.options.target;
    LogInfo("verifying the target at one source LSN", {});
    verify::VerifyOptions vo;
    vo.stop = &StopRequested();
    PGB_ASSIGN_OR_RETURN(verify::VerifyReport report, verify::VerifyAtLsn(ao, vo));
    const std::string text = copy_.options.progress_json ? verify::FormatReportJsonLine(report)
                                                         : verify::FormatReport(report);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    const int differ = report.differing_tables();
    if (differ == 0) return Status::Ok();
    return Status::Error(
        ErrorCode::kVerifyMismatch,
        fmt::format("verify at source LSN {}: {} of {} tables differ between source and target",
                    report.source_lsn.ToString(), differ, report.tables.size()),
        "both sides were read at the same source LSN, so these rows really differ: see each "
        "table's differing keys above; do not cut over");
  }

  // One catch-up line; `eta`: seconds until caught up at the pace since the last line (nullopt:
  // not gaining, or no earlier line yet).
  void PrintLag(const migrate::Lag& l, std::optional<double> eta) const {
    if (copy_.options.progress_json) {
      fmt::print(
          "{{\"phase\":\"catch-up\",\"replay_lag_s\":{:.3f},\"replay_lag_known\":{},"
          "\"backlog_s\":{:.3f},\"eta_s\":{},\"mark_lsn\":\"{}\"}}\n",
          l.replay_seconds, l.reached, l.backlog_seconds,
          eta ? fmt::format("{:.1f}", *eta) : "null", l.mark.ToString());
    } else if (l.reached) {
      fmt::print("catch-up: replay lag {:.2f} s\n", l.replay_seconds);
    } else {
      fmt::print(
          "catch-up: behind by more than {:.0f} s (oldest unapplied transaction {:.0f} s old; "
          "{})\n",
          l.replay_seconds, l.backlog_seconds,
          eta ? fmt::format("caught up in about {:.0f} s at this pace", *eta)
              : "not gaining on the source yet");
    }
    std::fflush(stdout);
  }

  // A refused first run (before the slot was made: versions, a target not empty) leaves no
  // queue behind to be mistaken for a migration later: the directory it created goes, or the
  // empty one it was given is emptied again.
  void RemoveIfNothingStarted(std::unique_ptr<queue::WorkQueue> q, VerbMetrics metrics,
                              bool keep_directory) {
    auto slot = q->GetMeta(kIdentitySlotKey);
    if (!slot.ok() || slot->has_value()) return;
    metrics = {};
    q.reset();
    std::error_code ec;
    const std::string& dir = copy_.options.queue_dir;
    if (!keep_directory) {
      std::filesystem::remove_all(dir, ec);
      return;
    }
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      std::filesystem::remove_all(entry.path(), ec);
    }
  }

  MigrationFlags flags_;
  copy::CopyFlags copy_;
  ApplyFlags apply_;
  std::string until_;
  int caught_up_lag_ms_ = 1000;
  int batch_delay_ms_ = 50;
  bool skip_preflight_ = false;
  bool verify_ = false;
  // The backlog at the last catch-up line, and when: the pace between lines gives the ETA.
  std::optional<std::pair<Clock::time_point, double>> last_backlog_;
  Status verify_status_;  // --verify's outcome (set by the watch thread before it stops)
  bool plan_ = false;
  bool plan_json_ = false;
  double plan_sample_seconds_ = 3;
  std::atomic<bool> streaming_{false};  // the decoder runs (set by the copy's on_slot)
};

}  // namespace

std::unique_ptr<Command> MakeMigrateCommand(GlobalOptions* g) {
  return std::make_unique<MigrateCommand>(
      g, "migrate",
      "preflight, copy while the source's changes stream into the queue, then apply and keep "
      "following the source (resumable: run the same command again)");
}

}  // namespace pgbaton::tools

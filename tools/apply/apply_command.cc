#include "tools/apply/apply_command.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>

#include "common/conninfo.h"
#include "common/log.h"
#include "queue/work_queue.h"
#include "tools/common/identity.h"
#include "tools/common/metrics_sampler.h"
#include "tools/common/resource_usage.h"
#include "tools/status/status_report.h"

namespace pgbaton::tools {

namespace {

std::atomic<bool> g_stop{false};

std::atomic<int> g_signals{0};

// The first SIGINT/SIGTERM asks for a clean stop (the current batch commits or rolls back and
// positions are flushed). A second one means "now": exiting at once loses nothing, because the
// queue and the target only ever hold whole transactions and the next start resumes from them.
void OnStopSignal(int) {
  if (g_signals.fetch_add(1) >= 1) {
    static const char kMsg[] = "pgbaton: second signal, stopping at once\n";
    ssize_t n = write(2, kMsg, sizeof(kMsg) - 1);
    (void)n;
    _exit(ExitCodeOf(ErrorCode::kInterrupted));
  }
  g_stop.store(true);
}

class ApplyCommand : public Command {
 public:
  explicit ApplyCommand(GlobalOptions* g) : global_(g) {}

  CLI::App* Register(CLI::App* app) override {
    CLI::App* sub = app->add_subcommand("apply", "replay the work queue onto the target");
    flags_.Register(sub, /*with_stop_at=*/true);
    sub->add_option("--queue-dir", queue_dir_, "the RocksDB work queue directory");
    sub->add_option("--kafka-brokers", kafka_brokers_, "Kafka bootstrap servers (host:port,...)");
    sub->add_option("--kafka-topic", kafka_topic_, "Kafka topic of the queue");
    sub->add_option("--kafka-state-dir", kafka_state_dir_, "local state for the Kafka reader");
    AddMetricsOptions(sub, &metrics_);
    return sub;
  }

  Status Run() override {
    PGB_ASSIGN_OR_RETURN(applier::ApplierOptions options, flags_.ToOptions(global_->name));
    queue::QueueOptions qo;
    qo.dir = queue_dir_;
    qo.kafka_brokers = kafka_brokers_;
    qo.kafka_topic = kafka_topic_;
    qo.kafka_state_dir = kafka_state_dir_;
    qo.migration_name = global_->name;
    qo.create_if_missing = false;
    MigrationCheck check = QueueCheck(qo, "apply");
    check.target_conninfo = options.target_conninfo;
    check.bind = true;
    check.check_positions = true;
    PGB_ASSIGN_OR_RETURN(LiveSides live, CheckSides(check));
    auto q = queue::WorkQueue::Open(qo);
    if (!q.ok() && q.status().code() == ErrorCode::kQueueLocked) {
      // The decoder holds the queue (`pgbaton stream` running): follow it read-only; it trims.
      LogInfo("the queue is open for writing elsewhere; reading it without trimming");
      qo.read_only = true;
      options.trim_queue = false;
      q = queue::WorkQueue::Open(qo);
    }
    if (!q.ok()) return q.status();
    PGB_RETURN_IF_ERROR(CheckQueue(check, live, q->get(), qo.read_only));
    MetricsSamplerOptions mo;
    mo.name = global_->name;
    mo.target_conninfo = options.target_conninfo;
    mo.queue = q->get();
    mo.record_samples = !qo.read_only && kafka_brokers_.empty();
    PGB_ASSIGN_OR_RETURN(VerbMetrics metrics, StartVerbMetrics(metrics_, mo));
    std::atomic<bool>* stop = InstallStopSignals();
    applier::Applier applier(options, q->get());
    Status s = applier.Run(stop);
    applier::ApplierStats st = applier.stats();
    LogInfo("applier stopped", WithResourceUsage({{"transactions", st.transactions},
                                                  {"changes", st.changes},
                                                  {"target_transactions", st.groups},
                                                  {"copy_rows", st.copy_rows},
                                                  {"filtered_by_sync_lsn", st.filtered},
                                                  {"skipped_conflicts", st.skipped_conflicts},
                                                  {"applied_lsn", st.applied_lsn.ToString()}}));
    if (s.ok() && stop->load() && !options.stop_at.IsValid()) return Status::Ok();
    if (!qo.read_only) RecordLastError(q->get(), "apply", s);
    return s;
  }

 private:
  GlobalOptions* global_;
  ApplyFlags flags_;
  std::string queue_dir_, kafka_brokers_, kafka_topic_, kafka_state_dir_;
  MetricsOptions metrics_;
};

}  // namespace

void ApplyFlags::Register(CLI::App* sub, bool with_stop_at) {
  sub->add_option("--target", target, "connection string of the new cluster")->required();
  sub->add_option("--apply-jobs", apply_jobs, "apply connections (parallel where independent)")
      ->capture_default_str();
  sub->add_option("--on-conflict", on_conflict,
                  "error: stop at a missing row or duplicate key; skip: log it and go on")
      ->capture_default_str();
  sub->add_option("--progress", progress,
                  "where progress is kept on the target: auto, origin or table")
      ->capture_default_str();
  sub->add_option("--group-rows", group_rows, "changes per target transaction")
      ->capture_default_str();
  sub->add_option("--group-delay-ms", group_delay_ms, "longest a target transaction stays open")
      ->capture_default_str();
  sub->add_option("--copy-min-rows", copy_min_rows,
                  "consecutive inserts into one table sent as COPY (0: never)")
      ->capture_default_str();
  sub->add_option("--big-txn-changes", big_txn_changes,
                  "source transactions larger than this stream alone, chunk by chunk")
      ->capture_default_str();
  if (with_stop_at) {
    sub->add_option("--stop-at", stop_at, "stop once every transaction up to this LSN is applied");
  }
}

Result<applier::ApplierOptions> ApplyFlags::ToOptions(const std::string& name) const {
  applier::ApplierOptions o;
  o.target_conninfo = target;
  o.name = name;
  if (apply_jobs < 1 || apply_jobs > 64) {
    return Status::Error(ErrorCode::kUsage,
                         fmt::format("--apply-jobs must be between 1 and 64, not {}", apply_jobs));
  }
  o.jobs = apply_jobs;
  if (on_conflict == "error") {
    o.on_conflict = applier::OnConflict::kError;
  } else if (on_conflict == "skip") {
    o.on_conflict = applier::OnConflict::kSkip;
  } else {
    return Status::Error(
        ErrorCode::kUsage,
        fmt::format("--on-conflict must be error or skip, not \"{}\"", on_conflict));
  }
  if (progress == "auto") {
    o.progress = applier::ProgressMode::kAuto;
  } else if (progress == "origin") {
    o.progress = applier::ProgressMode::kOrigin;
  } else if (progress == "table") {
    o.progress = applier::ProgressMode::kTable;
  } else {
    return Status::Error(
        ErrorCode::kUsage,
        fmt::format("--progress must be auto, origin or table, not \"{}\"", progress));
  }
  if (!stop_at.empty()) {
    PGB_ASSIGN_OR_RETURN(o.stop_at, Lsn::Parse(stop_at));
  }
  if (group_rows < 1) return Status::Error(ErrorCode::kUsage, "--group-rows must be at least 1");
  o.group_max_rows = group_rows;
  o.group_max_delay = std::chrono::milliseconds(std::max(group_delay_ms, 1));
  o.copy_min_rows = copy_min_rows == 0 ? SIZE_MAX : copy_min_rows;
  o.big_txn_changes = std::max<size_t>(big_txn_changes, 1);
  return o;
}

std::atomic<bool>* InstallStopSignals() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return &g_stop;
}

std::unique_ptr<Command> MakeApplyCommand(GlobalOptions* g) {
  return std::make_unique<ApplyCommand>(g);
}

}  // namespace pgbaton::tools

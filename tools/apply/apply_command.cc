#include "tools/apply/apply_command.h"

#include <fmt/format.h>

#include "common/conninfo.h"
#include "common/log.h"
#include "queue/work_queue.h"
#include "tools/common/apply_flags.h"
#include "tools/common/identity.h"
#include "tools/common/last_error.h"
#include "tools/common/metrics_sampler.h"
#include "tools/common/resource_usage.h"
#include "tools/common/signals.h"
#include "tools/common/startup_retry.h"
#include "tools/config/connection.h"
#include "tools/config/queue_flags.h"

namespace pgbaton::tools {

namespace {

class ApplyCommand : public Command {
 public:
  explicit ApplyCommand(GlobalOptions* g) : global_(g) {}

  CLI::App* Register(CLI::App* app) override {
    CLI::App* sub = app->add_subcommand("apply", "replay the work queue onto the target");
    AddConnectionOptions(sub, &conn_, Need::kNone, Need::kRequired);
    flags_.Register(sub);
    queue_.Register(sub);
    AddMetricsOptions(sub, &metrics_);
    return sub;
  }

  Status Run() override {
    PGB_RETURN_IF_ERROR(queue_.Check("apply"));
    PGB_ASSIGN_OR_RETURN(std::string target, TargetConninfo(conn_));
    PGB_ASSIGN_OR_RETURN(applier::ApplierOptions options, flags_.ToOptions(global_->name, target));
    queue::QueueOptions qo = queue_.ToOptions(global_->name);
    qo.create_if_missing = false;
    MigrationCheck check = QueueCheck(qo, "apply");
    check.target_conninfo = options.target_conninfo;
    check.bind = true;
    check.check_positions = true;
    // The first signal stops cleanly, a second at once (tools/common/signals.h); one that comes
    // while a start-up check waits for a server ends the wait.
    InstallSignalHandlers();
    LiveSides live;
    PGB_RETURN_IF_ERROR(RetryWhileUnreachable("identity checks", [&]() -> Status {
      PGB_ASSIGN_OR_RETURN(live, CheckSides(check));
      return Status::Ok();
    }));
    auto q = queue::WorkQueue::Open(qo);
    if (!q.ok() && q.status().code() == ErrorCode::kQueueLocked) {
      // The decoder holds the queue (`pgbaton stream` running): follow it read-only; it trims.
      LogInfo("the queue is open for writing elsewhere; reading it without trimming");
      qo.read_only = true;
      options.trim_queue = false;
      q = queue::WorkQueue::Open(qo);
    }
    if (!q.ok()) return q.status();
    PGB_RETURN_IF_ERROR(RetryWhileUnreachable(
        "position checks", [&] { return CheckQueue(check, live, q->get(), qo.read_only); }));
    MetricsSamplerOptions mo;
    mo.name = global_->name;
    mo.target_conninfo = options.target_conninfo;
    mo.queue = q->get();
    mo.record_samples = !qo.read_only && !queue_.kafka();
    PGB_ASSIGN_OR_RETURN(VerbMetrics metrics, StartVerbMetrics(metrics_, mo));
    applier::Applier applier(options, q->get());
    Status s = applier.Run(&StopRequested());
    applier::ApplierStats st = applier.stats();
    LogInfo("applier stopped", WithResourceUsage({{"transactions", st.transactions},
                                                  {"changes", st.changes},
                                                  {"target_transactions", st.groups},
                                                  {"copy_rows", st.copy_rows},
                                                  {"filtered_by_sync_lsn", st.filtered},
                                                  {"skipped_conflicts", st.skipped_conflicts},
                                                  {"applied_lsn", st.applied_lsn.ToString()}}));
    if (s.ok() && StopRequested().load() && !options.stop_at.IsValid()) return Status::Ok();
    if (!qo.read_only) RecordLastError(q->get(), "apply", s);
    return s;
  }

 private:
  GlobalOptions* global_;
  ConnectionFlags conn_;
  ApplyFlags flags_;
  QueueFlags queue_;
  MetricsOptions metrics_;
};

}  // namespace

std::unique_ptr<Command> MakeApplyCommand(GlobalOptions* g) {
  return std::make_unique<ApplyCommand>(g);
}

}  // namespace pgbaton::tools

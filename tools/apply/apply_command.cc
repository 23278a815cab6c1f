#include "tools/apply/apply_command.h"

#include <fmt/format.h>

#include "common/conninfo.h"
#include "common/log.h"
#include "queue/work_queue.h"
#include "tools/common/apply_flags.h"
#include "tools/common/identity.h"
#include "tools/common/last_error.h"
#include "tools/common/metrics_sampler.h"
#include "tools/common/migration_flags.h"
#include "tools/common/resource_usage.h"
#include "tools/common/signals.h"
#include "tools/common/startup_retry.h"
#include "tools/initial_copy/ddl_capture.h"

namespace pgbaton::tools {

namespace {

class ApplyCommand : public Command {
 public:
  using Command::Command;

  Status Run() override {
    PGB_ASSIGN_OR_RETURN(MigrationStart start, flags_.Start(global().name, "apply"));
    PGB_ASSIGN_OR_RETURN(applier::ApplierOptions options,
                         apply_.ToOptions(global().name, start.target));
    queue::QueueOptions& qo = start.queue;
    qo.create_if_missing = false;
    MigrationCheck& check = start.check;
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
    PGB_ASSIGN_OR_RETURN(options.ddl_table_selected, copy::LoadDdlFilter(q->get()));
    MetricsSamplerOptions mo = start.SamplerOptions(q->get());
    mo.record_samples = !qo.read_only && !flags_.queue.kafka();
    PGB_ASSIGN_OR_RETURN(VerbMetrics metrics, StartVerbMetrics(flags_.metrics, mo));
    applier::Applier applier(options, q->get());
    Status s = applier.Run(&StopRequested());
    applier::ApplierStats st = applier.stats();
    LogInfo("applier stopped", WithResourceUsage({{"transactions", st.transactions},
                                                  {"changes", st.changes},
                                                  {"target_transactions", st.groups},
                                                  {"copy_rows", st.copy_rows},
                                                  {"filtered_by_sync_lsn", st.filtered},
                                                  {"skipped_conflicts", st.skipped_conflicts},
                                                  {"ddl_replayed", st.ddl_replayed},
                                                  {"ddl_skipped", st.ddl_skipped},
                                                  {"applied_lsn", st.applied_lsn.ToString()}}));
    if (s.ok() && StopRequested().load() && !options.stop_at.IsValid()) return Status::Ok();
    if (!qo.read_only) RecordLastError(q->get(), "apply", s);
    return s;
  }

 private:
  void AddFlags(CLI::App* sub) override {
    flags_.Register(sub, Need::kNone, Need::kRequired);
    apply_.Register(sub);
  }

  MigrationFlags flags_;
  ApplyFlags apply_;
};

}  // namespace

std::unique_ptr<Command> MakeApplyCommand(GlobalOptions* g) {
  return std::make_unique<ApplyCommand>(g, "apply", "replay the work queue onto the target");
}

}  // namespace pgbaton::tools

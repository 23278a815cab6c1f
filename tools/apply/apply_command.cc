#include "tools/apply/apply_command.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/conninfo.h"
#include "common/log.h"
#include "queue/work_queue.h"
#include "tools/common/apply_flags.h"
#include "tools/common/cluster.h"
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
    // The first signal stops cleanly, a second at once (tools/common/signals.h); one that comes
    // while a start-up check waits for a server ends the wait.
    InstallSignalHandlers();
    if (!cluster_.enabled()) return ApplyOne(start, global().name, apply_.apply_jobs, nullptr);
    // --apply-jobs is the cluster's budget of apply sessions, shared out (at least one each).
    PGB_ASSIGN_OR_RETURN(std::vector<ClusterMember> members,
                         ResolveCluster(cluster_, start, global().name, ClusterUse::kExisting));
    const int jobs = std::max(1, apply_.apply_jobs / static_cast<int>(members.size()));
    // One endpoint for the process; each database's series carry its name (label database).
    PGB_ASSIGN_OR_RETURN(endpoint_, StartMetricsServer(flags_.metrics));
    return ForEachMember(
        members, true, [&](const ClusterMember& m) { return ApplyOne(m.start, m.name, jobs, &m); });
  }

 private:
  Status ApplyOne(MigrationStart start, const std::string& name, int jobs,
                  const ClusterMember* member) {
    PGB_ASSIGN_OR_RETURN(applier::ApplierOptions options, apply_.ToOptions(name, start.target));
    options.jobs = jobs;
    options.metrics = start.Series();
    queue::QueueOptions& qo = start.queue;
    qo.create_if_missing = false;
    MigrationCheck& check = start.check;
    check.bind = true;
    check.check_positions = true;
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
    VerbMetrics metrics;
    if (member == nullptr) {
      PGB_ASSIGN_OR_RETURN(metrics, StartVerbMetrics(flags_.metrics, mo));
    } else {
      metrics = StartDatabaseMetrics(endpoint_.get(), mo);
    }
    applier::Applier applier(options, q->get());
    Status s = applier.Run(&StopRequested());
    applier::ApplierStats st = applier.stats();
    LogFields fields = {
        {"transactions", st.transactions},         {"changes", st.changes},
        {"target_transactions", st.groups},        {"copy_rows", st.copy_rows},
        {"filtered_by_sync_lsn", st.filtered},     {"skipped_conflicts", st.skipped_conflicts},
        {"ddl_replayed", st.ddl_replayed},         {"ddl_skipped", st.ddl_skipped},
        {"applied_lsn", st.applied_lsn.ToString()}};
    if (member != nullptr) fields.insert(fields.begin(), {"database", member->database});
    LogInfo("applier stopped", WithResourceUsage(std::move(fields)));
    if (s.ok() && StopRequested().load() && !options.stop_at.IsValid()) return Status::Ok();
    if (!qo.read_only) RecordLastError(q->get(), "apply", s);
    return s;
  }

  void AddFlags(CLI::App* sub) override {
    flags_.Register(sub, Need::kNone, Need::kRequired);
    apply_.Register(sub);
    cluster_.Register(sub);
  }

  MigrationFlags flags_;
  ClusterFlags cluster_;
  std::unique_ptr<MetricsServer> endpoint_;  // cluster mode: --metrics-addr, for every database
  ApplyFlags apply_;
};

}  // namespace

std::unique_ptr<Command> MakeApplyCommand(GlobalOptions* g) {
  return std::make_unique<ApplyCommand>(g, "apply", "replay the work queue onto the target");
}

}  // namespace pgbaton::tools

#include "tools/copy/copy_command.h"

#include <fmt/format.h>

#include <filesystem>

#include "common/conninfo.h"
#include "common/log.h"
#include "queue/work_queue.h"
#include "tools/common/identity.h"
#include "tools/common/last_error.h"
#include "tools/common/metrics_sampler.h"
#include "tools/config/connection.h"
#include "tools/config/queue_flags.h"
#include "tools/initial_copy/copy_engine.h"
#include "tools/initial_copy/copy_flags.h"
#include "tools/initial_copy/copy_options.h"
#include "tools/initial_copy/progress.h"

namespace pgbaton::tools {
namespace {

class CopyCommand : public Command {
 public:
  explicit CopyCommand(GlobalOptions* g) : global_(g) {}

  CLI::App* Register(CLI::App* app) override {
    CLI::App* sub = app->add_subcommand(
        "copy", "initial copy: publication, slot and snapshot, schema, data, indexes (resumable)");
    AddConnectionOptions(sub, &conn_, Need::kRequired, Need::kRequired);
    // On Kafka the copy's progress and per-table sync LSNs go to <topic>.meta.
    queue_.Register(sub, {.dir_help = "the work queue; its metadata records the copy's progress"});
    copy_.Register(sub);
    AddMetricsOptions(sub, &metrics_);
    return sub;
  }

  Status Run() override {
    copy::CopyOptions& o = copy_.options;
    o.name = global_->name;
    PGB_RETURN_IF_ERROR(queue_.Check("copy"));
    PGB_ASSIGN_OR_RETURN(o.source, SourceConninfo(conn_));
    PGB_ASSIGN_OR_RETURN(o.target, TargetConninfo(conn_));
    o.queue_dir = queue_.dir;
    queue::QueueOptions qo = queue_.ToOptions(global_->name);
    // Both servers and the queue must belong to this migration before anything is created; a
    // refused copy leaves no new queue directory behind (tools/common/identity.h).
    std::error_code ec;
    const bool existed = std::filesystem::exists(o.queue_dir, ec);
    MigrationCheck check = QueueCheck(qo, "copy");
    check.source_conninfo = o.source;
    check.target_conninfo = o.target;
    check.bind = true;
    check.record_on_target = false;  // after the schema restore: see CopyOptions::after_schema
    LiveSides live;
    PGB_ASSIGN_OR_RETURN(std::unique_ptr<queue::WorkQueue> q,
                         OpenCheckedQueue(
                             check, [&] { return queue::WorkQueue::Open(qo); }, false, &live));
    o.after_schema = [check, live] { return RecordOnTarget(check, live); };
    MetricsSamplerOptions mo;
    mo.name = global_->name;
    mo.source_conninfo = o.source;
    mo.queue = q.get();
    PGB_ASSIGN_OR_RETURN(VerbMetrics metrics, StartVerbMetrics(metrics_, mo));
    const bool json = copy_.ProgressJson();
    o.progress_json = json;
    LogInfo("copy starting", {{"source", DescribeConninfo(o.source)},
                              {"target", DescribeConninfo(o.target)},
                              {"jobs", o.jobs}});
    copy::Progress progress(stdout, json, o.progress_interval_ms);
    Status st = copy::RunCopy(o, q.get(), &progress);
    progress.Finish(st.ok());
    RecordLastError(q.get(), "copy", st);
    if (!st.ok() && !existed) {
      // Refused before the slot was made (versions, a target not empty, ...): a queue directory
      // holding nothing of value is not left behind to be mistaken for a migration later.
      auto slot = q->GetMeta(kIdentitySlotKey);
      if (slot.ok() && !slot->has_value()) {
        metrics = {};
        q.reset();
        std::filesystem::remove_all(o.queue_dir, ec);
      }
    }
    return st;
  }

 private:
  GlobalOptions* global_;
  copy::CopyFlags copy_;
  ConnectionFlags conn_;
  QueueFlags queue_;
  MetricsOptions metrics_;
};

}  // namespace

std::unique_ptr<Command> MakeCopyCommand(GlobalOptions* g) {
  return std::make_unique<CopyCommand>(g);
}

}  // namespace pgbaton::tools

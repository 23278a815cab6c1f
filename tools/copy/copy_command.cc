#include "tools/copy/copy_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>

#include "common/conninfo.h"
#include "common/log.h"
#include "queue/work_queue.h"
#include "tools/common/identity.h"
#include "tools/common/last_error.h"
#include "tools/common/metrics_sampler.h"
#include "tools/config/connection.h"
#include "tools/config/queue_flags.h"
#include "tools/copy/copy_engine.h"
#include "tools/copy/copy_options.h"
#include "tools/copy/progress.h"

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
    sub->add_option("--jobs,-j", o_.jobs, "parallel connections per side")
        ->capture_default_str()
        ->check(CLI::Range(1, 256));
    sub->add_option("--include", o_.include,
                    "copy only tables matching this glob on schema.table (repeatable)");
    sub->add_option("--exclude", o_.exclude, "leave out tables matching this glob (repeatable)");
    sub->add_flag("--text", o_.text,
                  "COPY every table in text format (by default a table whose every column type has "
                  "the same binary form on both majors, i.e. built-in types, enums and domains "
                  "over them, goes in binary; the others in text)");
    sub->add_flag("--no-owner", o_.no_owner, "restore the schema without ownership");
    sub->add_option("--maintenance-work-mem", o_.maintenance_work_mem,
                    "memory per index build on the target")
        ->capture_default_str();
    sub->add_option("--pg-dump", o_.pg_dump, "pg_dump to use (at least the source's major)")
        ->capture_default_str();
    sub->add_option("--psql", o_.psql, "psql to use")->capture_default_str();
    sub->add_option("--progress", progress_, "auto (bar on a terminal, else JSON lines), bar, json")
        ->capture_default_str()
        ->check(CLI::IsMember({"auto", "bar", "json"}));
    // Hidden: for tests and benchmarks.
    sub->add_option("--chunk-bytes", o_.chunk_bytes, "split tables larger than this")->group("");
    sub->add_option("--progress-interval-ms", o_.progress_interval_ms)->group("");
    sub->add_option("--crash-at", o_.crash_at)->group("");
    sub->add_option("--pause-at", o_.pause_at)->group("");
    AddMetricsOptions(sub, &metrics_);
    return sub;
  }

  Status Run() override {
    o_.name = global_->name;
    PGB_RETURN_IF_ERROR(queue_.Check("copy"));
    PGB_ASSIGN_OR_RETURN(o_.source, SourceConninfo(conn_));
    PGB_ASSIGN_OR_RETURN(o_.target, TargetConninfo(conn_));
    o_.queue_dir = queue_.dir;
    queue::QueueOptions qo = queue_.ToOptions(global_->name);
    // Both servers and the queue must belong to this migration before anything is created; a
    // refused copy leaves no new queue directory behind (tools/common/identity.h).
    std::error_code ec;
    const bool existed = std::filesystem::exists(o_.queue_dir, ec);
    MigrationCheck check = QueueCheck(qo, "copy");
    check.source_conninfo = o_.source;
    check.target_conninfo = o_.target;
    check.bind = true;
    check.record_on_target = false;  // after the schema restore: see CopyOptions::after_schema
    LiveSides live;
    PGB_ASSIGN_OR_RETURN(std::unique_ptr<queue::WorkQueue> q,
                         OpenCheckedQueue(
                             check, [&] { return queue::WorkQueue::Open(qo); }, false, &live));
    o_.after_schema = [check, live] { return RecordOnTarget(check, live); };
    MetricsSamplerOptions mo;
    mo.name = global_->name;
    mo.source_conninfo = o_.source;
    mo.queue = q.get();
    PGB_ASSIGN_OR_RETURN(VerbMetrics metrics, StartVerbMetrics(metrics_, mo));
    bool json = progress_ == "json" || (progress_ == "auto" && isatty(STDOUT_FILENO) == 0);
    o_.progress_json = json;
    LogInfo("copy starting", {{"source", DescribeConninfo(o_.source)},
                              {"target", DescribeConninfo(o_.target)},
                              {"jobs", o_.jobs}});
    copy::Progress progress(stdout, json, o_.progress_interval_ms);
    Status st = copy::RunCopy(o_, q.get(), &progress);
    progress.Finish(st.ok());
    RecordLastError(q.get(), "copy", st);
    if (!st.ok() && !existed) {
      // Refused before the slot was made (versions, a target not empty, ...): a queue directory
      // holding nothing of value is not left behind to be mistaken for a migration later.
      auto slot = q->GetMeta(kIdentitySlotKey);
      if (slot.ok() && !slot->has_value()) {
        metrics = {};
        q.reset();
        std::filesystem::remove_all(o_.queue_dir, ec);
      }
    }
    return st;
  }

 private:
  GlobalOptions* global_;
  copy::CopyOptions o_;
  ConnectionFlags conn_;
  QueueFlags queue_;
  std::string progress_ = "auto";
  MetricsOptions metrics_;
};

}  // namespace

std::unique_ptr<Command> MakeCopyCommand(GlobalOptions* g) {
  return std::make_unique<CopyCommand>(g);
}

}  // namespace pgbaton::tools

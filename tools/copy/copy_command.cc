#include "tools/copy/copy_command.h"

#include <fmt/format.h>

#include <filesystem>

#include "common/conninfo.h"
#include "common/log.h"
#include "queue/work_queue.h"
#include "tools/common/apply_flags.h"
#include "tools/common/cluster.h"
#include "tools/common/identity.h"
#include "tools/common/last_error.h"
#include "tools/common/metrics_sampler.h"
#include "tools/common/migration_flags.h"
#include "tools/globals_sync/sync.h"
#include "tools/initial_copy/copy_engine.h"
#include "tools/initial_copy/copy_flags.h"
#include "tools/initial_copy/copy_options.h"
#include "tools/initial_copy/progress.h"

namespace pgbaton::tools {
namespace {

class CopyCommand : public Command {
 public:
  using Command::Command;

  Status Run() override {
    PGB_RETURN_IF_ERROR(copy_.Resolve());
    PGB_ASSIGN_OR_RETURN(MigrationStart start, flags_.Start(global().name, "copy"));
    PGB_RETURN_IF_ERROR(globals_.CheckCluster(cluster_.enabled()));
    if (!cluster_.enabled()) return CopyOne(start, global().name, nullptr);
    // One database after another, each with all of --jobs: the cluster never has more than
    // --jobs copy sessions open on either side.
    PGB_ASSIGN_OR_RETURN(std::vector<ClusterMember> members,
                         ResolveCluster(cluster_, start, global().name, ClusterUse::kCreate));
    // First the roles and the databases themselves (owners, settings, ACLs), which the copy of
    // each database's objects needs on the target.
    if (!globals_.skip) {
      std::vector<std::string> names;
      for (const ClusterMember& m : members) names.push_back(m.database);
      PGB_ASSIGN_OR_RETURN(globals::DiffOptions diff, globals_.ToDiffOptions(names));
      PGB_RETURN_IF_ERROR(globals::SyncBeforeCopy(start.source, start.target, diff, "copy"));
    }
    PGB_RETURN_IF_ERROR(CheckTargetDatabases(members, start.target));
    PGB_RETURN_IF_ERROR(RecordClusterMembers(start.queue.dir, members));
    // One endpoint for the process; each database's series carry its name (label database).
    PGB_ASSIGN_OR_RETURN(endpoint_, StartMetricsServer(flags_.metrics));
    LogInfo("copy starting for a cluster", {{"databases", members.size()}});
    return ForEachMember(members, false, [&](const ClusterMember& m) {
      LogInfo("copy of a database starting", {{"database", m.database}, {"name", m.name}});
      return CopyOne(m.start, m.name, &m);
    });
  }

 private:
  Status CopyOne(const MigrationStart& start, const std::string& name,
                 const ClusterMember* member) {
    copy::CopyOptions o = copy_.options;
    o.name = name;
    o.source = start.source;
    o.target = start.target;
    o.queue_dir = member != nullptr ? start.queue.dir : flags_.queue.dir;
    o.ddl_replicate = ddl_ == "replicate";
    o.metrics = start.Series();
    std::error_code ec;
    const bool existed = std::filesystem::exists(o.queue_dir, ec);
    PGB_ASSIGN_OR_RETURN(std::unique_ptr<queue::WorkQueue> q,
                         copy::OpenCopyQueue(start.check, start.queue, &o));
    MetricsSamplerOptions mo = start.SamplerOptions(q.get());
    mo.target_conninfo.clear();  // nothing is applied during the copy: no applied_lsn or lag
    VerbMetrics metrics;
    if (member == nullptr) {
      PGB_ASSIGN_OR_RETURN(metrics, StartVerbMetrics(flags_.metrics, mo));
    } else {
      metrics = StartDatabaseMetrics(endpoint_.get(), mo);
    }
    const bool json = copy_.ProgressJson();
    o.progress_json = json;
    LogInfo("copy starting", {{"source", DescribeConninfo(o.source)},
                              {"target", DescribeConninfo(o.target)},
                              {"jobs", o.jobs}});
    copy::Progress progress(stdout, json, o.progress_interval_ms);
    if (member != nullptr) progress.SetDatabase(member->database);
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

  void AddFlags(CLI::App* sub) override {
    // On Kafka the copy's progress and per-table sync LSNs go to <topic>.meta.
    flags_.Register(sub, Need::kRequired, Need::kRequired,
                    {.dir_help = "the work queue; its metadata records the copy's progress"});
    copy_.Register(sub);
    cluster_.Register(sub);
    globals_.Register(sub, true);
    AddDdlFlag(sub, &ddl_);
  }

  MigrationFlags flags_;
  ClusterFlags cluster_;
  std::unique_ptr<MetricsServer> endpoint_;  // cluster mode: --metrics-addr, for every database
  globals::GlobalsFlags globals_;
  copy::CopyFlags copy_;
  std::string ddl_ = "stop";  // --ddl
};

}  // namespace

std::unique_ptr<Command> MakeCopyCommand(GlobalOptions* g) {
  return std::make_unique<CopyCommand>(
      g, "copy", "initial copy: publication, slot and snapshot, schema, data, indexes (resumable)");
}

}  // namespace pgbaton::tools

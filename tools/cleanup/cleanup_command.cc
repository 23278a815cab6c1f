#include "tools/cleanup/cleanup_command.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <vector>

#include "common/log.h"
#include "common/pg.h"
#include "queue/work_queue.h"
#include "tools/cleanup/cleanup.h"
#include "tools/common/cluster.h"
#include "tools/common/identity.h"
#include "tools/config/connection.h"
#include "tools/config/queue_flags.h"
#include "tools/initial_copy/ddl_capture.h"

namespace pgbaton::tools {
namespace {

void Say(const std::string& line) {
  std::fprintf(stdout, "%s\n", line.c_str());
  std::fflush(stdout);
}

class CleanupCommand : public Command {
 public:
  using Command::Command;

  Status Run() override {
    if (conn_.source.empty() && conn_.target.empty() && queue_.dir.empty()) {
      return Status::Error(ErrorCode::kUsage, "cleanup: nothing to clean",
                           "give --source, --target and/or --queue-dir");
    }
    std::string source_info, target_info;
    if (!conn_.source.empty()) {
      PGB_ASSIGN_OR_RETURN(source_info, SourceConninfo(conn_));
    }
    if (!conn_.target.empty()) {
      PGB_ASSIGN_OR_RETURN(target_info, TargetConninfo(conn_));
    }
    if (!cluster_.enabled()) return CleanOne(global().name, source_info, target_info, queue_.dir);

    // Cluster mode: each database of the migration's cluster.json, as the flags select them; a
    // side that no longer has a database (dropped on the source, never created on the target)
    // is skipped for it, and said so.
    if (queue_.dir.empty()) {
      return Status::Error(ErrorCode::kUsage, "cleanup --databases needs --queue-dir",
                           "the cluster migration's queue directory lists its databases");
    }
    MigrationStart start;
    start.source = source_info;
    start.target = target_info;
    start.queue = queue_.ToOptions(global().name);
    PGB_ASSIGN_OR_RETURN(std::vector<ClusterMember> members,
                         ResolveCluster(cluster_, start, global().name, ClusterUse::kCleanup));
    std::vector<std::string> on_source, on_target;
    if (!source_info.empty()) {
      PGB_ASSIGN_OR_RETURN(on_source, ListDatabases(source_info, "source", false));
    }
    if (!target_info.empty()) {
      PGB_ASSIGN_OR_RETURN(on_target, ListDatabases(target_info, "target", false));
    }
    auto has = [](const std::vector<std::string>& dbs, const std::string& db) {
      return std::binary_search(dbs.begin(), dbs.end(), db);
    };
    PGB_RETURN_IF_ERROR(ForEachMember(members, false, [&](const ClusterMember& m) {
      Say(fmt::format("database \"{}\" (migration \"{}\"):", m.database, m.name));
      std::string src = m.start.source, dst = m.start.target;
      if (!src.empty() && !has(on_source, m.database)) {
        Say("  the source has no such database any more: nothing to drop there");
        src.clear();
      }
      if (!dst.empty() && !has(on_target, m.database)) {
        Say("  the target has no such database: nothing to drop there");
        dst.clear();
      }
      return CleanOne(m.name, src, dst, m.start.queue.dir);
    }));
    PGB_ASSIGN_OR_RETURN(bool emptied, ForgetClusterMembers(queue_.dir, members));
    Say(fmt::format("cluster migration in \"{}\": {} database(s) cleaned{}", queue_.dir,
                    members.size(), emptied ? ", directory removed" : ""));
    return Status::Ok();
  }

 private:
  Status CleanOne(const std::string& name, const std::string& source_info,
                  const std::string& target_info, const std::string& queue_dir) {
    std::optional<PgConn> source, target;
    if (!source_info.empty()) {
      const std::string& info = source_info;
      PGB_ASSIGN_OR_RETURN(PgConn c, PgConn::Connect(info, {.label = "source"}));
      source = std::move(c);
      // After a read-only fence the old database defaults to read-only transactions: cleanup's
      // own statements are writes (DROP PUBLICATION, DROP TABLE), so its session opts out.
      PGB_RETURN_IF_ERROR(cleanup::PrepareCleanupSession(&*source));
    }
    if (!target_info.empty()) {
      const std::string& info = target_info;
      PGB_ASSIGN_OR_RETURN(PgConn c, PgConn::Connect(info, {.label = "target"}));
      target = std::move(c);
      PGB_RETURN_IF_ERROR(cleanup::PrepareCleanupSession(&*target));
    }
    std::optional<DatabaseIdentity> source_id, target_id;
    if (source) {
      PGB_ASSIGN_OR_RETURN(source_id, ReadDatabaseIdentity(*source));
    }
    if (target) {
      PGB_ASSIGN_OR_RETURN(target_id, ReadDatabaseIdentity(*target));
    }
    // Dropping "the target's" origins on the source itself would break the source's own.
    if (source_id && target_id) PGB_RETURN_IF_ERROR(CheckDistinct(*source_id, *target_id));
    // What carries the migration's name on a server it was not made for may be another
    // migration's: check the servers against what the queue and the target recorded.
    {
      std::unique_ptr<queue::WorkQueue> queue;
      std::string queue_label = fmt::format("queue \"{}\"", queue_dir);
      if (!queue_dir.empty() && cleanup::LooksLikeQueue(queue_dir)) {
        queue::QueueOptions qo = QueueOptionsFor(name, queue_dir);
        qo.read_only = true;
        qo.create_if_missing = false;
        auto q = queue::WorkQueue::Open(qo);
        if (q.ok()) {
          queue = std::move(*q);
        } else {
          // An unreadable queue (another format, damaged) is still removed: the operator named it.
          Say(fmt::format("{}: cannot read the identity it recorded ({}); not checked", queue_label,
                          q.status().message()));
        }
      }
      PGB_ASSIGN_OR_RETURN(std::vector<std::string> checked,
                           CheckCleanupSides(name, queue_label, queue.get(), source_id, target_id,
                                             target ? &*target : nullptr, force_));
      for (const auto& line : checked) Say(line);
    }
    // Refuse before dropping anything while the migration is still running.
    if (source) PGB_RETURN_IF_ERROR(cleanup::CheckSlotNotActive(&*source, name));
    if (!queue_dir.empty()) PGB_RETURN_IF_ERROR(cleanup::CheckQueueRemovable(queue_dir));

    // Every step is idempotent ("already gone"), so a cleanup that stops half-way is finished
    // by running it again. The slot goes last on the source: while anything else is left, the
    // slot still names the migration, and a failure before it leaves the full set for the retry.
    auto step = [](Result<std::string> r) -> Result<std::string> {
      if (r.ok()) {
        Say(*r);
        return r;
      }
      return r.status().WithHint(
          (r.status().hint().empty() ? "" : r.status().hint() + "; ") +
          "the steps printed above are done; fix this and run the same cleanup again: it skips "
          "what is already gone");
    };
    if (source) {
      PGB_RETURN_IF_ERROR(step(cleanup::DropPublication(&*source, name)).status());
      PGB_RETURN_IF_ERROR(step(copy::RemoveDdlCapture(*source)).status());
      PGB_RETURN_IF_ERROR(step(cleanup::DropSentinel(&*source, true)).status());
      PGB_RETURN_IF_ERROR(step(cleanup::DropSlot(&*source, name)).status());
    }
    if (target) {
      PGB_RETURN_IF_ERROR(step(cleanup::DropOrigins(&*target, name)).status());
      PGB_RETURN_IF_ERROR(step(ForgetMigration(*target, name)).status());
      PGB_RETURN_IF_ERROR(step(cleanup::DropPauseRequests(&*target, name)).status());
      PGB_RETURN_IF_ERROR(step(cleanup::DropProgress(&*target, name)).status());
      PGB_RETURN_IF_ERROR(step(cleanup::DropSentinel(&*target, false)).status());
    }
    if (!queue_dir.empty()) PGB_RETURN_IF_ERROR(step(cleanup::RemoveQueueDir(queue_dir)).status());
    LogInfo("cleanup done", {{"name", name}});
    return Status::Ok();
  }

  queue::QueueOptions QueueOptionsFor(const std::string& name, const std::string& dir) const {
    queue::QueueOptions qo = queue_.ToOptions(name);
    qo.dir = dir;
    return qo;
  }

  void AddFlags(CLI::App* sub) override {
    AddConnectionOptions(sub, &conn_);
    cluster_.Register(sub);
    queue_.Register(sub, {.kafka = false, .dir_help = "the migration's queue directory (removed)"});
    sub->add_flag("--force", force_,
                  "clean up even where --source or --target is another cluster or database than "
                  "the queue or the target's pgbaton.migration records for this migration");
  }

  ConnectionFlags conn_;
  QueueFlags queue_;
  ClusterFlags cluster_;
  bool force_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeCleanupCommand(GlobalOptions* g) {
  return std::make_unique<CleanupCommand>(
      g, "cleanup", "drop the slot, publication, origins, progress rows and queue of a migration");
}

}  // namespace pgbaton::tools

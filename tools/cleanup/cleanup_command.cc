#include "tools/cleanup/cleanup_command.h"

#include <fmt/format.h>

#include <cstdio>
#include <optional>

#include "common/log.h"
#include "common/pg.h"
#include "tools/cleanup/cleanup.h"
#include "tools/common/identity.h"
#include "tools/config/connection.h"

namespace pgbaton::tools {
namespace {

void Say(const std::string& line) {
  std::fprintf(stdout, "%s\n", line.c_str());
  std::fflush(stdout);
}

class CleanupCommand : public Command {
 public:
  explicit CleanupCommand(GlobalOptions* g) : global_(g) {}

  CLI::App* Register(CLI::App* app) override {
    CLI::App* sub = app->add_subcommand(
        "cleanup", "drop the slot, publication, origins, progress rows and queue of a migration");
    AddConnectionOptions(sub, &conn_);
    sub->add_option("--queue-dir", queue_dir_, "the migration's queue directory (removed)");
    return sub;
  }

  Status Run() override {
    const std::string& name = global_->name;
    if (conn_.source.empty() && conn_.target.empty() && queue_dir_.empty()) {
      return Status::Error(ErrorCode::kUsage, "cleanup: nothing to clean",
                           "give --source, --target and/or --queue-dir");
    }
    std::optional<PgConn> source, target;
    if (!conn_.source.empty()) {
      PGB_ASSIGN_OR_RETURN(std::string info, SourceConninfo(conn_));
      PGB_ASSIGN_OR_RETURN(PgConn c, PgConn::Connect(info, {.label = "source"}));
      source = std::move(c);
    }
    if (!conn_.target.empty()) {
      PGB_ASSIGN_OR_RETURN(std::string info, TargetConninfo(conn_));
      PGB_ASSIGN_OR_RETURN(PgConn c, PgConn::Connect(info, {.label = "target"}));
      target = std::move(c);
    }
    if (source && target) {
      // Dropping "the target's" origins on the source itself would break the source's own.
      PGB_ASSIGN_OR_RETURN(DatabaseIdentity s, ReadDatabaseIdentity(*source));
      PGB_ASSIGN_OR_RETURN(DatabaseIdentity t, ReadDatabaseIdentity(*target));
      PGB_RETURN_IF_ERROR(CheckDistinct(s, t));
    }
    // Refuse before dropping anything while the migration is still running.
    if (source) PGB_RETURN_IF_ERROR(CheckSlotNotActive(&*source, name));
    if (!queue_dir_.empty()) PGB_RETURN_IF_ERROR(CheckQueueRemovable(queue_dir_));

    if (source) {
      PGB_ASSIGN_OR_RETURN(std::string slot, DropSlot(&*source, name));
      Say(slot);
      PGB_ASSIGN_OR_RETURN(std::string pub, DropPublication(&*source, name));
      Say(pub);
      PGB_ASSIGN_OR_RETURN(std::string sentinel, DropSentinel(&*source, true));
      Say(sentinel);
    }
    if (target) {
      PGB_ASSIGN_OR_RETURN(std::string origins, DropOrigins(&*target, name));
      Say(origins);
      PGB_ASSIGN_OR_RETURN(std::string record, ForgetMigration(*target, name));
      Say(record);
      PGB_ASSIGN_OR_RETURN(std::string progress, DropProgress(&*target, name));
      Say(progress);
      PGB_ASSIGN_OR_RETURN(std::string sentinel, DropSentinel(&*target, false));
      Say(sentinel);
    }
    if (!queue_dir_.empty()) {
      PGB_ASSIGN_OR_RETURN(std::string q, RemoveQueueDir(queue_dir_));
      Say(q);
    }
    LogInfo("cleanup done", {{"name", name}});
    return Status::Ok();
  }

 private:
  GlobalOptions* global_;
  ConnectionFlags conn_;
  std::string queue_dir_;
};

}  // namespace

std::unique_ptr<Command> MakeCleanupCommand(GlobalOptions* g) {
  return std::make_unique<CleanupCommand>(g);
}

}  // namespace pgbaton::tools

#include "tools/verify/verify_command.h"

#include <fmt/format.h>

#include <cstdio>

#include "common/conninfo.h"
#include "common/log.h"
#include "common/pg.h"
#include "tools/common/identity.h"
#include "tools/common/signals.h"
#include "tools/config/connection.h"
#include "tools/verify/verify.h"

namespace pgbaton::tools {
namespace {

class VerifyCommand : public Command {
 public:
  using Command::Command;

  Status Run() override {
    InstallSignalHandlers();
    options_.stop = &StopRequested();
    PGB_ASSIGN_OR_RETURN(std::string src_info, SourceConninfo(conn_));
    PGB_ASSIGN_OR_RETURN(std::string dst_info, TargetConninfo(conn_));
    // The same database on both sides would "verify" trivially; a target filled from another
    // source (its pgbaton.migration record says which) is not this migration's.
    MigrationCheck check;
    check.name = global().name;
    check.verb = "verify";
    check.source_conninfo = src_info;
    check.target_conninfo = dst_info;
    PGB_ASSIGN_OR_RETURN(LiveSides live, CheckSides(check));
    PGB_RETURN_IF_ERROR(CheckQueue(check, live, /*queue=*/nullptr));
    PGB_ASSIGN_OR_RETURN(PgConn source, PgConn::Connect(src_info, {.label = "source"}));
    PGB_ASSIGN_OR_RETURN(PgConn target, PgConn::Connect(dst_info, {.label = "target"}));
    LogInfo("verify started", {{"source", source.description()},
                               {"target", target.description()},
                               {"name", global().name}});
    PGB_ASSIGN_OR_RETURN(verify::VerifyReport report,
                         verify::VerifyTables(&source, &target, options_));
    std::string text = json_ ? verify::FormatReportJson(report) : verify::FormatReport(report);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    int differ = report.differing_tables();
    if (differ == 0) return Status::Ok();
    return Status::Error(
        ErrorCode::kVerifyMismatch,
        fmt::format("verify: {} of {} tables differ between source and target", differ,
                    report.tables.size()),
        "if writers were not fenced, or the target was still applying, the difference may be "
        "in flight: verify during cutover (writes fenced, queue drained) or with the target "
        "paused at a known LSN");
  }

 private:
  void AddFlags(CLI::App* sub) override {
    AddConnectionOptions(sub, &conn_);
    sub->add_option("--tables", options_.tables,
                    "only these tables (schema.table, comma-separated)")
        ->delimiter(',');
    sub->add_option("--chunk-rows", options_.chunk_rows,
                    "tables with more rows are compared per primary-key range of this many rows")
        ->capture_default_str();
    sub->add_flag("--json", json_, "print the report as JSON");
  }

  ConnectionFlags conn_;
  verify::VerifyOptions options_;
  bool json_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeVerifyCommand(GlobalOptions* g) {
  return std::make_unique<VerifyCommand>(
      g, "verify", "compare row counts and checksums per table (per key range for big ones)");
}

}  // namespace pgbaton::tools

#include "tools/verify/verify_command.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "common/conninfo.h"
#include "common/log.h"
#include "common/pg.h"
#include "tools/common/cluster.h"
#include "tools/common/identity.h"
#include "tools/common/signals.h"
#include "tools/config/connection.h"
#include "tools/initial_copy/large_objects.h"
#include "tools/verification/at_lsn.h"
#include "tools/verification/verify.h"

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
    // One database (a member without a name), or each of the cluster's.
    std::vector<ClusterMember> members;
    if (!cluster_.enabled()) {
      ClusterMember one;
      one.name = global().name;
      one.start.source = src_info;
      one.start.target = dst_info;
      members.push_back(std::move(one));
    } else {
      MigrationStart start;
      start.source = src_info;
      start.target = dst_info;
      PGB_ASSIGN_OR_RETURN(members,
                           ResolveCluster(cluster_, start, global().name, ClusterUse::kServers));
    }
    if (sync_los_) {
      auto sync = [&](const ClusterMember& m) -> Status {
        PGB_RETURN_IF_ERROR(CheckPair(m.name, m.start.source, m.start.target));
        return SyncLargeObjects(m, /*dry_run=*/false);
      };
      return cluster_.enabled() ? ForEachMember(members, false, sync) : sync(members.front());
    }
    std::vector<std::pair<std::string, verify::VerifyReport>> reports;
    if (!cluster_.enabled()) {
      PGB_ASSIGN_OR_RETURN(verify::VerifyReport r, VerifyOne(global().name, src_info, dst_info));
      reports.emplace_back("", std::move(r));
    } else {
      PGB_RETURN_IF_ERROR(ForEachMember(members, false, [&](const ClusterMember& m) -> Status {
        PGB_ASSIGN_OR_RETURN(verify::VerifyReport r,
                             VerifyOne(m.name, m.start.source, m.start.target));
        reports.emplace_back(m.database, std::move(r));
        return Status::Ok();
      }));
    }
    int differ = 0;
    size_t tables = 0;
    nlohmann::json cluster_json = {{"match", true}, {"databases", nlohmann::json::array()}};
    for (const auto& [database, report] : reports) {
      differ += report.differing_tables();
      tables += report.tables.size();
      if (!cluster_.enabled()) {
        std::string text = json_ ? verify::FormatReportJson(report) : verify::FormatReport(report);
        std::fwrite(text.data(), 1, text.size(), stdout);
      } else if (json_) {
        nlohmann::json j = verify::ReportJson(report);
        j["database"] = database;
        cluster_json["databases"].push_back(std::move(j));
      } else {
        std::string text =
            fmt::format("database \"{}\":\n", database) + verify::FormatReport(report);
        std::fwrite(text.data(), 1, text.size(), stdout);
      }
    }
    if (cluster_.enabled() && json_) {
      cluster_json["match"] = differ == 0;
      std::string text = cluster_json.dump(2) + "\n";
      std::fwrite(text.data(), 1, text.size(), stdout);
    }
    std::fflush(stdout);
    if (los_) {
      // Every database's large objects are compared; the first difference is the outcome when
      // the tables match.
      Status first_lo;
      for (const ClusterMember& m : members) {
        Status lo = SyncLargeObjects(m, /*dry_run=*/true);
        if (lo.ok()) continue;
        if (lo.code() != ErrorCode::kVerifyMismatch) return lo;
        if (first_lo.ok()) first_lo = lo;
      }
      if (!first_lo.ok() && differ == 0) return first_lo;
    }
    if (differ == 0) return Status::Ok();
    return Status::Error(
        ErrorCode::kVerifyMismatch,
        fmt::format("verify: {} of {} tables differ between source and target", differ, tables),
        at_lsn_ ? "both sides were read at the same source LSN, so these rows really differ: "
                  "something wrote to the target behind the applier's back, or a change was "
                  "lost; see each table's differing keys above"
                : "if writers were not fenced, or the target was still applying, the difference "
                  "may be in flight: run verify --at-lsn (reads both sides at one source LSN "
                  "while writes go on), or verify during cutover (writes fenced, queue "
                  "drained)");
  }

 private:
  // The same database on both sides would "verify" trivially; a target filled from another
  // source (its pgbaton.migration record says which) is not this migration's.
  static Status CheckPair(const std::string& name, const std::string& src_info,
                          const std::string& dst_info) {
    MigrationCheck check;
    check.name = name;
    check.verb = "verify";
    check.source_conninfo = src_info;
    check.target_conninfo = dst_info;
    PGB_ASSIGN_OR_RETURN(LiveSides live, CheckSides(check));
    return CheckQueue(check, live, /*queue=*/nullptr);
  }

  Result<verify::VerifyReport> VerifyOne(const std::string& name, const std::string& src_info,
                                         const std::string& dst_info) {
    PGB_RETURN_IF_ERROR(CheckPair(name, src_info, dst_info));
    verify::VerifyReport report;
    if (at_lsn_) {
      // Both sides at one source LSN while writers go on: the running applier holds for the
      // moment the target's snapshot takes (tools/verification/at_lsn.h).
      verify::AtLsnOptions ao;
      ao.name = name;
      ao.source = src_info;
      ao.target = dst_info;
      ao.pause_timeout = std::chrono::seconds(pause_timeout_s_);
      ao.answer_timeout = std::min(ao.answer_timeout, ao.pause_timeout);
      LogInfo("verify started at one source LSN", {{"name", name}});
      PGB_ASSIGN_OR_RETURN(report, verify::VerifyAtLsn(ao, options_));
    } else {
      PGB_ASSIGN_OR_RETURN(PgConn source, PgConn::Connect(src_info, {.label = "source"}));
      PGB_ASSIGN_OR_RETURN(PgConn target, PgConn::Connect(dst_info, {.label = "target"}));
      LogInfo("verify started",
              {{"source", source.description()}, {"target", target.description()}, {"name", name}});
      PGB_ASSIGN_OR_RETURN(report, verify::VerifyTables(&source, &target, options_));
    }
    return report;
  }

  // --large-objects (dry_run: compare only) and --sync-large-objects: large objects compared by
  // OID, owner, ACL, comment and md5 of contents (tools/initial_copy/large_objects.h), a line
  // per difference and a summary on stdout.
  // `m`: the database (its name empty for a single-database verify).
  Status SyncLargeObjects(const ClusterMember& m, bool dry_run) {
    copy::LargeObjectSyncOptions lo;
    lo.source = m.start.source;
    lo.target = m.start.target;
    lo.jobs = lo_jobs_;
    lo.no_owner = no_owner_;
    lo.dry_run = dry_run;
    lo.application_name = "pgbaton verify";
    PGB_ASSIGN_OR_RETURN(copy::LargeObjectSyncReport r, copy::SyncLargeObjects(lo));
    std::string text;
    if (json_) {
      nlohmann::json j = {{"large_objects",
                           {{"source", r.source_objects},
                            {"target", r.target_objects},
                            {"missing", r.missing},
                            {"differing", r.differing},
                            {"extra", r.extra},
                            {"synced", !dry_run},
                            {"examples", r.examples}}}};
      if (!m.database.empty()) j["database"] = m.database;
      text = j.dump() + "\n";
    } else {
      const std::string prefix =
          m.database.empty() ? "" : fmt::format("database \"{}\": ", m.database);
      for (const auto& e : r.examples) text += prefix + e + "\n";
      text += prefix + (dry_run ? "large objects compared: " : "large objects synced: ") +
              r.Summary(dry_run) + "\n";
    }
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    if (!dry_run || r.differences() == 0) return Status::Ok();
    return Status::Error(
        ErrorCode::kVerifyMismatch,
        fmt::format("verify: {}{} large objects differ between source and target ({} missing on "
                    "target, {} differing, {} only on target)",
                    m.database.empty() ? "" : fmt::format("database \"{}\": ", m.database),
                    r.differences(), r.missing, r.differing, r.extra),
        "logical decoding does not carry large objects: run verify --sync-large-objects to "
        "bring them over (cutover does it inside the fence)");
  }

  void AddFlags(CLI::App* sub) override {
    AddConnectionOptions(sub, &conn_);
    cluster_.Register(sub);
    sub->add_option("--tables", options_.tables,
                    "only these tables (schema.table, comma-separated)")
        ->delimiter(',');
    sub->add_option("--chunk-rows", options_.chunk_rows,
                    "tables with more rows are compared per primary-key range of this many rows")
        ->capture_default_str();
    sub->add_flag("--json", json_, "print the report as JSON");
    sub->add_flag("--at-lsn", at_lsn_,
                  "compare both sides at one source LSN while writes go on: the running "
                  "applier (run or migrate) holds there for a moment");
    sub->add_flag("--large-objects", los_,
                  "also compare large objects (OID, owner, ACL, comment, md5 of contents)");
    sub->add_flag("--sync-large-objects", sync_los_,
                  "instead of comparing tables, bring the target's large objects level with the "
                  "source's (create, replace, unlink) and print what was done");
    sub->add_flag("--no-owner", no_owner_,
                  "large objects: the copy ran with --no-owner, owners are not compared or set");
    sub->add_option("--large-object-jobs", lo_jobs_,
                    "connection pairs comparing and copying large objects")
        ->capture_default_str()
        ->check(CLI::Range(1, 64));
    sub->add_option("--pause-timeout", pause_timeout_s_,
                    "--at-lsn: seconds the applier may take to apply up to that LSN")
        ->capture_default_str()
        ->check(CLI::Range(1, 86400));
  }

  ConnectionFlags conn_;
  ClusterFlags cluster_;
  verify::VerifyOptions options_;
  bool json_ = false;
  bool at_lsn_ = false;
  int pause_timeout_s_ = 300;
  bool los_ = false;
  bool sync_los_ = false;
  bool no_owner_ = false;
  int lo_jobs_ = 4;
};

}  // namespace

std::unique_ptr<Command> MakeVerifyCommand(GlobalOptions* g) {
  return std::make_unique<VerifyCommand>(
      g, "verify", "compare row counts and checksums per table (per key range for big ones)");
}

}  // namespace pgbaton::tools

#include "tools/preflight/preflight_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "common/pg.h"
#include "tools/common/apply_flags.h"
#include "tools/common/cluster.h"
#include "tools/config/connection.h"
#include "tools/preflight_checks/preflight.h"

namespace pgbaton::tools {
namespace {

class PreflightCommand : public Command {
 public:
  using Command::Command;

  Status Run() override {
    options_.ddl_replicate = ddl_ == "replicate";
    PGB_ASSIGN_OR_RETURN(std::string source, SourceConninfo(conn_));
    PGB_ASSIGN_OR_RETURN(std::string target, TargetConninfo(conn_));
    std::vector<std::pair<std::string, preflight::PreflightReport>> reports;
    if (!cluster_.enabled()) {
      reports.emplace_back("", Check(global().name, source, target));
    } else {
      MigrationStart start;
      start.source = source;
      start.target = target;
      PGB_ASSIGN_OR_RETURN(std::vector<ClusterMember> members,
                           ResolveCluster(cluster_, start, global().name, ClusterUse::kServers));
      PGB_ASSIGN_OR_RETURN(preflight::Finding slots, ClusterSlots(source, members.size()));
      for (const ClusterMember& m : members) {
        reports.emplace_back(m.database, Check(m.name, m.start.source, m.start.target));
        // Each database needs a slot and a walsender of its own: enough for one is not enough.
        reports.back().second.findings.push_back(slots);
      }
    }
    int blockers = 0;
    Status connection_error;
    nlohmann::json cluster = {{"databases", nlohmann::json::array()}};
    for (const auto& [database, report] : reports) {
      blockers += report.CountOf(preflight::Severity::kError);
      if (connection_error.ok()) connection_error = report.connection_error;
      if (json_ && cluster_.enabled()) {
        nlohmann::json j = ReportJson(report);
        j["database"] = database;
        cluster["databases"].push_back(std::move(j));
      } else if (json_) {
        fmt::print("{}\n", ReportJson(report).dump(2));
      } else {
        if (cluster_.enabled()) fmt::print("database \"{}\":\n", database);
        PrintHuman(report);
      }
    }
    if (json_ && cluster_.enabled()) {
      cluster["ready"] = blockers == 0 && connection_error.ok();
      fmt::print("{}\n", cluster.dump(2));
    }
    std::fflush(stdout);
    if (!connection_error.ok()) {
      // Already printed as a finding: return the code with an empty message so main adds nothing.
      return Status::Error(connection_error.code(), "preflight could not reach a cluster");
    }
    if (blockers > 0) {
      return Status::Error(ErrorCode::kPreflightFailed,
                           fmt::format("preflight found {} blocker(s)", blockers),
                           "fix each blocker above and run preflight again");
    }
    return Status::Ok();
  }

 private:
  preflight::PreflightReport Check(const std::string& name, const std::string& source,
                                   const std::string& target) const {
    preflight::PreflightOptions o = options_;
    o.name = name;
    o.source = source;
    o.target = target;
    return preflight::RunPreflight(o);
  }

  // A cluster migration holds one slot and one walsender per database on the source at once.
  static Result<preflight::Finding> ClusterSlots(const std::string& source, size_t databases) {
    PGB_ASSIGN_OR_RETURN(PgConn c, PgConn::Connect(source, {.label = "source"}));
    PGB_ASSIGN_OR_RETURN(
        PgResult r,
        c.Exec("SELECT current_setting('max_replication_slots')::int - (SELECT count(*) FROM "
               "pg_catalog.pg_replication_slots), current_setting('max_wal_senders')::int - "
               "(SELECT count(*) FROM pg_catalog.pg_stat_replication)"));
    const int64_t slots = r.GetInt(0, 0);
    const int64_t senders = r.GetInt(0, 1);
    preflight::Finding f;
    f.check = "cluster.replication_slots";
    const auto need = static_cast<int64_t>(databases);
    if (slots >= need && senders >= need) {
      f.severity = preflight::Severity::kOk;
      f.message = fmt::format("{} free replication slots and {} free walsenders for {} databases",
                              slots, senders, databases);
      return f;
    }
    f.severity = preflight::Severity::kError;
    f.message = fmt::format(
        "the cluster migration needs a replication slot and a walsender per "
        "database ({}); the source has {} free slots and {} free walsenders",
        databases, slots, senders);
    f.fix = fmt::format(
        "raise max_replication_slots and max_wal_senders on the source by at "
        "least {} (a restart), or migrate fewer databases at once",
        std::max(need - slots, need - senders));
    return f;
  }

  void AddFlags(CLI::App* sub) override {
    AddConnectionOptions(sub, &conn_, Need::kRequired, Need::kRequired);
    cluster_.Register(sub);
    sub->add_flag("--json", json_, "print the findings as one JSON document");
    sub->add_flag("--no-owner", options_.no_owner,
                  "check as for copy --no-owner: the schema's owners need not exist on the "
                  "target (grantees still must)");
    AddDdlFlag(sub, &ddl_);
  }

  static void PrintHuman(const preflight::PreflightReport& r) {
    bool color = isatty(STDOUT_FILENO) != 0;
    auto paint = [color](const char* code, std::string_view text) {
      return color ? fmt::format("\033[{}m{}\033[0m", code, text) : std::string(text);
    };
    std::string src = r.source.reachable ? fmt::format("{} (PostgreSQL {})", r.source.description,
                                                       r.source.version)
                                         : "unreachable";
    std::string tgt = r.target.reachable ? fmt::format("{} (PostgreSQL {})", r.target.description,
                                                       r.target.version)
                                         : "unreachable";
    fmt::print("pgbaton preflight\n  source: {}\n  target: {}\n\n", src, tgt);
    for (const preflight::Finding& f : r.findings) {
      std::string tag;
      switch (f.severity) {
        case preflight::Severity::kOk:
          tag = paint("32", "ok   ");
          break;
        case preflight::Severity::kInfo:
          tag = paint("36", "info ");
          break;
        case preflight::Severity::kWarning:
          tag = paint("33", "warn ");
          break;
        case preflight::Severity::kError:
          tag = paint("31", "FAIL ");
          break;
      }
      fmt::print("  {} {}\n", tag, f.message);
      if (!f.fix.empty()) fmt::print("        fix: {}\n", f.fix);
    }
    int errors = r.CountOf(preflight::Severity::kError);
    int warnings = r.CountOf(preflight::Severity::kWarning);
    if (r.CanStart()) {
      fmt::print("\nresult: ready, a migration can start ({} warning(s))\n", warnings);
    } else {
      fmt::print("\nresult: not ready, {} blocker(s) and {} warning(s)\n", errors, warnings);
    }
    std::fflush(stdout);
  }

  static nlohmann::json ReportJson(const preflight::PreflightReport& r) {
    nlohmann::json j;
    auto server = [](const preflight::ServerInfo& s) {
      nlohmann::json o;
      o["reachable"] = s.reachable;
      if (s.reachable) {
        o["description"] = s.description;
        o["version"] = s.version;
        o["version_num"] = s.version_num;
      }
      return o;
    };
    j["ready"] = r.CanStart();
    j["source"] = server(r.source);
    j["target"] = server(r.target);
    j["errors"] = r.CountOf(preflight::Severity::kError);
    j["warnings"] = r.CountOf(preflight::Severity::kWarning);
    j["findings"] = nlohmann::json::array();
    for (const preflight::Finding& f : r.findings) {
      nlohmann::json o;
      o["check"] = f.check;
      o["severity"] = preflight::SeverityName(f.severity);
      o["message"] = f.message;
      if (!f.fix.empty()) o["fix"] = f.fix;
      if (!f.object.empty()) o["object"] = f.object;
      j["findings"].push_back(o);
    }
    if (!r.connection_error.ok()) {
      j["error"] = {{"code", ErrorCodeName(r.connection_error.code())},
                    {"exit_code", r.connection_error.exit_code()},
                    {"message", r.connection_error.message()}};
    }
    return j;
  }

  ConnectionFlags conn_;
  ClusterFlags cluster_;
  preflight::PreflightOptions options_;
  std::string ddl_ = "stop";  // --ddl: replicate makes the DDL capture a requirement
  bool json_ = false;
};

}  // namespace

std::unique_ptr<Command> MakePreflightCommand(GlobalOptions* global) {
  return std::make_unique<PreflightCommand>(
      global, "preflight",
      "check both clusters and list every blocker with its fix (exit 0 only when "
      "a migration can start)");
}

}  // namespace pgbaton::tools

#include "tools/preflight/preflight_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "tools/common/apply_flags.h"
#include "tools/config/connection.h"
#include "tools/preflight_checks/preflight.h"

namespace pgbaton::tools {
namespace {

class PreflightCommand : public Command {
 public:
  using Command::Command;

  Status Run() override {
    options_.name = global().name;
    options_.ddl_replicate = ddl_ == "replicate";
    PGB_ASSIGN_OR_RETURN(options_.source, SourceConninfo(conn_));
    PGB_ASSIGN_OR_RETURN(options_.target, TargetConninfo(conn_));
    preflight::PreflightReport report = preflight::RunPreflight(options_);
    if (json_) {
      PrintJson(report);
    } else {
      PrintHuman(report);
    }
    if (!report.connection_error.ok()) {
      // Already printed as a finding: return the code with an empty message so main adds nothing.
      return Status::Error(report.connection_error.code(), "preflight could not reach a cluster");
    }
    if (!report.CanStart()) {
      return Status::Error(
          ErrorCode::kPreflightFailed,
          fmt::format("preflight found {} blocker(s)", report.CountOf(preflight::Severity::kError)),
          "fix each blocker above and run preflight again");
    }
    return Status::Ok();
  }

 private:
  void AddFlags(CLI::App* sub) override {
    AddConnectionOptions(sub, &conn_, Need::kRequired, Need::kRequired);
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

  static void PrintJson(const preflight::PreflightReport& r) {
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
    fmt::print("{}\n", j.dump(2));
    std::fflush(stdout);
  }

  ConnectionFlags conn_;
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

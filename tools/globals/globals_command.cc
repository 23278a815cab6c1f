#include "tools/globals/globals_command.h"

#include <fmt/format.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "tools/config/connection.h"
#include "tools/globals_sync/diff.h"
#include "tools/globals_sync/sync.h"

namespace pgbaton::tools {
namespace {

using globals::Action;
using globals::ActionLine;
using globals::Drift;

void Say(const std::string& line) {
  std::fprintf(stdout, "%s\n", line.c_str());
  std::fflush(stdout);
}

nlohmann::json ToJson(const Drift& d) {
  nlohmann::json changes = nlohmann::json::array();
  for (const Action& a : d.actions) {
    changes.push_back(
        {{"object", a.object},
         {"change", a.change},
         {"detail", a.detail},
         {"phase", a.phase == Action::Phase::kCreateDatabase ? "create_database" : "transaction"}});
  }
  nlohmann::json blockers = nlohmann::json::array();
  for (const Status& s : d.blockers) {
    blockers.push_back({{"code", std::string(ErrorCodeName(s.code()))},
                        {"exit_code", s.exit_code()},
                        {"message", s.message()},
                        {"hint", s.hint()}});
  }
  return {{"level", d.level()},
          {"changes", changes},
          {"warnings", d.warnings},
          {"blockers", blockers},
          {"notes", d.notes},
          {"held_logins", d.held_logins},
          {"passwords_not_carried", d.passwords_not_carried}};
}

class GlobalsCommand : public Command {
 public:
  using Command::Command;

  Status Run() override {
    globals::SyncOptions options;
    PGB_RETURN_IF_ERROR(Options(&options.diff));
    PGB_ASSIGN_OR_RETURN(options.source, SourceConninfo(conn_));
    PGB_ASSIGN_OR_RETURN(options.target, TargetConninfo(conn_));
    options.apply = apply_;
    globals::SyncOutcome out;
    Status st = globals::SyncGlobals(options, &out);
    if (out.sides.empty()) return st;  // nothing was compared
    if (!out.drift.blockers.empty()) {
      Report(out.sides, out.drift, false);
      return st;
    }
    if (!apply_) {
      Report(out.sides, out.drift, false);
      if (!st.ok() || out.drift.level()) return st;
      return Status::Error(ErrorCode::kGlobalsDrift,
                           fmt::format("globals: {} difference(s) between source and target",
                                       out.drift.actions.size()),
                           "run pgbaton globals --apply to bring the target level");
    }
    if (!out.applied) {
      for (const Action& a : out.done) Say("done: " + ActionLine(a));
      return st;
    }
    Report(out.sides, out.drift, true, out.rest ? &*out.rest : nullptr);
    if (st.ok()) {
      LogInfo("globals applied", {{"changes", static_cast<int64_t>(out.drift.actions.size())}});
    }
    return st;
  }

 private:
  Status Options(globals::DiffOptions* o) {
    std::optional<std::vector<std::string>> databases;
    if (databases_ != "all") {
      databases = globals::SplitList(databases_);
      if (databases->empty()) {
        return Status::Error(ErrorCode::kUsage, "--databases must be all or a list a,b,c",
                             "e.g. --databases app,billing");
      }
    }
    PGB_ASSIGN_OR_RETURN(*o, flags_.ToDiffOptions(std::move(databases)));
    return Status::Ok();
  }

  void Report(const std::string& sides, const Drift& d, bool applied, const Drift* rest = nullptr) {
    if (json_) {
      nlohmann::json doc = ToJson(d);
      doc["applied"] = applied;
      if (rest) doc["level_after"] = rest->level();
      Say(doc.dump(2));
      return;
    }
    Say("globals: " + sides);
    for (const Action& a : d.actions) Say(std::string(applied ? "done: " : "") + ActionLine(a));
    for (const std::string& n : d.notes) Say("note: " + n);
    for (const std::string& w : d.warnings) Say("warning: " + w);
    for (const Status& b : d.blockers) {
      Say("refused: " + b.message());
      if (!b.hint().empty()) Say("  hint: " + b.hint());
    }
    if (!d.blockers.empty()) return;
    if (applied) {
      Say(fmt::format("applied {} change(s); the target is {}", d.actions.size(),
                      rest && rest->level() ? "level with the source" : "not level yet"));
    } else {
      Say(d.level() ? "the target is level with the source"
                    : fmt::format("{} change(s) would bring the target level (--apply)",
                                  d.actions.size()));
    }
  }

  void AddFlags(CLI::App* sub) override {
    AddConnectionOptions(sub, &conn_, Need::kRequired, Need::kRequired);
    sub->add_flag("--apply", apply_, "bring the target level (without it: report, change nothing)");
    sub->add_flag("--json", json_, "print one JSON document");
    flags_.Register(sub, false);
    sub->add_option("--databases", databases_,
                    "all, or a,b,c: the databases whose properties are carried")
        ->capture_default_str();
  }

  ConnectionFlags conn_;
  bool apply_ = false;
  bool json_ = false;
  globals::GlobalsFlags flags_;
  std::string databases_ = "all";
};

}  // namespace

std::unique_ptr<Command> MakeGlobalsCommand(GlobalOptions* g) {
  return std::make_unique<GlobalsCommand>(
      g, "globals",
      "compare roles, memberships, settings and database properties, and bring the target level");
}

}  // namespace pgbaton::tools

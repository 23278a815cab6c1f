#include "tools/globals/globals_command.h"

#include <fmt/format.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/conninfo.h"
#include "common/log.h"
#include "common/pg.h"
#include "tools/common/identity.h"
#include "tools/config/connection.h"
#include "tools/globals_sync/apply.h"
#include "tools/globals_sync/diff.h"
#include "tools/globals_sync/globals.h"

namespace pgbaton::tools {
namespace {

using globals::Action;
using globals::Drift;

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

void Say(const std::string& line) {
  std::fprintf(stdout, "%s\n", line.c_str());
  std::fflush(stdout);
}

std::string ActionLine(const Action& a) {
  return fmt::format("{} {}{}", a.change, a.object, a.detail.empty() ? "" : ": " + a.detail);
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
    globals::DiffOptions options;
    PGB_RETURN_IF_ERROR(Options(&options));
    PGB_ASSIGN_OR_RETURN(std::string source_info, SourceConninfo(conn_));
    PGB_ASSIGN_OR_RETURN(std::string target_info, TargetConninfo(conn_));
    PGB_ASSIGN_OR_RETURN(
        PgConn source,
        PgConn::Connect(source_info, {.label = "source", .application_name = "pgbaton globals"}));
    PGB_ASSIGN_OR_RETURN(
        PgConn target,
        PgConn::Connect(target_info, {.label = "target", .application_name = "pgbaton globals"}));
    PGB_ASSIGN_OR_RETURN(DatabaseIdentity source_id, ReadDatabaseIdentity(source));
    PGB_ASSIGN_OR_RETURN(DatabaseIdentity target_id, ReadDatabaseIdentity(target));
    PGB_RETURN_IF_ERROR(CheckDistinct(source_id, target_id));
    if (target.ServerMajor() < source.ServerMajor()) {
      return Status::Error(
          ErrorCode::kVersion,
          fmt::format("target (PostgreSQL {}) is older than source (PostgreSQL {})",
                      target.ServerMajor(), source.ServerMajor()),
          "use a target of the same or a newer major");
    }
    PGB_ASSIGN_OR_RETURN(globals::Globals src, globals::ReadGlobals(source));
    PGB_ASSIGN_OR_RETURN(globals::Globals tgt, globals::ReadGlobals(target));
    if (options.databases) {
      for (const std::string& db : *options.databases) {
        if (!src.FindDatabase(db)) {
          return Status::Error(ErrorCode::kNotFound,
                               fmt::format("--databases: source ({}) has no database \"{}\"",
                                           source.description(), db),
                               "list the source's databases with psql -l");
        }
      }
    }
    if (apply_ && !tgt.superuser) {
      return Status::Error(
          ErrorCode::kPermission,
          fmt::format("target ({}): role \"{}\" is not a superuser; globals --apply creates "
                      "roles with every attribute and stores password verifiers",
                      target.description(), tgt.current_user),
          "connect to the target as a superuser (e.g. the postgres role)");
    }
    Drift drift = globals::Diff(src, tgt, options);
    PGB_RETURN_IF_ERROR(globals::CheckCreatable(target, src, &drift));

    std::string sides = fmt::format("source ({}, PostgreSQL {}) -> target ({}, PostgreSQL {})",
                                    DescribeConninfo(source_info), src.major,
                                    DescribeConninfo(target_info), tgt.major);
    if (!drift.blockers.empty()) {
      Report(sides, drift, false);
      const Status& first = drift.blockers.front();
      return first.WithHint(first.hint() +
                            (drift.blockers.size() > 1 ? fmt::format(" ({} problems, listed above)",
                                                                     drift.blockers.size())
                                                       : "") +
                            "; nothing was changed on the target");
    }
    if (!apply_) {
      Report(sides, drift, false);
      if (drift.level()) return Status::Ok();
      return Status::Error(
          ErrorCode::kGlobalsDrift,
          fmt::format("globals: {} difference(s) between source and target", drift.actions.size()),
          "run pgbaton globals --apply to bring the target level");
    }
    std::vector<std::string> done;
    Status applied =
        globals::ApplyDrift(target, drift, [&](const Action& a) { done.push_back(ActionLine(a)); });
    if (!applied.ok()) {
      for (const std::string& line : done) Say("done: " + line);
      return applied;
    }
    // What the target looks like now: level, unless something moved meanwhile.
    PGB_ASSIGN_OR_RETURN(globals::Globals after, globals::ReadGlobals(target));
    Drift rest = globals::Diff(src, after, options);
    Report(sides, drift, true, &rest);
    if (!rest.level()) {
      return Status::Error(
          ErrorCode::kGlobalsDrift,
          fmt::format("globals: {} difference(s) remain after --apply", rest.actions.size()),
          "something changed the globals meanwhile; run globals --apply again");
    }
    LogInfo("globals applied", {{"changes", static_cast<int64_t>(drift.actions.size())}});
    return Status::Ok();
  }

 private:
  Status Options(globals::DiffOptions* o) {
    o->hold_logins = SplitList(hold_logins_);
    for (const std::string& m : tablespace_map_) {
      PGB_ASSIGN_OR_RETURN(auto pair, globals::ParseTablespaceMapping(m));
      o->tablespace_map[pair.first] = pair.second;
    }
    if (no_tablespaces_ && !o->tablespace_map.empty()) {
      return Status::Error(ErrorCode::kUsage,
                           "--tablespace-map and --no-tablespaces exclude each other",
                           "give one of them");
    }
    o->no_tablespaces = no_tablespaces_;
    if (databases_ != "all") {
      o->databases = SplitList(databases_);
      if (o->databases->empty()) {
        return Status::Error(ErrorCode::kUsage, "--databases must be all or a list a,b,c",
                             "e.g. --databases app,billing");
      }
    }
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
    sub->add_option("--hold-logins", hold_logins_,
                    "roles (names or globs, comma-separated) created NOLOGIN on the target, "
                    "their LOGIN recorded for cutover --flip roles");
    sub->add_option("--tablespace-map", tablespace_map_,
                    "OLD=NEW: a source tablespace's counterpart on the target (repeatable)");
    sub->add_flag("--no-tablespaces", no_tablespaces_,
                  "put everything in the target's default tablespace");
    sub->add_option("--databases", databases_,
                    "all, or a,b,c: the databases whose properties are carried")
        ->capture_default_str();
  }

  ConnectionFlags conn_;
  bool apply_ = false;
  bool json_ = false;
  std::string hold_logins_;
  std::vector<std::string> tablespace_map_;
  bool no_tablespaces_ = false;
  std::string databases_ = "all";
};

}  // namespace

std::unique_ptr<Command> MakeGlobalsCommand(GlobalOptions* g) {
  return std::make_unique<GlobalsCommand>(
      g, "globals",
      "compare roles, memberships, settings and database properties, and bring the target level");
}

}  // namespace pgbaton::tools

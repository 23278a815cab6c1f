// pgbaton: moves a live PostgreSQL database to a new major version with about a second of
// write pause. This file wires the verbs; each lives in its own folder under tools/.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "build_info.h"  // generated at build time by cmake/build_info.cmake
#include "common/conninfo.h"
#include "common/log.h"
#include "tools/apply/apply_command.h"
#include "tools/cleanup/cleanup_command.h"
#include "tools/command.h"
#include "tools/config/config.h"
#include "tools/copy/copy_command.h"
#include "tools/cutover/cutover_command.h"
#include "tools/globals/globals_command.h"
#include "tools/migrate/migrate_command.h"
#include "tools/preflight/preflight_command.h"
#include "tools/queue/queue_command.h"
#include "tools/run/run_command.h"
#include "tools/status/status_command.h"
#include "tools/stream/stream_command.h"
#include "tools/verify/verify_command.h"

namespace pgbaton::tools {
namespace {

int Main(int argc, char** original_argv) {
  // `ps` and /proc/PID/cmdline show the process's own argv memory for as long as it runs: parse a
  // copy and overwrite every password in the original now, before anything else (docs/guide/dba.md,
  // "Passwords"). Argument 0 is the program.
  std::vector<std::string> args(original_argv, original_argv + argc);
  for (int i = 1; i < argc; ++i) ScrubPasswordsInPlace(original_argv[i]);
  std::vector<char*> arg_pointers;
  for (std::string& a : args) arg_pointers.push_back(a.data());
  arg_pointers.push_back(nullptr);
  char** argv = arg_pointers.data();

  GlobalOptions global;
  CLI::App app{"pgbaton: move a live PostgreSQL database to a new major version", "pgbaton"};
  app.require_subcommand(1);
  // "pgbaton 0.1.0 (commit 1c827fb0d5e1)": the commit the binary was built from, "-dirty" with
  // uncommitted changes, "unknown" when built outside a git work tree (cmake/build_info.cmake).
  app.set_version_flag("--version",
                       fmt::format("pgbaton {} (commit {})", PGBATON_VERSION, PGBATON_GIT_COMMIT));
  app.add_option("--name", global.name, "names the slot, publication, origin and queue")
      ->envname("PGBATON_NAME")
      ->capture_default_str();
  app.add_option("--log-level", global.log_level, "debug, info, warning or error")
      ->envname("PGBATON_LOG_LEVEL")
      ->capture_default_str();
  app.add_option("--log-format", global.log_format, "human or json")
      ->envname("PGBATON_LOG_FORMAT")
      ->capture_default_str();

  std::vector<std::pair<CLI::App*, std::unique_ptr<Command>>> commands;
  auto add = [&](std::unique_ptr<Command> c) {
    CLI::App* sub = c->Register(&app);
    sub->fallthrough();
    commands.emplace_back(sub, std::move(c));
  };
  add(MakePreflightCommand(&global));
  add(MakeVerifyCommand(&global));
  add(MakeCleanupCommand(&global));
  add(MakeApplyCommand(&global));
  add(MakeMigrateCommand(&global));
  add(MakeCopyCommand(&global));
  add(MakeCutoverCommand(&global));
  add(MakeQueueCommand(&global));
  add(MakeStreamCommand(&global));
  add(MakeRunCommand(&global));
  add(MakeStatusCommand(&global));
  add(MakeGlobalsCommand(&global));

  // Flags > PGBATON_* environment > --config file > defaults (tools/config/config.h).
  ConfigLayer config;
  Status config_status = config.Prepare(&app, argc, argv);
  try {
    app.parse(argc, argv);
    if (config_status.ok()) config_status = config.Apply(&app);
  } catch (const CLI::ParseError& e) {
    Status env = EnvironmentParseError(app, e, argc, argv);
    if (!env.ok()) {
      std::fprintf(stderr, "error: %s\nhint: %s\n", env.message().c_str(), env.hint().c_str());
      return env.exit_code();
    }
    int rc = app.exit(e);
    return rc == 0 ? 0 : ExitCodeOf(ErrorCode::kUsage);
  }
  if (!config_status.ok()) {
    std::fprintf(stderr, "error: %s\n", config_status.message().c_str());
    if (!config_status.hint().empty())
      std::fprintf(stderr, "hint: %s\n", config_status.hint().c_str());
    return config_status.exit_code();
  }

  LogOptions log;
  if (!ParseLogLevel(global.log_level, &log.min_level) ||
      !ParseLogFormat(global.log_format, &log.format)) {
    std::fprintf(stderr, "error: invalid --log-level or --log-format\n");
    return ExitCodeOf(ErrorCode::kUsage);
  }
  SetLogOptions(log);

  for (auto& [sub, cmd] : commands) {
    if (!sub->parsed()) continue;
    Status s = cmd->Run();
    if (!s.ok()) {
      if (log.format == LogFormat::kJson) {
        LogError(s.message(), {{"code", std::string(ErrorCodeName(s.code()))},
                               {"exit_code", s.exit_code()},
                               {"hint", s.hint()}});
      } else {
        std::fprintf(stderr, "error: %s\n", s.message().c_str());
        if (!s.hint().empty()) std::fprintf(stderr, "hint: %s\n", s.hint().c_str());
      }
    }
    return s.exit_code();
  }
  return ExitCodeOf(ErrorCode::kUsage);
}

}  // namespace
}  // namespace pgbaton::tools

int main(int argc, char** argv) { return pgbaton::tools::Main(argc, argv); }

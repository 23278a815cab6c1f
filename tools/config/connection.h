// --source / --target for every verb that talks to the clusters, and where their passwords come
// from. Every verb that connects registers them here, so each takes the same flags, the same
// PGBATON_SOURCE / PGBATON_TARGET / PGBATON_{SOURCE,TARGET}_PASSWORD_FILE variables and the same
// config keys (tools/config/config.h derives both from the flag names). A password never has to
// be typed on the command line (where `ps` shows it): libpq's PGPASSWORD/PGPASSFILE/.pgpass work
// as usual, and --source-password-file / --target-password-file name a file holding just it.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace pgbaton::tools {

struct ConnectionFlags {
  std::string source;                // --source: libpq conninfo or URI of the old cluster
  std::string target;                // --target: of the new cluster
  std::string source_password_file;  // --source-password-file: first line is the password
  std::string target_password_file;  // --target-password-file
};

// Whether a verb takes one side's flags, and whether that side must be given.
enum class Need {
  kNone,      // the verb does not connect to that side: no flags
  kOptional,  // flags registered; an empty conninfo skips that side (cleanup, status)
  kRequired,  // --source / --target is required (from a flag, the environment or the file)
};

// Adds --source/--source-password-file and/or --target/--target-password-file to `sub`.
void AddConnectionOptions(CLI::App* sub, ConnectionFlags* flags, Need source = Need::kOptional,
                          Need target = Need::kOptional);

// The conninfo to connect with: `conninfo` plus the password read from `password_file` when one
// is given (the file's first line, without its newline). `label` ("source", "target") names the
// flag in errors. Errors: kUsage when `conninfo` is empty or malformed, kIo when the file cannot
// be read. Warns (once per file) when the file is readable by group or others.
Result<std::string> ResolveConninfo(std::string_view label, const std::string& conninfo,
                                    const std::string& password_file);

// ResolveConninfo for flags.source / flags.target.
Result<std::string> SourceConninfo(const ConnectionFlags& flags);
Result<std::string> TargetConninfo(const ConnectionFlags& flags);

}  // namespace pgbaton::tools

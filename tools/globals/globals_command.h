// `pgbaton globals --source C --target C [--apply] [--json] [--hold-logins R1,R2|PATTERN]
// [--tablespace-map old=new ...] [--no-tablespaces] [--databases all|a,b,c]`: the globals that
// logical decoding never carries (roles, password verifiers, memberships, per-role settings,
// database owners, locales, settings, ACLs, comments). Without --apply it reports the drift and
// changes nothing (exit 0 when level, globals_drift when not); with --apply it brings the target
// level. The engine is tools/globals_sync/.
#pragma once

#include <memory>

#include "tools/command.h"

namespace pgbaton::tools {

std::unique_ptr<Command> MakeGlobalsCommand(GlobalOptions* global);

}  // namespace pgbaton::tools

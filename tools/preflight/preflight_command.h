// `pgbaton preflight --source C --target C [--json]`: checks both clusters and lists every blocker
// with its fix. Exit 0 only when a migration can start.
#pragma once

#include <memory>

#include "tools/command.h"

namespace pgbaton::tools {

std::unique_ptr<Command> MakePreflightCommand(GlobalOptions* global);

}  // namespace pgbaton::tools

// `pgbaton verify --source C --target C [--tables s.t,...] [--json] [--chunk-rows N]`: row counts
// and checksums per table (per key range for big ones). Exit 0 when everything matches,
// kVerifyMismatch (81) when something differs.
#pragma once

#include <memory>

#include "tools/command.h"

namespace pgbaton::tools {

std::unique_ptr<Command> MakeVerifyCommand(GlobalOptions* global);

}  // namespace pgbaton::tools

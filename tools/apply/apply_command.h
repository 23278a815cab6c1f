// `pgbaton apply --target C --queue-dir D [--apply-jobs N] [--on-conflict error|skip]
// [--stop-at LSN]`: replays the work queue onto the target until stopped (SIGINT / SIGTERM) or
// until everything up to --stop-at is applied. The applier half of `pgbaton run`.
#pragma once

#include <memory>

#include "tools/command.h"

namespace pgbaton::tools {

std::unique_ptr<Command> MakeApplyCommand(GlobalOptions* global);

}  // namespace pgbaton::tools

// `pgbaton migrate`: from an empty target to ready for cutover in one resumable command:
// preflight, the copy with the source's changes streamed into the queue meanwhile, then the
// applier, following the source until stopped (or, with --until caught-up, until the target is
// within the lag threshold).
#pragma once

#include <memory>

#include "tools/command.h"

namespace pgbaton::tools {

std::unique_ptr<Command> MakeMigrateCommand(GlobalOptions* global);

}  // namespace pgbaton::tools

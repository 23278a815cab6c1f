// `pgbaton stream --source C --queue-dir D [--publication-tables T,...]`: the decoder alone.
// Creates the publication (FOR ALL TABLES unless filtered) and the slot, both named by --name,
// when they do not exist yet, then streams the source into the work queue until SIGINT/SIGTERM.
#pragma once

#include <memory>

#include "tools/command.h"

namespace pgbaton::tools {

std::unique_ptr<Command> MakeStreamCommand(GlobalOptions* global);

}  // namespace pgbaton::tools

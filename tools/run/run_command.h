// `pgbaton run --source C --target C --queue-dir D [--stop-at LSN]`: the decoder and the applier
// in one process — what most users run. The decoder loop streams the source into the queue on
// one thread; the applier replays the queue onto the target on another (and trims the queue up
// to what the target has flushed). Stops on SIGINT / SIGTERM, on --stop-at, or on either's error.
#pragma once

#include <memory>

#include "tools/command.h"

namespace pgbaton::tools {

std::unique_ptr<Command> MakeRunCommand(GlobalOptions* global);

}  // namespace pgbaton::tools

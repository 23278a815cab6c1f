// `pgbaton status --queue-dir D [--source C --target C] [--json] [--watch] [--interval 2s]`: where
// each stage of a migration stands (source WAL -> decoder -> queue -> applier -> target), the lag
// in bytes and seconds, rates, ETA, the WAL the slot holds, the queue's size and the last recorded
// error. Read-only: works while `pgbaton run` writes the queue, and when nothing runs.
#pragma once

#include <memory>

#include "tools/command.h"

namespace pgbaton::tools {

std::unique_ptr<Command> MakeStatusCommand(GlobalOptions* global);

}  // namespace pgbaton::tools

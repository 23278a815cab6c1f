// `pgbaton cleanup --source C --target C --queue-dir D [--name N]`: removes what a migration left
// behind: the slot and publication on the source, the replication origins and progress rows on
// the target, and the queue directory. Every step is idempotent (a missing object is reported as
// already done), and nothing is dropped while something still uses it (an active slot, a locked
// queue). Any of --source, --target, --queue-dir may be left out to skip that side.
#pragma once

#include <memory>

#include "tools/command.h"

namespace pgbaton::tools {

std::unique_ptr<Command> MakeCleanupCommand(GlobalOptions* global);

}  // namespace pgbaton::tools

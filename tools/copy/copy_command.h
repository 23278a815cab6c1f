// `pgbaton copy`: the initial copy (publication, slot and snapshot; schema; data; indexes).
#pragma once

#include <memory>

#include "tools/command.h"

namespace pgbaton::tools {

std::unique_ptr<Command> MakeCopyCommand(GlobalOptions* global);

}  // namespace pgbaton::tools

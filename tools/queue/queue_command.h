// `pgbaton queue inspect --queue-dir D [--from LSN] [--json]`: prints the transactions in a work
// queue (RocksDB or Kafka), for operators and tests. Read-only: works while a writer runs.
#pragma once

#include <memory>

#include "tools/command.h"

namespace pgbaton::tools {

std::unique_ptr<Command> MakeQueueCommand(GlobalOptions* global);

}  // namespace pgbaton::tools

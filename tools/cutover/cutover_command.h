// `pgbaton cutover --source C --target C --queue-dir D --fence F --flip P [--max-lag 1s]
// [--max-lag-bytes N] [--reverse] [--dry-run] [--json] [--timeout 60s]`: fences writers on the
// old cluster, drains the stream, copies sequences and flips writers to the new one, with the
// timeline on stdout (JSON with --json). See tools/cutover/cutover.h and docs/guide/cutover.md.
#pragma once

#include <memory>

#include "tools/command.h"

namespace pgbaton::tools {

std::unique_ptr<Command> MakeCutoverCommand(GlobalOptions* global);

}  // namespace pgbaton::tools

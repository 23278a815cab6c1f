// `pgbaton cutover --source C --target C --queue-dir D --fence F... [--flip P]
// [--pgbouncer-ini PATH...] [--pgbouncer-flip-cmd CMD...] [--flip-timeout 10s]
// [--terminate-bypass] [--max-lag 1s] [--max-lag-bytes N] [--reverse] [--dry-run] [--json]
// [--timeout 60s]`: fences writers on the old cluster (one PgBouncer, a fleet of them, roles or
// read-only), checks that no client writes around the fence, drains the stream, copies sequences
// and flips writers to the new one, with the timeline on stdout (JSON with --json). See
// tools/cutover/cutover.h and docs/guide/cutover.md.
#pragma once

#include <memory>

#include "tools/command.h"

namespace pgbaton::tools {

std::unique_ptr<Command> MakeCutoverCommand(GlobalOptions* global);

}  // namespace pgbaton::tools

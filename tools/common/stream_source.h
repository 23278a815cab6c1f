// What the decoder needs on the source before it streams: the publication and the slot named
// like the migration. Shared by `stream` and `run`.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "queue/work_queue.h"
#include "tools/common/identity.h"
#include "tools/common/migration_flags.h"

namespace pgbaton::tools {

// The flags of the verbs that stream (stream, run) on what and how the decoder streams.
struct StreamFlags {
  std::vector<std::string> tables;  // --publication-tables: publish only these; empty: all
  int batch_delay_ms = 50;          // --batch-delay-ms: group commit into the queue

  // Adds --publication-tables and --batch-delay-ms to `sub`.
  void Register(CLI::App* sub);
};

// Makes sure the publication and the slot `name` exist on `source` before streaming. The slot is
// created only while `queue` holds nothing: a missing slot with a non-empty queue means changes
// were lost (kSlotMissing). Errors: kServerConfig (wal_level), kPermission, kSlotMissing.
Status PrepareStreamSource(const std::string& source, const std::string& name,
                           const std::vector<std::string>& publication_tables,
                           queue::WorkQueue* queue);

// The start of a verb that streams (`stream`, `run`): binds the migration with `start`'s check (the
// slot must be idle and the positions must chain: tools/common/identity.h), installs the signal
// handlers (tools/common/signals.h: a stop also ends the waiting below), then OpenCheckedQueue
// and PrepareStreamSource, each tried again while a server is unreachable
// (tools/common/startup_retry.h).
Result<std::unique_ptr<queue::WorkQueue>> OpenStreamingQueue(
    const MigrationStart& start, const std::vector<std::string>& publication_tables);

}  // namespace pgbaton::tools

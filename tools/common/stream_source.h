// What the decoder needs on the source before it streams: the publication and the slot named
// like the migration. Shared by `stream` and `run`.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "queue/work_queue.h"
#include "tools/common/identity.h"

namespace pgbaton::tools {

// Makes sure the publication and the slot `name` exist on `source` before streaming. The slot is
// created only while `queue` holds nothing: a missing slot with a non-empty queue means changes
// were lost (kSlotMissing). Errors: kServerConfig (wal_level), kPermission, kSlotMissing.
Status PrepareStreamSource(const std::string& source, const std::string& name,
                           const std::vector<std::string>& publication_tables,
                           queue::WorkQueue* queue);

// The start of a verb that streams (`stream`, `run`): OpenCheckedQueue with `check` (which names
// the source), then PrepareStreamSource, each tried again while a server is unreachable
// (tools/common/startup_retry.h). Install the signal handlers first: a stop ends the waiting.
Result<std::unique_ptr<queue::WorkQueue>> OpenStreamingQueue(
    const MigrationCheck& check, const queue::QueueOptions& options, const std::string& name,
    const std::vector<std::string>& publication_tables);

}  // namespace pgbaton::tools

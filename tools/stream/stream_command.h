// `pgbaton stream --source C --queue-dir D [--publication-tables T,...]`: the decoder alone.
// Creates the publication (FOR ALL TABLES unless filtered) and the slot, both named by --name,
// when they do not exist yet, then streams the source into the work queue until SIGINT/SIGTERM.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "queue/work_queue.h"
#include "tools/command.h"

namespace pgbaton::tools {

std::unique_ptr<Command> MakeStreamCommand(GlobalOptions* global);

// Makes sure the publication and the slot `name` exist on `source` before streaming. The slot is
// created only while `queue` holds nothing: a missing slot with a non-empty queue means changes
// were lost (kSlotMissing). Errors: kServerConfig (wal_level), kPermission, kSlotMissing.
Status PrepareStreamSource(const std::string& source, const std::string& name,
                           const std::vector<std::string>& publication_tables,
                           queue::WorkQueue* queue);

}  // namespace pgbaton::tools

// After the data: pg_dump's post-data entries built on the target in waves (indexes and unique
// or primary constraints across N connections, biggest table first; then index attaches; then
// foreign keys, triggers and the rest in dump order), and ANALYZE of the copied tables.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "tools/copy/copy_options.h"
#include "tools/copy/progress.h"
#include "tools/copy/schema.h"

namespace pgbaton::tools::copy {

struct PostDataJob {
  const CopyOptions* options = nullptr;
  PostData post_data;
  std::map<std::string, uint64_t> table_bytes;  // "schema.table" -> size, for ordering wave 0
  // Entries already built in an earlier run (by index into post_data.entries).
  std::function<bool(size_t)> is_done;
  // Records an entry as built; called once per entry, serialized.
  std::function<Status(size_t)> mark_done;
  // True when an earlier run may have built entries it did not record: then "already exists"
  // from the target means the entry is built.
  bool resuming = false;
  Progress* progress = nullptr;
};

// Runs every entry not yet done. Each target session gets the dump's preamble and
// maintenance_work_mem. Errors: the first failing entry's, naming it.
Status RunPostData(const PostDataJob& job);

// ANALYZE of each "schema.table" in `tables` across options.jobs target connections.
Status AnalyzeTables(const CopyOptions& options,
                     const std::vector<std::pair<std::string, std::string>>& tables,
                     Progress* progress);

}  // namespace pgbaton::tools::copy

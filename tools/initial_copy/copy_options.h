// Options of the initial copy (`pgbaton copy`): plain values filled by the command from its flags.
// The engine (copy_engine.h) reads nothing else: no argv, no environment.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/metrics_catalog.h"
#include "common/status.h"

namespace pgbaton::tools::copy {

// --source-load-limit: the copy workers pause while a signal of the source is over its limit
// (source_load.h says how each is read and when the copy resumes).
struct SourceLoadLimits {
  int64_t active_sessions = 0;               // pause while more are active; 0: not watched
  std::chrono::milliseconds standby_lag{0};  // pause while a standby replays later; 0: not watched
  bool any() const { return active_sessions > 0 || standby_lag.count() > 0; }
};

struct CopyOptions {
  std::string source;     // libpq conninfo of the old cluster
  std::string target;     // libpq conninfo of the new cluster
  std::string queue_dir;  // the RocksDB work queue whose metadata records progress and sync LSNs
                          // (empty when the queue is Kafka's: the verb opens the queue)
  std::string name = "pgbaton";      // names the slot and the publication
  int jobs = 4;                      // parallel connections per side, for data and for indexes
  std::vector<std::string> include;  // globs on "schema.table"; empty: every table
  std::vector<std::string> exclude;  // globs on "schema.table"
  // Tables larger than this are split into ranges. 0: automatic, the total size over 4 x jobs
  // (so that the last chunks finish close together), between 16 MB and 256 MB.
  uint64_t chunk_bytes = 0;
  // By default a table is copied in binary format when every column type has a
  // cluster-independent binary form (TableInfo::binary_safe), in text otherwise. `text` forces
  // text for every table.
  bool text = false;
  bool no_owner = false;  // restore the schema without ownership (pg_dump --no-owner)
  // --ddl replicate: install the DDL capture on the source before the slot (ddl_capture.h).
  bool ddl_replicate = false;
  std::string maintenance_work_mem = "512MB";  // for index builds on the target
  std::string pg_dump = "pg_dump";             // pg_dump binary (must be >= the source major)
  std::string psql = "psql";                   // psql binary
  int progress_interval_ms = 1000;             // how often progress is shown
  // Bytes per second that all copy workers together read from the source; 0: no cap. The decoder
  // (migrate's stream) and the applier are never throttled.
  uint64_t max_copy_rate = 0;
  SourceLoadLimits source_load;        // none watched by default
  int source_load_interval_ms = 1000;  // how often the source's load is sampled
  bool progress_json = false;          // JSON lines instead of a live bar
  // Test hook: the process SIGKILLs itself at this point ("data:N" after N chunks, "data-left:N"
  // when N chunks are left, "table:<schema>.<table>" once that table is recorded as done,
  // "post-data:N" after N post-data statements, "large-objects:N" after N batches of large
  // objects committed, "after-slot", "after-schema", "after-data", "after-large-objects").
  std::string crash_at;
  // Test hook: the process SIGSTOPs itself at this point (the same names as crash_at).
  std::string pause_at;
  // Test hook: "<point>:<ms>", the copy waits that long at that point (the same names as
  // crash_at) while the rest of the process (migrate's decoder) goes on.
  std::string hold_at;
  // Called once the schema is on the target (after the restore, or at once when an earlier run
  // restored it): the command records the migration on the target there (tools/common/identity.h).
  std::function<Status()> after_schema;
  // Called once the streaming slot exists (just created, or found from an earlier run), before
  // the schema and the data: `migrate` starts its decoder there, so that the source's WAL is
  // drained into the queue while the copy runs. An error ends the copy.
  std::function<Status()> on_slot;
  // The series the copy counts into: its database's in a cluster migration; null:
  // metrics::CatalogMetrics().
  const metrics::Catalog* metrics = nullptr;
};

}  // namespace pgbaton::tools::copy

// The data half of the initial copy: tables (and ranges of big tables) streamed from the source
// snapshot to the target with COPY TO STDOUT piped into COPY FROM STDIN over libpq, by N worker
// pairs of connections, biggest first. Nothing touches the disk on the way; memory per worker is
// one row plus libpq's buffers, whatever the table size.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/pg.h"
#include "common/status.h"
#include "tools/initial_copy/catalog.h"
#include "tools/initial_copy/copy_options.h"
#include "tools/initial_copy/progress.h"
#include "tools/initial_copy/rate_limiter.h"
#include "tools/initial_copy/snapshot.h"
#include "tools/initial_copy/source_load.h"

namespace pgbaton::tools::copy {

// One unit of work: a whole table or one range of it.
struct Chunk {
  size_t table = 0;   // index into DataCopyJob::tables
  std::string where;  // "" for the whole table, else a condition on ctid or the key
  uint64_t estimated_bytes = 0;
};

// Splits each table larger than `chunk_bytes` into ranges: TID ranges (`ctid >= '(a,0)' AND
// ctid < '(b,0)'`, read with TID range scans) on sources 14 and later; ranges of a single-column
// integer primary key on 13 (a table without one stays whole). `conn` must be inside the
// snapshot, so key bounds are the snapshot's. Chunks come out biggest table first.
Result<std::vector<Chunk>> PlanChunks(PgConn& conn, const std::vector<TableInfo>& tables,
                                      uint64_t chunk_bytes);

// The size PlanChunks splits `tables` at: options.chunk_bytes when set, else their total size over
// 4 x jobs (so that the last chunks finish close together), between 16 MB and 256 MB.
uint64_t ChunkBytesFor(const CopyOptions& options, const std::vector<TableInfo>& tables);

// How many worker pairs CopyData runs for `chunks` chunks: options.jobs, at most one per chunk.
int DataWorkers(const CopyOptions& options, size_t chunks);

// Whether table `t` goes in binary format: not --text, and every column type is binary-safe.
bool CopiesInBinary(const CopyOptions& options, const TableInfo& t);

// The source's half of copying chunk `c` of table `t`: COPY ... TO STDOUT, in binary when
// `binary`. `migrate --plan` samples the source's read rate with these very statements.
std::string CopyOutSql(const TableInfo& t, const Chunk& c, bool binary);

struct DataCopyJob {
  const CopyOptions* options = nullptr;
  SnapshotRef snapshot;
  std::vector<TableInfo> tables;
  std::vector<TableProgress*> progress;  // one per table
  // Called once per table, from a worker thread (calls are serialized), after its last chunk
  // committed; `target` is that worker's connection, for making the data durable first.
  std::function<Status(size_t table, PgConn& target)> on_table_done;
  // Called after every committed chunk with the number committed so far (a test hook).
  std::function<void(int chunks_done)> on_chunk_done;
  // Protecting the source (each may be null): every worker, after each batch of COPY data it
  // receives (RateLimiter::batch_bytes, at most 64 KiB), waits while `load_gate` is closed, then
  // for that many tokens of `rate`; so a pause takes effect mid-COPY, within one batch.
  // `own_sessions` holds the workers' source sessions, which the load monitor leaves out.
  RateLimiter* rate = nullptr;
  LoadGate* load_gate = nullptr;
  SessionSet* own_sessions = nullptr;
  const metrics::Catalog* metrics = nullptr;  // the series to count into; null: CatalogMetrics()
};

// Copies every chunk with options->jobs workers. Each source session runs
// BEGIN ISOLATION LEVEL REPEATABLE READ; SET TRANSACTION SNAPSHOT; each target session runs with
// synchronous_commit off. A table copied in one chunk is truncated and loaded with COPY FREEZE in
// one transaction. A worker whose source session ends under a chunk imports the snapshot again
// on a new session and copies that chunk again (a few times at most); if the snapshot cannot be
// imported any more, that is kSnapshotLost. The first error stops every worker after its current
// chunk and is returned.
// Errors: kSnapshotLost, kConnection (retryable), kUnsupportedType, kServerError, ...
Status CopyData(const DataCopyJob& job, const std::vector<Chunk>& chunks);

}  // namespace pgbaton::tools::copy

// The initial copy, end to end: publication and slot with an exported snapshot, schema
// (pre-data), data in parallel, large objects, sequences, post-data in parallel waves, ANALYZE.
// Every step is recorded in the work queue's metadata, so running it again after a crash finishes
// the job: finished tables are kept, the rest are truncated and copied at a new snapshot whose LSN
// becomes their sync LSN (DESIGN.md contract 4).
//
// Metadata keys (values are text):
//   sync_lsn/<schema>.<table>     the LSN of the snapshot the table was copied at (read by apply)
//   copy/state/<schema>.<table>   "copying" (started, possibly partial) or "done"
//   copy/slot, copy/consistent_lsn  the streaming slot and the LSN its stream starts from
//   copy/phase/pre_data | post_data | analyze   "started" or "done"
//   copy/post_data_sql            pg_dump's post-data section, dumped with the first snapshot
//   copy/post/<n>                 "done" for each post-data entry built
//   copy/phase/large_objects      "started" or "done" (large_objects.h: the target holds which
//                                 objects are copied, each batch committing whole)
//   copy/large_objects            how many large objects the source held at the snapshot
//   copy/no_owner                 "true" when copied with --no-owner (cutover's re-sync reads it)
#pragma once

#include <memory>

#include "common/status.h"
#include "queue/work_queue.h"
#include "tools/common/identity.h"
#include "tools/initial_copy/copy_options.h"
#include "tools/initial_copy/progress.h"

namespace pgbaton::tools::copy {

// The test hooks at a named point (CopyOptions::crash_at, pause_at, hold_at): a real SIGKILL,
// so crash tests are exact; a SIGSTOP, so a test can act on the servers while the process is
// frozen there, then SIGCONT; or a wait of the copy alone, so a test can watch what the rest of
// the process does meanwhile. `migrate` adds "after-preflight".
void AtTestPoint(const CopyOptions& o, const std::string& point);

// Runs (or resumes) the copy described by `options`, recording progress in `queue`'s metadata
// and showing it on `progress`. Not thread-safe; one copy per queue at a time.
// Errors: kVersion, kNoReplicaIdentity, kNotFound (extension, table), kTargetNotEmpty,
// kSnapshotLost, kSlotInUse, kServerConfig, kConnection (retryable), kServerError, ...
Status RunCopy(const CopyOptions& options, queue::WorkQueue* queue, Progress* progress);

// Whether the copy recorded in `queue` has finished, its last phase done (RunCopy then only
// checks and returns). Errors: the queue's.
Result<bool> CopyFinished(queue::WorkQueue* queue);

// The copy's queue (`qo`), opened after `check`'s identity checks (OpenCheckedQueue) with bind
// set: before anything is created, both servers and the queue must belong to this migration, and a
// refused copy leaves no new queue directory behind. The target's record waits for the schema
// restore (its schema "pgbaton" would be in the way): sets options->after_schema to write it.
// Errors: OpenCheckedQueue's.
Result<std::unique_ptr<queue::WorkQueue>> OpenCopyQueue(MigrationCheck check,
                                                        const queue::QueueOptions& qo,
                                                        CopyOptions* options);

}  // namespace pgbaton::tools::copy

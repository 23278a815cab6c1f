// The RocksDB backend of WorkQueue: the embedded default, one database at --queue-dir. Internal to
// queue/: callers use WorkQueue::Open. Layout and guarantees: docs/reference/queue-format.md.
#pragma once

#include <memory>

#include "queue/work_queue.h"

namespace pgbaton::queue {

// Opens (or creates) the queue at options.dir. A writer takes an flock on <dir>/pgbaton.lock;
// read_only opens a RocksDB secondary instance that follows the writer.
// Errors: kQueueLocked, kQueueFormat, kQueueMismatch, kNotFound (read-only, no queue), kIo,
// kDiskFull.
Result<std::unique_ptr<WorkQueue>> OpenRocksDbQueue(const QueueOptions& options);

}  // namespace pgbaton::queue

// The memory tail: a WorkQueue that keeps the newest transactions it made durable in memory too,
// for a reader in the same process as the writer (`pgbaton run`). The decoder's records go to the
// backend as always (durable before the slot hears of them); the applier's cursor takes the next
// transaction from memory when memory holds it, and reads the backend otherwise: after a
// restart, when it fell behind the memory budget, or for a transaction that memory does not hold
// whole (one whose chunks spanned appends). Memory never holds anything the backend does not.
#pragma once

#include <cstddef>
#include <memory>

#include "queue/work_queue.h"

namespace pgbaton::queue {

struct MemoryTailOptions {
  // Approximate bytes of transactions held in memory at most. When full, newer transactions are
  // not held (the reader takes them from the backend) until the reader has drained memory.
  size_t max_bytes = 32 << 20;
};

struct MemoryTailStats {
  uint64_t from_memory = 0;   // transactions cursors took from memory
  uint64_t from_backend = 0;  // transactions cursors read from the backend
};

// Wraps `inner` (a writer). Every call goes to `inner`; AppendOwned (and Append, which copies
// its batch) also keeps the batch's committed transactions in memory once `inner` holds them
// durably. Cursors from ReadFrom serve transactions in commit-LSN order exactly as `inner`'s
// would, taking (moving out) those memory holds, so the transactions one cursor took from memory
// are read from `inner` by any other. Thread-safety as WorkQueue's: one writer thread, readers
// from any thread.
class MemoryTailQueue : public WorkQueue {
 public:
  virtual MemoryTailStats memory_stats() const = 0;
  // The wrapped queue, for readers that look at transactions without applying them (the
  // metrics sampler's oldest unapplied commit): through it they leave memory to the applier.
  virtual WorkQueue* backend() = 0;
};

// Errors: those of inner->LastCommitLsn().
Result<std::unique_ptr<MemoryTailQueue>> WithMemoryTail(std::unique_ptr<WorkQueue> inner,
                                                        const MemoryTailOptions& options = {});

}  // namespace pgbaton::queue

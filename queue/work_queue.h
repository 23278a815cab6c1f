// WorkQueue: the durable, ordered log of source transactions between decoder and applier.
// Backends: RocksDB (embedded, the default, at a directory) and Kafka (one topic, one partition).
//
// Writing (the decoder): chunks of a transaction are appended as they are decoded (not yet
// visible to readers), then its CommitRecord. Append() is durable when it returns OK: RocksDB
// syncs the write, Kafka waits for acks=all delivery reports. Only then may the decoder confirm
// the commit's end LSN to the slot.
// Reading (the applier, status, queue inspect): committed transactions in commit-LSN order.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/types.h"
#include "queue/record.h"

namespace pgbaton::queue {

// What one Append() writes, in order, atomically and durably.
struct RecordBatch {
  std::vector<RelationDescriptor> relations;  // new descriptor versions
  std::vector<ChangeChunk> chunks;            // chunks of open or just-committed transactions
  std::vector<CommitRecord> commits;          // in increasing commit_lsn order
  // Subtransactions whose chunks must be dropped (a subtransaction abort in a streamed txn):
  // pairs of (xid, subxid); subxid == xid drops the whole transaction.
  std::vector<std::pair<Xid, Xid>> aborts;
  bool empty() const {
    return relations.empty() && chunks.empty() && commits.empty() && aborts.empty();
  }
};

struct QueueOptions {
  // RocksDB backend: the directory (created if missing). Empty when using Kafka.
  std::string dir;
  // Kafka backend: bootstrap servers "host:port,..." and topic. Non-empty brokers selects Kafka.
  std::string kafka_brokers;
  std::string kafka_topic;
  // Kafka: local directory for the reader's spill files and the writer's state (may be empty).
  std::string kafka_state_dir;
  // Kafka: how long opening, a request or a durable append may wait for the broker before failing
  // with kKafka (a missing broker is an error, not a hang).
  int kafka_timeout_ms = 30000;
  bool read_only = false;  // open for reading while another process writes (status, inspect)
  bool create_if_missing = true;
  // Name of the migration (--name); a queue opened with another name fails with kQueueMismatch.
  std::string migration_name = "pgbaton";
};

// A committed transaction read from the queue. Chunks are read lazily, one at a time.
class TransactionReader {
 public:
  virtual ~TransactionReader() = default;
  virtual const CommitRecord& commit() const = 0;
  // Fills `chunk` with the next chunk; returns false after the last one.
  // Errors: kQueueCorrupt naming the commit LSN.
  virtual Result<bool> NextChunk(ChangeChunk* chunk) = 0;
};

class QueueCursor {
 public:
  virtual ~QueueCursor() = default;
  // The next committed transaction with commit_lsn > the cursor's start, or nullptr when none is
  // available within `wait` (a writer may append more later). The previous TransactionReader
  // must not be used after calling Next again.
  virtual Result<std::unique_ptr<TransactionReader>> Next(std::chrono::milliseconds wait) = 0;
};

class WorkQueue {
 public:
  virtual ~WorkQueue() = default;

  // Opens the queue selected by `options` (Kafka if kafka_brokers is set, else RocksDB at dir).
  // Errors: kQueueLocked (another writer), kQueueFormat (newer format), kQueueMismatch (other
  // migration), kKafka, kIo, kDiskFull.
  static Result<std::unique_ptr<WorkQueue>> Open(const QueueOptions& options);

  // --- writing (not in read-only mode) ---
  // Appends durably. Thread-compatible: one writer thread.
  virtual Status Append(const RecordBatch& batch) = 0;
  // As Append, for a writer that is done with `batch`: a queue may keep its records (the memory
  // tail, queue/memory_tail.h, moves them out). The default calls Append.
  virtual Status AppendOwned(RecordBatch&& batch) { return Append(batch); }
  // Drops every chunk that has no commit record yet: the decoder calls this at start, because
  // the source resends every transaction that was not committed to the queue.
  virtual Status DiscardUncommitted() = 0;
  // Deletes transactions with commit_lsn <= upto (and frees their space eventually).
  virtual Status Trim(Lsn upto) = 0;

  // --- reading (thread-safe) ---
  // The commit LSN / end LSN of the newest durable transaction (Invalid when empty).
  virtual Result<Lsn> LastCommitLsn() = 0;
  virtual Result<Lsn> LastEndLsn() = 0;
  // The oldest commit LSN still held (Invalid when empty).
  virtual Result<Lsn> FirstCommitLsn() = 0;
  // A cursor yielding committed transactions with commit_lsn > after, in order.
  virtual Result<std::unique_ptr<QueueCursor>> ReadFrom(Lsn after) = 0;
  // The commit LSNs after `after`, in order, at most `max` of them, without reading the
  // transactions (for counting; the default reads them through a cursor).
  virtual Result<std::vector<Lsn>> CommitLsns(Lsn after, size_t max);
  // A relation descriptor by source id and version. Errors: kNotFound, kQueueCorrupt.
  virtual Result<RelationDescriptor> GetRelation(RelationId id, uint32_t version) = 0;
  // All descriptors (every version), for inspect and for the applier at start.
  virtual Result<std::vector<RelationDescriptor>> ListRelations() = 0;

  // --- small metadata: positions, per-table sync LSNs, copy progress ---
  // Keys every writer of the queue shares: the highest end LSN the queue has held (written before
  // each trim, so that it survives the trim) and the commit LSN trimmed through.
  static constexpr const char* kHighWaterEndKey = "position/high_water_end";
  // The decoder's: how far the source was read with nothing of it left out of the queue, when
  // it confirmed an idle stream past the last transaction (decoder/stream.h).
  static constexpr const char* kReceivedThroughKey = "position/received_through";
  static constexpr const char* kTrimmedThroughKey = "position/trimmed_through";
  // Durable when it returns. Keys are short ASCII; values are opaque bytes.
  virtual Status PutMeta(const std::string& key, const std::string& value) = 0;
  virtual Result<std::optional<std::string>> GetMeta(const std::string& key) = 0;
  virtual Result<std::map<std::string, std::string>> ListMeta(const std::string& prefix) = 0;
  virtual Status DeleteMeta(const std::string& key) = 0;

  // Approximate bytes the queue occupies (on disk for RocksDB; in the topic for Kafka).
  virtual Result<uint64_t> SizeBytes() = 0;
};

}  // namespace pgbaton::queue

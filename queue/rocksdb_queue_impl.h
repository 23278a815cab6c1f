// The RocksDB backend's queue class, split by concern as RocksDB splits DBImpl:
// rocksdb_queue_open.cc (opening, the writer's lock, the format check, the writer's state at
// start), rocksdb_queue_write.cc (appends, aborts, discard, trim, metadata writes) and
// rocksdb_queue_read.cc (cursors, positions, relations, metadata reads, following a writer).
// Internal to queue/: callers use WorkQueue::Open. The key layout is in rocksdb_keys.h.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "queue/codec.h"
#include "queue/work_queue.h"

namespace pgbaton::queue {

// Converts a RocksDB status once, here. A full disk is kDiskFull naming the directory `dir`;
// corruption is kQueueCorrupt; anything else kIo. `op` says what failed ("appending").
Status FromRocks(const rocksdb::Status& s, const std::string& dir, std::string_view op);

class RocksDbQueue : public WorkQueue {
 public:
  // `lock_fd`: the writer's flock (-1 for a reader); `secondary_dir`: the reader's scratch
  // directory for its secondary instance, removed at close (empty for a writer).
  RocksDbQueue(QueueOptions options, int lock_fd, std::string secondary_dir)
      : options_(std::move(options)), lock_fd_(lock_fd), secondary_dir_(std::move(secondary_dir)) {}
  ~RocksDbQueue() override;

  // Takes ownership of `db`, checks or writes the format version and migration name, and (for a
  // writer) rebuilds the open transactions. Errors: kNotFound (read-only, not initialized),
  // kQueueFormat, kQueueMismatch, kQueueCorrupt, kIo, kDiskFull.
  Status Init(rocksdb::DB* db);

  // --- writing (rocksdb_queue_write.cc) ---
  Status Append(const RecordBatch& batch) override;
  Status DiscardUncommitted() override;
  Status Trim(Lsn upto) override;
  Status PutMeta(const std::string& key, const std::string& value) override;
  Status DeleteMeta(const std::string& key) override;

  // --- reading (rocksdb_queue_read.cc) ---
  Result<Lsn> LastCommitLsn() override;
  Result<Lsn> LastEndLsn() override;
  Result<Lsn> FirstCommitLsn() override;
  Result<std::unique_ptr<QueueCursor>> ReadFrom(Lsn after) override;
  // Reads only the commit keys: no value is decoded.
  Result<std::vector<Lsn>> CommitLsns(Lsn after, size_t max) override;
  Result<RelationDescriptor> GetRelation(RelationId id, uint32_t version) override;
  Result<std::vector<RelationDescriptor>> ListRelations() override;
  Result<std::optional<std::string>> GetMeta(const std::string& key) override;
  Result<std::map<std::string, std::string>> ListMeta(const std::string& prefix) override;
  Result<uint64_t> SizeBytes() override;

  // --- for cursors (rocksdb_queue_read.cc) ---
  // The commit record `it` is on; none when it is past the last commit.
  Result<std::optional<StoredCommit>> CommitAt(const rocksdb::Iterator& it);
  // Waits up to `wait` for a newer append (same process) or polls the writer (read-only).
  void WaitForMore(uint64_t seen_generation, std::chrono::milliseconds wait);
  // Counts appends in this process; a cursor compares it before and after a wait.
  uint64_t generation();
  // A reader (secondary instance) catches up with the writer's latest writes; a writer: no-op.
  Status CatchUp();
  rocksdb::DB* db() { return db_.get(); }
  const std::string& dir() const { return options_.dir; }

 private:
  // A transaction whose chunks came over several appends, not yet committed.
  struct OpenTxn {
    uint64_t ref = 0;
    uint32_t next_seq = 0;  // key sequence of the next pending chunk
    uint32_t count = 0;     // chunks stored
  };

  // rocksdb_queue_write.cc
  Status CheckWritable(std::string_view op);
  Status Write(rocksdb::WriteBatch* wb, std::string_view op);
  void DropOpen(rocksdb::WriteBatch* wb, const OpenTxn& t);
  Status DropSubxact(rocksdb::WriteBatch* wb, Xid subxid, OpenTxn* t);
  // rocksdb_queue_read.cc
  Result<std::optional<std::string>> GetRaw(const std::string& key);
  Result<std::optional<StoredCommit>> LastCommit();
  // rocksdb_queue_open.cc: rebuilds the open transactions and counters from the database.
  Status LoadWriterState();

  QueueOptions options_;
  bool appended_ = false;  // Append was called: flush at close
  int lock_fd_;
  std::string secondary_dir_;
  std::unique_ptr<rocksdb::DB> db_;
  bool write_failed_ = false;
  Status write_error_;  // the error that stopped writing, while write_failed_
  // Writer state (one writer thread).
  std::unordered_map<uint32_t, OpenTxn> open_;  // by xid
  uint64_t next_ref_ = 1;
  std::mutex catch_up_mu_;
  std::mutex mu_;  // guards the fields below
  std::condition_variable cv_;
  uint64_t generation_ = 0;
  Lsn last_commit_;
  Lsn last_end_;
};

}  // namespace pgbaton::queue

// The Kafka backend's queue class, split by concern: kafka_queue_open.cc (topics, the format and
// migration checks, the writer's state rebuilt from the topic), kafka_queue_write.cc (appends,
// aborts, discard, trim, metadata writes) and kafka_queue_read.cc (cursors, positions found by
// probing the topic, relations, metadata reads). The meta topic is kafka_meta_store.h; the
// message keys kafka_layout.h. Internal to queue/: callers use WorkQueue::Open.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "queue/codec.h"
#include "queue/kafka_client.h"
#include "queue/kafka_meta_store.h"
#include "queue/work_queue.h"

namespace pgbaton::queue::kafka {

class KafkaQueue : public WorkQueue {
 public:
  explicit KafkaQueue(QueueOptions o)
      : o_(std::move(o)), topic_(o_.kafka_topic), meta_topic_(o_.kafka_topic + ".meta") {}

  // Connects, creates both topics if missing (a writer), checks the format version and the
  // migration name, and (a writer) rebuilds the open transactions. Errors: kUsage (no topic),
  // kKafka, kNotFound (no topic, reader), kQueueMismatch, kQueueFormat, kQueueCorrupt.
  Status Init();

  // --- writing (kafka_queue_write.cc) ---
  Status Append(const RecordBatch& batch) override;
  Status DiscardUncommitted() override;
  Status Trim(Lsn upto) override;
  Status PutMeta(const std::string& key, const std::string& value) override;
  Status DeleteMeta(const std::string& key) override;

  // --- reading (kafka_queue_read.cc) ---
  Result<Lsn> LastCommitLsn() override;
  Result<Lsn> LastEndLsn() override;
  Result<Lsn> FirstCommitLsn() override;
  Result<std::unique_ptr<QueueCursor>> ReadFrom(Lsn after) override;
  Result<RelationDescriptor> GetRelation(RelationId id, uint32_t version) override;
  Result<std::vector<RelationDescriptor>> ListRelations() override;
  Result<std::optional<std::string>> GetMeta(const std::string& key) override;
  Result<std::map<std::string, std::string>> ListMeta(const std::string& prefix) override;
  // Approximate: the number of records in the topic times the mean size of the last 100.
  Result<uint64_t> SizeBytes() override;

 private:
  // A transaction whose chunks are in the topic without its commit yet.
  struct OpenTxn {
    int64_t first_offset = 0;                 // a lower bound of its first chunk's offset
    std::map<uint32_t, uint32_t> per_subxid;  // chunks in the topic by subxid
    uint32_t count() const {
      uint32_t n = 0;
      for (const auto& [s, c] : per_subxid) n += c;
      return n;
    }
  };
  // A commit record and its offset in the data topic.
  using FoundCommit = std::optional<std::pair<int64_t, StoredCommit>>;

  // kafka_queue_write.cc
  Status CheckWritable();
  Status FlushData();
  // kafka_queue_read.cc
  Result<Lsn> TrimmedLsn();
  // The first commit record at or after `offset` and before `high` (probe_mu_ held).
  Result<FoundCommit> FindCommitFrom(int64_t offset, int64_t high);
  // The last commit record in the topic: reads growing windows back from the end.
  Result<FoundCommit> TailCommit();
  // The offset a reader must start at to see every chunk of every commit after `after`: the
  // restart offset stored in the last commit at or before `after` (binary search by offset).
  Result<int64_t> StartOffsetFor(Lsn after);
  // kafka_queue_open.cc
  Status LoadWriterState();

  QueueOptions o_;
  std::string topic_;
  std::string meta_topic_;
  std::unique_ptr<Producer> producer_;
  std::unique_ptr<MetaStore> meta_;
  std::mutex probe_mu_;
  std::unique_ptr<Consumer> probe_;
  // Writer state (one writer thread; last_* also read by LastCommitLsn under state_mu_).
  std::mutex state_mu_;
  Lsn last_commit_;
  Lsn last_end_;
  int64_t next_offset_ = 0;  // the offset the next produced record gets
  std::unordered_map<uint32_t, OpenTxn> open_;
  bool broken_ = false;
};

}  // namespace pgbaton::queue::kafka

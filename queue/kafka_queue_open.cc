// Opening the Kafka queue: both topics (created by a writer when missing, one partition each), the
// format and migration checks in the meta topic, and the writer's open transactions rebuilt by
// replaying the data topic from the last commit's restart offset.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "queue/kafka_layout.h"
#include "queue/kafka_queue.h"
#include "queue/kafka_queue_impl.h"
#include "queue/kafka_reassembler.h"

namespace pgbaton::queue {
namespace kafka {

Status KafkaQueue::Init() {
  if (topic_.empty()) {
    return Status::Error(ErrorCode::kUsage, "no kafka topic given",
                         "pass --kafka-topic (one topic per migration)");
  }
  PGB_ASSIGN_OR_RETURN(probe_, Consumer::Create(o_.kafka_brokers, o_.kafka_timeout_ms));
  PGB_RETURN_IF_ERROR(probe_->Ping());
  PGB_ASSIGN_OR_RETURN(int partitions, probe_->PartitionCount(topic_));
  if (partitions == 0) {
    if (o_.read_only || !o_.create_if_missing) {
      return Status::Error(
          ErrorCode::kNotFound,
          fmt::format("kafka topic \"{}\" does not exist on \"{}\"", topic_, o_.kafka_brokers),
          "check --kafka-topic; the writer (pgbaton run or stream) creates it");
    }
  }
  if (!o_.read_only) {
    PGB_ASSIGN_OR_RETURN(producer_, Producer::Create(o_.kafka_brokers, o_.kafka_timeout_ms));
    if (partitions == 0) {
      // Records stay until trimmed: no time or size retention on the data topic.
      PGB_RETURN_IF_ERROR(producer_->CreateTopic(topic_, {{"cleanup.policy", "delete"},
                                                          {"retention.ms", "-1"},
                                                          {"retention.bytes", "-1"},
                                                          {"max.message.bytes", "67108864"}}));
      PGB_RETURN_IF_ERROR(producer_->CreateTopic(meta_topic_, {{"cleanup.policy", "compact"},
                                                               {"retention.ms", "-1"},
                                                               {"max.message.bytes", "67108864"}}));
      // Creation returns before every broker knows the topics: wait until both have a partition.
      int meta_partitions = 0;
      for (int i = 0; i < 100 && (partitions == 0 || meta_partitions == 0); ++i) {
        PGB_ASSIGN_OR_RETURN(partitions, probe_->PartitionCount(topic_));
        PGB_ASSIGN_OR_RETURN(meta_partitions, probe_->PartitionCount(meta_topic_));
        if (partitions == 0 || meta_partitions == 0)
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }
  PGB_ASSIGN_OR_RETURN(meta_, MetaStore::Create(o_.kafka_brokers, meta_topic_, o_.kafka_timeout_ms,
                                                producer_.get()));
  if (!o_.read_only) {
    // The producer learns a topic's leader from its own metadata; asking now spares the first
    // Append the wait for librdkafka's next metadata refresh (up to a second).
    PGB_RETURN_IF_ERROR(producer_->PartitionCount(topic_).status());
    PGB_RETURN_IF_ERROR(producer_->PartitionCount(meta_topic_).status());
  }
  if (partitions != 1) {
    return Status::Error(
        ErrorCode::kQueueMismatch,
        fmt::format("kafka topic \"{}\" has {} partitions; a queue needs exactly one", topic_,
                    partitions),
        "use another --kafka-topic; pgbaton creates its topics itself");
  }
  PGB_ASSIGN_OR_RETURN(auto version, meta_->Value("s/format_version", true));
  PGB_ASSIGN_OR_RETURN(auto name, meta_->Value("s/migration_name", false));
  if (version && std::atoi(version->c_str()) > kFormatVersion) {
    return Status::Error(
        ErrorCode::kQueueFormat,
        fmt::format(
            "kafka topic \"{}\" has format version {}, newer than {} which this pgbaton reads",
            topic_, *version, kFormatVersion),
        "use the pgbaton release that wrote this queue, or a newer one");
  }
  if (name && !o_.migration_name.empty() && *name != o_.migration_name) {
    return Status::Error(ErrorCode::kQueueMismatch,
                         fmt::format("kafka topic \"{}\" belongs to migration \"{}\", not \"{}\"",
                                     topic_, *name, o_.migration_name),
                         "pass the matching --name, or another --kafka-topic");
  }
  if (o_.read_only) return Status::Ok();
  if (!version || std::atoi(version->c_str()) < kFormatVersion) {
    // A queue of an older format gets the new version too: this writer adds newer records.
    std::string v = std::to_string(kFormatVersion);
    PGB_RETURN_IF_ERROR(meta_->Write({{"s/format_version", v}}));
  }
  if (!version) PGB_RETURN_IF_ERROR(meta_->Write({{"s/migration_name", o_.migration_name}}));
  return LoadWriterState();
}

// Finds the last commit (the tail), then replays from its restart offset to rebuild the open
// transactions, so that restart offsets written from now on still cover their chunks.
Status KafkaQueue::LoadWriterState() {
  PGB_ASSIGN_OR_RETURN(FoundCommit last, TailCommit());
  std::lock_guard<std::mutex> g(probe_mu_);
  int64_t low, high;
  PGB_RETURN_IF_ERROR(probe_->Watermarks(topic_, &low, &high));
  next_offset_ = high;
  int64_t start = low;
  if (last) {
    last_commit_ = last->second.commit.commit_lsn;
    last_end_ = last->second.commit.end_lsn;
    if (last->second.txn_ref > 0)
      start = std::max(low, static_cast<int64_t>(last->second.txn_ref - 1));
  }
  if (start >= high) return Status::Ok();
  TxnReassembler a(topic_, Lsn::Invalid(), 0);
  PGB_RETURN_IF_ERROR(probe_->Assign(topic_, start));
  PGB_RETURN_IF_ERROR(
      probe_->ReadUntil(high, [&](Message& m, bool*) { return a.Feed(&m).status(); }));
  for (const auto& [xid, chunks] : a.pending()) {
    OpenTxn t;
    t.first_offset = chunks.front().offset;
    for (const auto& c : chunks) ++t.per_subxid[c.subxid];
    open_[xid] = std::move(t);
  }
  return Status::Ok();
}

}  // namespace kafka

Result<std::unique_ptr<WorkQueue>> OpenKafkaQueue(const QueueOptions& options) {
  auto q = std::make_unique<kafka::KafkaQueue>(options);
  PGB_RETURN_IF_ERROR(q->Init());
  return std::unique_ptr<WorkQueue>(std::move(q));
}

}  // namespace pgbaton::queue

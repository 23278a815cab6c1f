// Writing the Kafka queue: appends (relation descriptors to the meta topic first, then chunks,
// aborts and commits to the data topic, each commit carrying the offset a reader must restart
// at), discard markers, trims and metadata writes. One writer thread; every write waits for its
// acks=all delivery reports.
#include <fmt/format.h>

#include <algorithm>
#include <mutex>
#include <unordered_map>

#include "common/log.h"
#include "queue/kafka_layout.h"
#include "queue/kafka_queue_impl.h"

namespace pgbaton::queue::kafka {

Status KafkaQueue::Append(const RecordBatch& batch) {
  PGB_RETURN_IF_ERROR(CheckWritable());
  if (batch.empty()) return Status::Ok();
  // Descriptors first, acknowledged before any change that uses them.
  if (!batch.relations.empty()) {
    std::vector<MetaStore::Entry> entries;
    for (const RelationDescriptor& r : batch.relations)
      entries.push_back({RelationMetaKey(r.id, r.version), EncodeRelation(r)});
    PGB_RETURN_IF_ERROR(meta_->Write(entries));
  }
  std::unordered_map<uint32_t, OpenTxn> open = open_;
  Lsn last = last_commit_, last_end = last_end_;
  std::unordered_map<uint32_t, bool> skip;  // xids whose commit in this batch is a resend
  {
    Lsn prev = last;
    for (const CommitRecord& c : batch.commits) {
      skip[c.xid.value] = c.commit_lsn <= prev;
      prev = std::max(prev, c.commit_lsn);
    }
  }
  int64_t produced = 0;
  auto produce = [&](std::string_view key, const std::string& value) {
    ++produced;
    return producer_->Produce(topic_, key, &value);
  };
  for (const ChangeChunk& c : batch.chunks) {
    bool aborted = false;
    for (auto [xid, subxid] : batch.aborts)
      aborted |= c.xid == xid && (subxid == xid || c.subxid == subxid);
    auto sk = skip.find(c.xid.value);
    if (aborted || (sk != skip.end() && sk->second)) continue;
    auto [it, inserted] = open.try_emplace(c.xid.value);
    if (inserted) it->second.first_offset = next_offset_ + produced;
    ++it->second.per_subxid[c.subxid.value];
    PGB_RETURN_IF_ERROR(produce(ChunkKey(c.xid, c.subxid), EncodeChunk(c)));
  }
  for (auto [xid, subxid] : batch.aborts) {
    auto it = open.find(xid.value);
    if (it == open.end()) continue;
    PGB_RETURN_IF_ERROR(produce("a", EncodeAbort(xid, subxid)));
    if (subxid == xid) {
      open.erase(it);
    } else {
      it->second.per_subxid.erase(subxid.value);
    }
  }
  for (const CommitRecord& commit : batch.commits) {
    auto oit = open.find(commit.xid.value);
    if (skip[commit.xid.value]) {
      LogDebug(fmt::format("queue: skipping commit {} of xid {}: already at {}",
                           commit.commit_lsn.ToString(), commit.xid.value, last.ToString()));
      if (oit != open.end()) {
        PGB_RETURN_IF_ERROR(produce("a", EncodeAbort(commit.xid, commit.xid)));
        open.erase(oit);
      }
      continue;
    }
    StoredCommit s{commit, 0};
    s.commit.chunk_count = oit == open.end() ? 0 : oit->second.count();
    if (oit != open.end()) open.erase(oit);
    // Where a reader starting after this commit must begin: the first chunk of any transaction
    // still open, else right after this record.
    int64_t restart = next_offset_ + produced + 1;
    for (const auto& [x, t] : open) restart = std::min(restart, t.first_offset);
    s.txn_ref = static_cast<uint64_t>(restart) + 1;
    PGB_RETURN_IF_ERROR(produce(CommitMessageKey(commit.commit_lsn), EncodeCommit(s)));
    last = commit.commit_lsn;
    last_end = commit.end_lsn;
  }
  int64_t expected_next = next_offset_ + produced;
  if (produced > 0) PGB_RETURN_IF_ERROR(FlushData());
  if (next_offset_ != expected_next) {
    // Another producer wrote to the topic: restart offsets stay lower bounds, so readers are
    // still correct, but two writers on one queue is a mistake worth a warning.
    LogWarning(
        fmt::format("kafka topic \"{}\": offsets moved by {} records not written by this pgbaton",
                    topic_, next_offset_ - expected_next));
  }
  open_ = std::move(open);
  std::lock_guard<std::mutex> g(state_mu_);
  last_commit_ = last;
  last_end_ = last_end;
  return Status::Ok();
}

Status KafkaQueue::Trim(Lsn upto) {
  PGB_RETURN_IF_ERROR(CheckWritable());
  PGB_ASSIGN_OR_RETURN(Lsn trimmed, TrimmedLsn());
  if (upto <= trimmed) return Status::Ok();
  std::string v = std::to_string(upto.value());
  PGB_RETURN_IF_ERROR(meta_->Write({{"s/trimmed_lsn", v}}));
  // Free the space too: records before the restart offset of the last trimmed commit are needed
  // by no reader. Best effort: the trimmed LSN above is what readers obey.
  PGB_ASSIGN_OR_RETURN(int64_t start, StartOffsetFor(upto));
  if (start > 0) {
    Status s = producer_->DeleteRecordsBefore(topic_, start);
    if (!s.ok()) LogWarning(s.message());
  }
  return Status::Ok();
}

Status KafkaQueue::DiscardUncommitted() {
  PGB_RETURN_IF_ERROR(CheckWritable());
  std::string v = EncodeMarker(RecordType::kDiscard, Lsn::Invalid());
  PGB_RETURN_IF_ERROR(producer_->Produce(topic_, "d", &v));
  PGB_RETURN_IF_ERROR(FlushData());
  open_.clear();
  return Status::Ok();
}

Status KafkaQueue::PutMeta(const std::string& key, const std::string& value) {
  PGB_RETURN_IF_ERROR(CheckWritable());
  return meta_->Write({{"m/" + key, value}});
}

Status KafkaQueue::DeleteMeta(const std::string& key) {
  PGB_RETURN_IF_ERROR(CheckWritable());
  return meta_->Write({{"m/" + key, std::nullopt}});
}

Status KafkaQueue::CheckWritable() {
  if (o_.read_only) {
    return Status::Error(ErrorCode::kInternal,
                         fmt::format("kafka topic \"{}\" is open read-only", topic_));
  }
  if (broken_) {
    return Status::Error(
        ErrorCode::kKafka,
        fmt::format("kafka topic \"{}\": an earlier append failed; reopen the queue", topic_),
        "restart the writer; it resumes after the last durable transaction");
  }
  return Status::Ok();
}

Status KafkaQueue::FlushData() {
  int64_t last = -1;
  Status s = producer_->Flush(topic_, &last);
  if (!s.ok()) {
    broken_ = true;  // the topic may hold part of the batch: only a reopen knows what
    return s;
  }
  if (last >= 0) next_offset_ = last + 1;
  return Status::Ok();
}

}  // namespace pgbaton::queue::kafka

// Reading the Kafka queue: a cursor reassembles transactions from the data topic (re-reading the
// chunks it could not cache when their commit arrives), positions are found by probing the topic
// (its tail, or a binary search by offset for where a reader must start), and relations and
// metadata come from the meta topic. Thread-safe: the probe consumer is used under probe_mu_.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <mutex>

#include "queue/kafka_layout.h"
#include "queue/kafka_queue_impl.h"
#include "queue/kafka_reassembler.h"

namespace pgbaton::queue::kafka {
namespace {

// A cursor keeps the bytes of pending chunks in memory up to this budget; past it only their
// offsets (16 bytes each) and re-reads them from the topic when their commit arrives.
constexpr size_t kCacheBudgetBytes = 32 << 20;

class KafkaCursor : public QueueCursor {
 public:
  KafkaCursor(std::unique_ptr<Consumer> consumer, Lsn after, std::string topic)
      : consumer_(std::move(consumer)),
        assembler_(topic, after, kCacheBudgetBytes),
        topic_(std::move(topic)) {}
  Result<std::unique_ptr<TransactionReader>> Next(std::chrono::milliseconds wait) override;
  // Reads the record at `offset` (a chunk seen earlier but not cached).
  Status Fetch(int64_t offset, std::string* bytes) {
    if (!fetcher_) {
      PGB_ASSIGN_OR_RETURN(fetcher_,
                           Consumer::Create(consumer_->brokers(), consumer_->timeout_ms()));
    }
    if (fetch_next_ != offset) {
      PGB_RETURN_IF_ERROR(fetcher_->Assign(topic_, offset));
      fetch_next_ = offset;
    }
    bool found = false;
    Status corrupt;
    PGB_RETURN_IF_ERROR(fetcher_->ReadUntil(INT64_MAX, [&](Message& m, bool* more) {
      *more = false;
      if (m.offset != offset) {
        corrupt =
            CorruptAt(fmt::format("at offset {} of kafka topic \"{}\"", offset, topic_),
                      fmt::format("the record is gone (the next one is at offset {})", m.offset));
      } else {
        *bytes = std::move(m.value);
        found = true;
      }
      return Status::Ok();
    }));
    if (!corrupt.ok()) return corrupt;
    if (!found) {
      return CorruptAt(fmt::format("at offset {} of kafka topic \"{}\"", offset, topic_),
                       "the record is gone");
    }
    fetch_next_ = offset + 1;
    return Status::Ok();
  }

 private:
  std::unique_ptr<Consumer> consumer_;
  TxnReassembler assembler_;
  std::string topic_;
  bool at_end_ = false;
  std::unique_ptr<Consumer> fetcher_;
  int64_t fetch_next_ = -1;
};

class KafkaTxnReader : public TransactionReader {
 public:
  KafkaTxnReader(KafkaCursor* cursor, ReadyTxn txn) : cursor_(cursor), txn_(std::move(txn)) {}
  const CommitRecord& commit() const override { return txn_.commit.commit; }
  Result<bool> NextChunk(ChangeChunk* chunk) override {
    const CommitRecord& c = txn_.commit.commit;
    if (next_ == txn_.chunks.size()) {
      if (next_ != c.chunk_count) {
        return CorruptAt(fmt::format("commit {}", c.commit_lsn.ToString()),
                         fmt::format("{} of its {} chunks are present", next_, c.chunk_count));
      }
      return false;
    }
    PendingChunk& pc = txn_.chunks[next_];
    std::string fetched;
    if (!pc.cached) PGB_RETURN_IF_ERROR(cursor_->Fetch(pc.offset, &fetched));
    std::string what = fmt::format("chunk {} of commit {}", next_, c.commit_lsn.ToString());
    PGB_RETURN_IF_ERROR(DecodeChunk(pc.cached ? pc.bytes : fetched, what, chunk));
    if (chunk->xid != c.xid)
      return CorruptAt(what, fmt::format("it belongs to xid {}", chunk->xid.value));
    pc.bytes.clear();
    pc.bytes.shrink_to_fit();
    ++next_;
    return true;
  }

 private:
  KafkaCursor* cursor_;
  ReadyTxn txn_;
  size_t next_ = 0;
};

Result<std::unique_ptr<TransactionReader>> KafkaCursor::Next(std::chrono::milliseconds wait) {
  auto deadline = std::chrono::steady_clock::now() + wait;
  int idle_ms = 0;
  Message m;
  while (true) {
    auto now = std::chrono::steady_clock::now();
    int remaining = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count());
    int poll_ms = at_end_ ? std::clamp(remaining, 0, 100) : 100;
    PGB_ASSIGN_OR_RETURN(Consumer::Event e, consumer_->Poll(poll_ms, &m));
    if (e == Consumer::Event::kMessage) {
      at_end_ = false;
      idle_ms = 0;
      PGB_ASSIGN_OR_RETURN(auto ready, assembler_.Feed(&m));
      if (ready)
        return std::unique_ptr<TransactionReader>(new KafkaTxnReader(this, std::move(*ready)));
      continue;
    }
    if (e == Consumer::Event::kEnd) at_end_ = true;
    if (at_end_) {
      if (std::chrono::steady_clock::now() >= deadline) return std::unique_ptr<TransactionReader>();
      continue;
    }
    idle_ms += poll_ms;
    if (idle_ms >= consumer_->timeout_ms() && std::chrono::steady_clock::now() >= deadline) {
      return KafkaError(
          RD_KAFKA_RESP_ERR__TIMED_OUT,
          fmt::format("reading kafka topic \"{}\" on \"{}\"", topic_, consumer_->brokers()));
    }
  }
}

}  // namespace

Result<Lsn> KafkaQueue::LastCommitLsn() {
  if (!o_.read_only) {
    std::lock_guard<std::mutex> g(state_mu_);
    return last_commit_;
  }
  PGB_ASSIGN_OR_RETURN(auto tail, TailCommit());
  return tail ? tail->second.commit.commit_lsn : Lsn::Invalid();
}

Result<Lsn> KafkaQueue::LastEndLsn() {
  if (!o_.read_only) {
    std::lock_guard<std::mutex> g(state_mu_);
    return last_end_;
  }
  PGB_ASSIGN_OR_RETURN(auto tail, TailCommit());
  return tail ? tail->second.commit.end_lsn : Lsn::Invalid();
}

Result<Lsn> KafkaQueue::FirstCommitLsn() {
  PGB_ASSIGN_OR_RETURN(auto cursor, ReadFrom(Lsn::Invalid()));
  PGB_ASSIGN_OR_RETURN(auto txn, cursor->Next(std::chrono::milliseconds(0)));
  return txn ? txn->commit().commit_lsn : Lsn::Invalid();
}

Result<std::unique_ptr<QueueCursor>> KafkaQueue::ReadFrom(Lsn after) {
  PGB_ASSIGN_OR_RETURN(Lsn trimmed, TrimmedLsn());
  Lsn from = std::max(after, trimmed);
  PGB_ASSIGN_OR_RETURN(int64_t start, StartOffsetFor(from));
  PGB_ASSIGN_OR_RETURN(auto consumer, Consumer::Create(o_.kafka_brokers, o_.kafka_timeout_ms));
  PGB_RETURN_IF_ERROR(consumer->Assign(topic_, start));
  return std::unique_ptr<QueueCursor>(new KafkaCursor(std::move(consumer), from, topic_));
}

Result<RelationDescriptor> KafkaQueue::GetRelation(RelationId id, uint32_t version) {
  std::string key = RelationMetaKey(id, version);
  PGB_ASSIGN_OR_RETURN(auto raw, meta_->Value(key, false));
  if (!raw) {
    PGB_ASSIGN_OR_RETURN(raw, meta_->Value(key, true));
  }
  if (!raw) {
    return Status::Error(ErrorCode::kNotFound,
                         fmt::format("relation {} version {} is not in kafka topic \"{}\"",
                                     id.value, version, meta_topic_));
  }
  RelationDescriptor r;
  PGB_RETURN_IF_ERROR(
      DecodeRelation(*raw, fmt::format("relation {} version {}", id.value, version), &r));
  return r;
}

Result<std::vector<RelationDescriptor>> KafkaQueue::ListRelations() {
  PGB_ASSIGN_OR_RETURN(auto stored, meta_->List("r/"));
  std::vector<RelationDescriptor> out;
  for (const auto& [key, value] : stored) {
    RelationDescriptor r;
    PGB_RETURN_IF_ERROR(DecodeRelation(value, key, &r));
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::optional<std::string>> KafkaQueue::GetMeta(const std::string& key) {
  return meta_->Value("m/" + key, true);
}

Result<std::map<std::string, std::string>> KafkaQueue::ListMeta(const std::string& prefix) {
  PGB_ASSIGN_OR_RETURN(auto stored, meta_->List("m/" + prefix));
  std::map<std::string, std::string> out;
  for (auto& [key, value] : stored) out.emplace(key.substr(2), std::move(value));
  return out;
}

Result<uint64_t> KafkaQueue::SizeBytes() {
  std::lock_guard<std::mutex> g(probe_mu_);
  int64_t low, high;
  PGB_RETURN_IF_ERROR(probe_->Watermarks(topic_, &low, &high));
  if (high <= low) return uint64_t{0};
  int64_t start = std::max(low, high - 100);
  uint64_t bytes = 0, n = 0;
  PGB_RETURN_IF_ERROR(probe_->Assign(topic_, start));
  PGB_RETURN_IF_ERROR(probe_->ReadUntil(high, [&](Message& m, bool*) {
    bytes += m.value.size() + m.key.size();
    ++n;
    return Status::Ok();
  }));
  return n == 0 ? uint64_t{0} : bytes / n * static_cast<uint64_t>(high - low);
}

Result<Lsn> KafkaQueue::TrimmedLsn() {
  PGB_ASSIGN_OR_RETURN(auto v, meta_->Value("s/trimmed_lsn", true));
  return v ? Lsn(std::stoull(*v)) : Lsn::Invalid();
}

Result<KafkaQueue::FoundCommit> KafkaQueue::FindCommitFrom(int64_t offset, int64_t high) {
  FoundCommit found;
  PGB_RETURN_IF_ERROR(probe_->Assign(topic_, offset));
  PGB_RETURN_IF_ERROR(probe_->ReadUntil(high, [&](Message& m, bool* more) {
    std::string what = fmt::format("at offset {} of kafka topic \"{}\"", m.offset, topic_);
    PGB_ASSIGN_OR_RETURN(EnvelopeInfo info, PeekEnvelope(m.value, what));
    if (info.type != RecordType::kCommit) return Status::Ok();
    StoredCommit s;
    PGB_RETURN_IF_ERROR(DecodeCommit(m.value, what, &s));
    found.emplace(m.offset, std::move(s));
    *more = false;
    return Status::Ok();
  }));
  return found;
}

Result<KafkaQueue::FoundCommit> KafkaQueue::TailCommit() {
  std::lock_guard<std::mutex> g(probe_mu_);
  int64_t low, high;
  PGB_RETURN_IF_ERROR(probe_->Watermarks(topic_, &low, &high));
  for (int64_t window = 64; high > low; window *= 8) {
    int64_t start = std::max(low, high - window);
    FoundCommit last;
    PGB_RETURN_IF_ERROR(probe_->Assign(topic_, start));
    PGB_RETURN_IF_ERROR(probe_->ReadUntil(high, [&](Message& m, bool*) {
      std::string what = fmt::format("at offset {} of kafka topic \"{}\"", m.offset, topic_);
      PGB_ASSIGN_OR_RETURN(EnvelopeInfo info, PeekEnvelope(m.value, what));
      if (info.type != RecordType::kCommit) return Status::Ok();
      StoredCommit s;
      PGB_RETURN_IF_ERROR(DecodeCommit(m.value, what, &s));
      last.emplace(m.offset, std::move(s));
      return Status::Ok();
    }));
    if (last || start == low) return last;
  }
  return FoundCommit();
}

Result<int64_t> KafkaQueue::StartOffsetFor(Lsn after) {
  if (!after.IsValid()) return int64_t{RD_KAFKA_OFFSET_BEGINNING};
  std::lock_guard<std::mutex> g(probe_mu_);
  int64_t low, high;
  PGB_RETURN_IF_ERROR(probe_->Watermarks(topic_, &low, &high));
  int64_t lo = low, hi = high, best = -1;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    PGB_ASSIGN_OR_RETURN(FoundCommit f, FindCommitFrom(mid, high));
    if (!f || f->second.commit.commit_lsn > after) {
      hi = mid;
    } else {
      best = f->second.txn_ref > 0 ? static_cast<int64_t>(f->second.txn_ref - 1) : low;
      lo = f->first + 1;
    }
  }
  return best >= 0 ? std::max(best, low) : low;
}

}  // namespace pgbaton::queue::kafka

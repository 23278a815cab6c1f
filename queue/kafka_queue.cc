#include "queue/kafka_queue.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/log.h"
#include "queue/codec.h"
#include "queue/kafka_client.h"

namespace pgbaton::queue {
namespace {

using kafka::Consumer;
using kafka::KafkaError;
using kafka::Message;
using kafka::Producer;

// A cursor keeps the bytes of pending chunks in memory up to this budget; past it only their
// offsets (16 bytes each) and re-reads them from the topic when their commit arrives.
constexpr size_t kCacheBudgetBytes = 32 << 20;

std::string ChunkKey(Xid xid, Xid subxid) {
  std::string k(1, 'x');
  PutBigEndian32(&k, xid.value);
  PutBigEndian32(&k, subxid.value);
  return k;
}
std::string CommitMessageKey(Lsn lsn) {
  std::string k(1, 'c');
  PutBigEndian64(&k, lsn.value());
  return k;
}
std::string RelationMetaKey(RelationId id, uint32_t version) {
  return fmt::format("r/{}/{}", id.value, version);
}

Status CorruptAt(std::string_view what, std::string_view why) {
  return Status::Error(ErrorCode::kQueueCorrupt,
                       fmt::format("queue record {} is corrupt: {}", what, why),
                       "the queue cannot be read past this record; recreate it");
}

struct PendingChunk {
  int64_t offset = -1;
  uint32_t subxid = 0;
  bool cached = false;
  std::string bytes;  // the record, when cached
};

struct ReadyTxn {
  StoredCommit commit;
  int64_t offset = -1;
  std::vector<PendingChunk> chunks;
};

// Reassembles transactions from the data topic: chunks wait (by xid) until their commit record,
// abort or discard marker. Commits at or before `skip_upto` are dropped with their chunks.
class Assembler {
 public:
  Assembler(std::string topic, Lsn skip_upto, size_t budget)
      : topic_(std::move(topic)), skip_upto_(skip_upto), budget_(budget) {}

  Result<std::optional<ReadyTxn>> Feed(Message* m) {
    std::string what = fmt::format("at offset {} of kafka topic \"{}\"", m->offset, topic_);
    if (m->tombstone) return CorruptAt(what, "empty message");
    PGB_ASSIGN_OR_RETURN(EnvelopeInfo info, PeekEnvelope(m->value, what));
    switch (info.type) {
      case RecordType::kChunk: {
        if (m->key.size() != 9 || m->key[0] != 'x') return CorruptAt(what, "bad chunk key");
        PendingChunk pc;
        pc.offset = m->offset;
        pc.subxid = GetBigEndian32(m->key.data() + 5);
        if (cached_ + m->value.size() <= budget_) {
          cached_ += m->value.size();
          pc.cached = true;
          pc.bytes = std::move(m->value);
        }
        pending_[GetBigEndian32(m->key.data() + 1)].push_back(std::move(pc));
        return std::optional<ReadyTxn>();
      }
      case RecordType::kCommit: {
        ReadyTxn t;
        t.offset = m->offset;
        PGB_RETURN_IF_ERROR(DecodeCommit(m->value, what, &t.commit));
        auto it = pending_.find(t.commit.commit.xid.value);
        if (it != pending_.end()) {
          t.chunks = std::move(it->second);
          pending_.erase(it);
          for (const auto& c : t.chunks) cached_ -= c.cached ? c.bytes.size() : 0;
        }
        if (t.commit.commit.commit_lsn <= skip_upto_) return std::optional<ReadyTxn>();
        skip_upto_ = t.commit.commit.commit_lsn;
        return std::optional<ReadyTxn>(std::move(t));
      }
      case RecordType::kAbort: {
        Xid xid, subxid;
        PGB_RETURN_IF_ERROR(DecodeAbort(m->value, what, &xid, &subxid));
        auto it = pending_.find(xid.value);
        if (it == pending_.end()) break;
        auto& v = it->second;
        for (auto c = v.begin(); c != v.end();) {
          if (subxid == xid || c->subxid == subxid.value) {
            cached_ -= c->cached ? c->bytes.size() : 0;
            c = v.erase(c);
          } else {
            ++c;
          }
        }
        if (v.empty()) pending_.erase(it);
        break;
      }
      case RecordType::kDiscard:
        pending_.clear();
        cached_ = 0;
        break;
      case RecordType::kTrim:
      case RecordType::kRelation:
        break;
    }
    return std::optional<ReadyTxn>();
  }
  const std::unordered_map<uint32_t, std::vector<PendingChunk>>& pending() const {
    return pending_;
  }

 private:
  std::string topic_;
  Lsn skip_upto_;
  size_t budget_;
  size_t cached_ = 0;
  std::unordered_map<uint32_t, std::vector<PendingChunk>> pending_;
};

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
  Assembler assembler_;
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

struct OpenTxn {
  int64_t first_offset = 0;                 // a lower bound of its first chunk's offset
  std::map<uint32_t, uint32_t> per_subxid;  // chunks in the topic by subxid
  uint32_t count() const {
    uint32_t n = 0;
    for (const auto& [s, c] : per_subxid) n += c;
    return n;
  }
};

class KafkaQueue : public WorkQueue {
 public:
  explicit KafkaQueue(QueueOptions o)
      : o_(std::move(o)), topic_(o_.kafka_topic), meta_topic_(o_.kafka_topic + ".meta") {}

  Status Init();

  Status Append(const RecordBatch& batch) override;
  Status DiscardUncommitted() override {
    PGB_RETURN_IF_ERROR(CheckWritable());
    std::string v = EncodeMarker(RecordType::kDiscard, Lsn::Invalid());
    PGB_RETURN_IF_ERROR(producer_->Produce(topic_, "d", &v));
    PGB_RETURN_IF_ERROR(FlushData());
    open_.clear();
    return Status::Ok();
  }
  Status Trim(Lsn upto) override;

  Result<Lsn> LastCommitLsn() override {
    if (!o_.read_only) {
      std::lock_guard<std::mutex> g(state_mu_);
      return last_commit_;
    }
    PGB_ASSIGN_OR_RETURN(auto tail, TailCommit());
    return tail ? tail->second.commit.commit_lsn : Lsn::Invalid();
  }
  Result<Lsn> LastEndLsn() override {
    if (!o_.read_only) {
      std::lock_guard<std::mutex> g(state_mu_);
      return last_end_;
    }
    PGB_ASSIGN_OR_RETURN(auto tail, TailCommit());
    return tail ? tail->second.commit.end_lsn : Lsn::Invalid();
  }
  Result<Lsn> FirstCommitLsn() override {
    PGB_ASSIGN_OR_RETURN(auto cursor, ReadFrom(Lsn::Invalid()));
    PGB_ASSIGN_OR_RETURN(auto txn, cursor->Next(std::chrono::milliseconds(0)));
    return txn ? txn->commit().commit_lsn : Lsn::Invalid();
  }
  Result<std::unique_ptr<QueueCursor>> ReadFrom(Lsn after) override {
    PGB_ASSIGN_OR_RETURN(Lsn trimmed, TrimmedLsn());
    Lsn from = std::max(after, trimmed);
    PGB_ASSIGN_OR_RETURN(int64_t start, StartOffsetFor(from));
    PGB_ASSIGN_OR_RETURN(auto consumer, Consumer::Create(o_.kafka_brokers, o_.kafka_timeout_ms));
    PGB_RETURN_IF_ERROR(consumer->Assign(topic_, start));
    return std::unique_ptr<QueueCursor>(new KafkaCursor(std::move(consumer), from, topic_));
  }
  Result<RelationDescriptor> GetRelation(RelationId id, uint32_t version) override {
    std::string key = RelationMetaKey(id, version);
    PGB_ASSIGN_OR_RETURN(auto raw, MetaValue(key, false));
    if (!raw) {
      PGB_ASSIGN_OR_RETURN(raw, MetaValue(key, true));
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
  Result<std::vector<RelationDescriptor>> ListRelations() override {
    PGB_RETURN_IF_ERROR(RefreshMeta());
    std::lock_guard<std::mutex> g(meta_mu_);
    std::vector<RelationDescriptor> out;
    for (auto it = meta_.lower_bound("r/"); it != meta_.end() && it->first.rfind("r/", 0) == 0;
         ++it) {
      RelationDescriptor r;
      PGB_RETURN_IF_ERROR(DecodeRelation(it->second, it->first, &r));
      out.push_back(std::move(r));
    }
    return out;
  }
  Status PutMeta(const std::string& key, const std::string& value) override {
    PGB_RETURN_IF_ERROR(CheckWritable());
    return WriteMeta("m/" + key, &value);
  }
  Result<std::optional<std::string>> GetMeta(const std::string& key) override {
    return MetaValue("m/" + key, true);
  }
  Result<std::map<std::string, std::string>> ListMeta(const std::string& prefix) override {
    PGB_RETURN_IF_ERROR(RefreshMeta());
    std::lock_guard<std::mutex> g(meta_mu_);
    std::map<std::string, std::string> out;
    std::string p = "m/" + prefix;
    for (auto it = meta_.lower_bound(p); it != meta_.end() && it->first.rfind(p, 0) == 0; ++it) {
      out.emplace(it->first.substr(2), it->second);
    }
    return out;
  }
  Status DeleteMeta(const std::string& key) override {
    PGB_RETURN_IF_ERROR(CheckWritable());
    return WriteMeta("m/" + key, nullptr);
  }
  // Approximate: the number of records in the topic times the mean size of the last 100.
  Result<uint64_t> SizeBytes() override {
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

 private:
  Status CheckWritable() {
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
  Status FlushData() {
    int64_t last = -1;
    Status s = producer_->Flush(topic_, &last);
    if (!s.ok()) {
      broken_ = true;  // the topic may hold part of the batch: only a reopen knows what
      return s;
    }
    if (last >= 0) next_offset_ = last + 1;
    return Status::Ok();
  }
  Status WriteMeta(const std::string& key, const std::string* value) {
    PGB_RETURN_IF_ERROR(producer_->Produce(meta_topic_, key, value));
    PGB_RETURN_IF_ERROR(producer_->Flush(meta_topic_, nullptr));
    std::lock_guard<std::mutex> g(meta_mu_);
    if (value) {
      meta_[key] = *value;
    } else {
      meta_.erase(key);
    }
    return Status::Ok();
  }
  // Reads the compacted meta topic up to its current end into meta_.
  Status RefreshMeta() {
    std::lock_guard<std::mutex> g(meta_mu_);
    int64_t low, high;
    PGB_RETURN_IF_ERROR(meta_consumer_->Watermarks(meta_topic_, &low, &high));
    if (meta_next_ < 0) {
      PGB_RETURN_IF_ERROR(meta_consumer_->Assign(meta_topic_, RD_KAFKA_OFFSET_BEGINNING));
      meta_next_ = low;
    }
    if (meta_next_ >= high) return Status::Ok();
    return meta_consumer_->ReadUntil(high, [&](Message& m, bool*) {
      meta_next_ = m.offset + 1;
      if (m.tombstone) {
        meta_.erase(m.key);
      } else {
        meta_[m.key] = std::move(m.value);
      }
      return Status::Ok();
    });
  }
  Result<std::optional<std::string>> MetaValue(const std::string& key, bool refresh) {
    if (refresh) PGB_RETURN_IF_ERROR(RefreshMeta());
    std::lock_guard<std::mutex> g(meta_mu_);
    auto it = meta_.find(key);
    if (it == meta_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  Result<Lsn> TrimmedLsn() {
    PGB_ASSIGN_OR_RETURN(auto v, MetaValue("s/trimmed_lsn", true));
    return v ? Lsn(std::stoull(*v)) : Lsn::Invalid();
  }

  using FoundCommit = std::optional<std::pair<int64_t, StoredCommit>>;
  // The first commit record at or after `offset` and before `high` (probe_mu_ held).
  Result<FoundCommit> FindCommitFrom(int64_t offset, int64_t high) {
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
  // The last commit record in the topic: reads growing windows back from the end.
  Result<FoundCommit> TailCommit() {
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
  // The offset a reader must start at to see every chunk of every commit after `after`: the
  // restart offset stored in the last commit at or before `after` (binary search by offset).
  Result<int64_t> StartOffsetFor(Lsn after) {
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
  Status LoadWriterState();

  QueueOptions o_;
  std::string topic_;
  std::string meta_topic_;
  std::unique_ptr<Producer> producer_;
  std::mutex meta_mu_;
  std::unique_ptr<Consumer> meta_consumer_;
  std::map<std::string, std::string> meta_;
  int64_t meta_next_ = -1;
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

Status KafkaQueue::Init() {
  if (topic_.empty()) {
    return Status::Error(ErrorCode::kUsage, "no kafka topic given",
                         "pass --kafka-topic (one topic per migration)");
  }
  PGB_ASSIGN_OR_RETURN(meta_consumer_, Consumer::Create(o_.kafka_brokers, o_.kafka_timeout_ms));
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
  PGB_ASSIGN_OR_RETURN(auto version, MetaValue("s/format_version", true));
  PGB_ASSIGN_OR_RETURN(auto name, MetaValue("s/migration_name", false));
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
    PGB_RETURN_IF_ERROR(WriteMeta("s/format_version", &v));
  }
  if (!version) PGB_RETURN_IF_ERROR(WriteMeta("s/migration_name", &o_.migration_name));
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
  Assembler a(topic_, Lsn::Invalid(), 0);
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

Status KafkaQueue::Append(const RecordBatch& batch) {
  PGB_RETURN_IF_ERROR(CheckWritable());
  if (batch.empty()) return Status::Ok();
  // Descriptors first, acknowledged before any change that uses them.
  if (!batch.relations.empty()) {
    for (const RelationDescriptor& r : batch.relations) {
      std::string v = EncodeRelation(r);
      PGB_RETURN_IF_ERROR(producer_->Produce(meta_topic_, RelationMetaKey(r.id, r.version), &v));
    }
    PGB_RETURN_IF_ERROR(producer_->Flush(meta_topic_, nullptr));
    std::lock_guard<std::mutex> g(meta_mu_);
    for (const RelationDescriptor& r : batch.relations)
      meta_[RelationMetaKey(r.id, r.version)] = EncodeRelation(r);
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
  PGB_RETURN_IF_ERROR(WriteMeta("s/trimmed_lsn", &v));
  // Free the space too: records before the restart offset of the last trimmed commit are needed
  // by no reader. Best effort: the trimmed LSN above is what readers obey.
  PGB_ASSIGN_OR_RETURN(int64_t start, StartOffsetFor(upto));
  if (start > 0) {
    Status s = producer_->DeleteRecordsBefore(topic_, start);
    if (!s.ok()) LogWarning(s.message());
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<WorkQueue>> OpenKafkaQueue(const QueueOptions& options) {
  auto q = std::make_unique<KafkaQueue>(options);
  PGB_RETURN_IF_ERROR(q->Init());
  return std::unique_ptr<WorkQueue>(std::move(q));
}

}  // namespace pgbaton::queue

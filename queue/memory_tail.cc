#include "queue/memory_tail.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace pgbaton::queue {
namespace {

using Clock = std::chrono::steady_clock;

// A committed transaction held in memory: its commit record as the backend stores it (chunk_count
// = the chunks held) and its chunks.
struct HeldTxn {
  CommitRecord commit;
  std::vector<ChangeChunk> chunks;
  size_t bytes = 0;
  bool whole = true;  // false: the backend alone holds this transaction whole
};

size_t ApproxBytes(const ChangeChunk& chunk) {
  size_t n = sizeof(ChangeChunk);
  for (const Change& c : chunk.changes) {
    n += sizeof(Change) + c.message_prefix.size() + c.message_content.size();
    for (const auto* t : {&c.old_tuple, &c.new_tuple}) {
      if (!t->has_value()) continue;
      for (const Value& v : **t) n += sizeof(Value) + v.data.size();
    }
  }
  return n;
}

class HeldReader : public TransactionReader {
 public:
  explicit HeldReader(HeldTxn t) : t_(std::move(t)) {}
  const CommitRecord& commit() const override { return t_.commit; }
  Result<bool> NextChunk(ChangeChunk* chunk) override {
    if (next_ >= t_.chunks.size()) return false;
    *chunk = std::move(t_.chunks[next_++]);
    return true;
  }

 private:
  HeldTxn t_;
  size_t next_ = 0;
};

class TailQueue;

class TailCursor : public QueueCursor {
 public:
  TailCursor(TailQueue* q, Lsn after) : q_(q), pos_(after) {}
  Result<std::unique_ptr<TransactionReader>> Next(std::chrono::milliseconds wait) override;

 private:
  TailQueue* q_;
  Lsn pos_;  // the commit LSN of the last transaction served (or where the cursor started)
  std::unique_ptr<QueueCursor> inner_;  // while reading the backend, at pos_
};

// Memory covers the commits in (base_, end_]: every durable commit in that range is in held_,
// except those a cursor took (which raised base_ past them). When end_ >= last_, memory covers
// the queue's tail; else the commits in (end_, last_] are only in the backend, and memory starts
// over at last_ once a cursor drained it.
class TailQueue : public MemoryTailQueue {
 public:
  TailQueue(std::unique_ptr<WorkQueue> inner, MemoryTailOptions o, Lsn last)
      : inner_(std::move(inner)), options_(o), base_(last), end_(last), last_(last) {}

  Status Append(const RecordBatch& batch) override {
    RecordBatch copy = batch;
    return AppendOwned(std::move(copy));
  }

  Status AppendOwned(RecordBatch&& batch) override {
    Status s = inner_->Append(batch);
    if (!s.ok()) {
      // What the backend holds now is its to say: read it from there from now on.
      std::lock_guard<std::mutex> l(mu_);
      broken_ = true;
      held_.clear();
      bytes_ = 0;
      ++generation_;
      cv_.notify_all();
      return s;
    }
    // The chunks of each transaction committed in this batch, as the backend keeps them (it
    // drops the chunks of aborted (sub)transactions).
    std::unordered_map<uint32_t, std::vector<size_t>> chunks_of;
    for (size_t i = 0; i < batch.chunks.size(); ++i) {
      const ChangeChunk& c = batch.chunks[i];
      bool dropped = false;
      for (const auto& [xid, subxid] : batch.aborts) {
        if (c.xid == xid && (subxid == xid || c.subxid == subxid)) dropped = true;
      }
      if (!dropped) chunks_of[c.xid.value].push_back(i);
    }
    std::vector<HeldTxn> ready;
    std::unordered_map<uint32_t, int> commits_of;
    for (const CommitRecord& commit : batch.commits) ++commits_of[commit.xid.value];
    Lsn last = last_;
    for (CommitRecord& commit : batch.commits) {
      if (commit.commit_lsn <= last) continue;  // resent: the backend keeps its first copy
      last = commit.commit_lsn;
      auto it = chunks_of.find(commit.xid.value);
      // Memory holds a transaction whose chunks are all in this batch, as the backend stores it.
      // Any other is read from the backend: one with chunks from earlier appends, one touched by
      // an abort, one whose xid commits twice in the batch (non-transactional messages).
      bool aborted = false;
      for (const auto& [xid, subxid] : batch.aborts) aborted |= xid == commit.xid;
      if (!open_known_ || open_.count(commit.xid.value) > 0 || aborted ||
          commits_of[commit.xid.value] > 1) {
        ready.push_back(HeldTxn{commit, {}, 0, false});
        continue;
      }
      HeldTxn t;
      t.commit = std::move(commit);
      t.commit.chunk_count = it == chunks_of.end() ? 0 : static_cast<uint32_t>(it->second.size());
      if (it != chunks_of.end()) {
        for (size_t i : it->second) {
          t.bytes += ApproxBytes(batch.chunks[i]);
          t.chunks.push_back(std::move(batch.chunks[i]));
        }
      }
      t.bytes += sizeof(HeldTxn) + t.commit.origin.size();
      ready.push_back(std::move(t));
    }
    // Transactions still open after this append (their chunks wait in the backend).
    for (const ChangeChunk& c : batch.chunks) {
      if (commits_of.count(c.xid.value) == 0) open_.insert(c.xid.value);
    }
    for (const auto& [xid, subxid] : batch.aborts) {
      if (subxid == xid) open_.erase(xid.value);
    }
    for (const auto& [xid, n] : commits_of) open_.erase(xid);

    std::lock_guard<std::mutex> l(mu_);
    for (HeldTxn& t : ready) {
      const Lsn lsn = t.commit.commit_lsn;
      // Drained after an overflow: memory starts over at the queue's tail.
      if (held_.empty() && end_ < last_) base_ = end_ = last_;
      const bool covered = end_ >= last_;
      last_ = lsn;
      if (broken_ || !covered) continue;
      if (!t.whole) {
        // Everything up to this commit is the backend's to serve.
        held_.clear();
        bytes_ = 0;
        base_ = end_ = lsn;
        continue;
      }
      if (bytes_ + t.bytes > options_.max_bytes && !held_.empty()) continue;  // full
      bytes_ += t.bytes;
      end_ = lsn;
      held_.push_back(std::move(t));
    }
    ++generation_;
    cv_.notify_all();
    return Status::Ok();
  }

  Status DiscardUncommitted() override {
    PGB_RETURN_IF_ERROR(inner_->DiscardUncommitted());
    open_.clear();
    open_known_ = true;
    return Status::Ok();
  }

  Status Trim(Lsn upto) override {
    PGB_RETURN_IF_ERROR(inner_->Trim(upto));
    std::lock_guard<std::mutex> l(mu_);
    DropThrough(upto);
    return Status::Ok();
  }

  Result<Lsn> LastCommitLsn() override { return inner_->LastCommitLsn(); }
  Result<Lsn> LastEndLsn() override { return inner_->LastEndLsn(); }
  Result<Lsn> FirstCommitLsn() override { return inner_->FirstCommitLsn(); }
  Result<std::unique_ptr<QueueCursor>> ReadFrom(Lsn after) override {
    return std::unique_ptr<QueueCursor>(new TailCursor(this, after));
  }
  Result<std::vector<Lsn>> CommitLsns(Lsn after, size_t max) override {
    return inner_->CommitLsns(after, max);
  }
  Result<RelationDescriptor> GetRelation(RelationId id, uint32_t version) override {
    return inner_->GetRelation(id, version);
  }
  Result<std::vector<RelationDescriptor>> ListRelations() override {
    return inner_->ListRelations();
  }
  Status PutMeta(const std::string& key, const std::string& value) override {
    return inner_->PutMeta(key, value);
  }
  Result<std::optional<std::string>> GetMeta(const std::string& key) override {
    return inner_->GetMeta(key);
  }
  Result<std::map<std::string, std::string>> ListMeta(const std::string& prefix) override {
    return inner_->ListMeta(prefix);
  }
  Status DeleteMeta(const std::string& key) override { return inner_->DeleteMeta(key); }
  Result<uint64_t> SizeBytes() override { return inner_->SizeBytes(); }

  MemoryTailStats memory_stats() const override {
    std::lock_guard<std::mutex> l(mu_);
    return stats_;
  }

  // For TailCursor. What comes after `pos`: a transaction taken from memory (*took), or that
  // memory holds nothing after `pos` and nothing more is durable (*tail_reached; then `*seen`
  // is the generation to wait on), or neither: the backend holds what comes next.
  void Take(Lsn pos, std::optional<HeldTxn>* took, bool* tail_reached, uint64_t* seen) {
    std::lock_guard<std::mutex> l(mu_);
    *seen = generation_;
    *tail_reached = false;
    if (broken_ || pos < base_) return;  // the backend holds what comes next
    if (pos >= end_) {
      // Memory holds nothing after `pos`: neither does the backend unless memory overflowed.
      *tail_reached = end_ >= last_;
      return;
    }
    // base_ <= pos < end_: the next commit after `pos` is in memory.
    while (!held_.empty() && held_.front().commit.commit_lsn <= pos) {
      bytes_ -= held_.front().bytes;
      held_.pop_front();
    }
    if (held_.empty()) return;  // not expected; the backend has it in any case
    took->emplace(std::move(held_.front()));
    held_.pop_front();
    bytes_ -= (*took)->bytes;
    base_ = (*took)->commit.commit_lsn;
    ++stats_.from_memory;
  }
  void CountBackendRead() {
    std::lock_guard<std::mutex> l(mu_);
    ++stats_.from_backend;
  }
  void WaitForMore(uint64_t seen, Clock::time_point deadline) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_until(l, deadline, [&] { return generation_ != seen; });
  }
  WorkQueue* backend() override { return inner_.get(); }

 private:
  // After a trim through `upto` (under mu_): memory forgets what the backend no longer holds.
  void DropThrough(Lsn upto) {
    const Lsn cut = std::min(upto, last_);
    while (!held_.empty() && held_.front().commit.commit_lsn <= cut) {
      bytes_ -= held_.front().bytes;
      held_.pop_front();
    }
    if (cut > base_) base_ = cut;
    if (base_ > end_) end_ = base_;
  }

  std::unique_ptr<WorkQueue> inner_;
  MemoryTailOptions options_;
  std::unordered_set<uint32_t> open_;  // xids with chunks in the backend and no commit yet
  // Whether open_ is all of them: the backend may hold chunks of an earlier writer until the
  // first DiscardUncommitted (the decoder's first call); until then memory holds nothing.
  bool open_known_ = false;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<HeldTxn> held_;
  size_t bytes_ = 0;
  Lsn base_, end_;  // memory covers (base_, end_]
  Lsn last_;        // the newest durable commit
  bool broken_ = false;
  uint64_t generation_ = 0;
  MemoryTailStats stats_;
};

Result<std::unique_ptr<TransactionReader>> TailCursor::Next(std::chrono::milliseconds wait) {
  const auto deadline = Clock::now() + wait;
  while (true) {
    std::optional<HeldTxn> took;
    bool tail_reached = false;
    uint64_t seen = 0;
    q_->Take(pos_, &took, &tail_reached, &seen);
    if (took) {
      inner_.reset();
      pos_ = took->commit.commit_lsn;
      return std::unique_ptr<TransactionReader>(new HeldReader(std::move(*took)));
    }
    if (tail_reached) {
      if (Clock::now() >= deadline) return std::unique_ptr<TransactionReader>();
      q_->WaitForMore(seen, deadline);
      continue;
    }
    if (inner_ == nullptr) {
      PGB_ASSIGN_OR_RETURN(inner_, q_->backend()->ReadFrom(pos_));
    }
    auto left =
        std::max(std::chrono::milliseconds(0),
                 std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    PGB_ASSIGN_OR_RETURN(std::unique_ptr<TransactionReader> r, inner_->Next(left));
    if (r != nullptr) {
      pos_ = r->commit().commit_lsn;
      q_->CountBackendRead();
    }
    return r;
  }
}

}  // namespace

Result<std::unique_ptr<MemoryTailQueue>> WithMemoryTail(std::unique_ptr<WorkQueue> inner,
                                                        const MemoryTailOptions& options) {
  PGB_ASSIGN_OR_RETURN(Lsn last, inner->LastCommitLsn());
  return std::unique_ptr<MemoryTailQueue>(new TailQueue(std::move(inner), options, last));
}

}  // namespace pgbaton::queue

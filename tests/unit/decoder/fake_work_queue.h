// An in-memory WorkQueue for the decoder's unit tests: keeps committed transactions with their
// chunks, drops aborted subtransactions, checks what the real queue relies on (strictly
// increasing commit LSNs, change counts that match the chunks) and can fail Append on demand.
#pragma once

#include <algorithm>
#include <map>
#include <vector>

#include "queue/work_queue.h"

namespace pgbaton::decoder::testing {

struct FakeTxn {
  queue::CommitRecord commit;
  std::vector<queue::ChangeChunk> chunks;
  std::vector<queue::Change> Changes() const {
    std::vector<queue::Change> out;
    for (const auto& c : chunks) out.insert(out.end(), c.changes.begin(), c.changes.end());
    return out;
  }
};

class FakeWorkQueue : public queue::WorkQueue {
 public:
  std::vector<FakeTxn> committed;
  std::map<uint32_t, std::vector<queue::ChangeChunk>> open;  // by xid
  std::vector<queue::RelationDescriptor> relations;
  int appends = 0;
  int discards = 0;
  int fail_appends = 0;  // the next N appends fail (kIo, not retryable)
  size_t max_batch_bytes_seen = 0;

  Status Append(const queue::RecordBatch& b) override {
    if (fail_appends > 0) {
      --fail_appends;
      return Status::Error(ErrorCode::kIo, "fake queue: append failed");
    }
    ++appends;
    for (const auto& r : b.relations) relations.push_back(r);
    for (const auto& c : b.chunks) open[c.xid.value].push_back(c);
    for (auto [xid, sub] : b.aborts) {
      auto it = open.find(xid.value);
      if (it == open.end()) continue;
      if (sub == xid) {
        open.erase(it);
        continue;
      }
      auto& v = it->second;
      v.erase(std::remove_if(v.begin(), v.end(), [&](const auto& c) { return c.subxid == sub; }),
              v.end());
    }
    for (const auto& c : b.commits) {
      if (!committed.empty() && c.commit_lsn <= committed.back().commit.commit_lsn) {
        return Status::Error(ErrorCode::kInternal, "fake queue: commit LSN not increasing");
      }
      FakeTxn t{c, std::move(open[c.xid.value])};
      open.erase(c.xid.value);
      uint64_t n = 0;
      for (const auto& ch : t.chunks) n += ch.changes.size();
      if (n != c.change_count || t.chunks.size() != c.chunk_count) {
        return Status::Error(ErrorCode::kInternal, "fake queue: counts do not match the chunks");
      }
      committed.push_back(std::move(t));
    }
    return Status::Ok();
  }
  Status DiscardUncommitted() override {
    ++discards;
    open.clear();
    return Status::Ok();
  }
  Status Trim(Lsn) override { return Status::Ok(); }
  Result<Lsn> LastCommitLsn() override {
    return committed.empty() ? Lsn() : committed.back().commit.commit_lsn;
  }
  Result<Lsn> LastEndLsn() override {
    return committed.empty() ? Lsn() : committed.back().commit.end_lsn;
  }
  Result<Lsn> FirstCommitLsn() override {
    return committed.empty() ? Lsn() : committed.front().commit.commit_lsn;
  }
  Result<std::unique_ptr<queue::QueueCursor>> ReadFrom(Lsn) override {
    return Status::Error(ErrorCode::kInternal, "fake queue: not readable");
  }
  Result<queue::RelationDescriptor> GetRelation(RelationId id, uint32_t version) override {
    for (const auto& r : relations) {
      if (r.id == id && r.version == version) return r;
    }
    return Status::Error(ErrorCode::kNotFound, "fake queue: no such relation");
  }
  Result<std::vector<queue::RelationDescriptor>> ListRelations() override { return relations; }
  Status PutMeta(const std::string& k, const std::string& v) override {
    meta_[k] = v;
    return Status::Ok();
  }
  Result<std::optional<std::string>> GetMeta(const std::string& k) override {
    auto it = meta_.find(k);
    if (it == meta_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  Result<std::map<std::string, std::string>> ListMeta(const std::string&) override { return meta_; }
  Status DeleteMeta(const std::string& k) override {
    meta_.erase(k);
    return Status::Ok();
  }
  Result<uint64_t> SizeBytes() override { return 0; }

 private:
  std::map<std::string, std::string> meta_;
};

}  // namespace pgbaton::decoder::testing

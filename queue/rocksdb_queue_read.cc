// Reading the RocksDB queue: cursors over the commit keys with lazily read chunks, positions,
// relation descriptors, metadata, and a reader's secondary instance catching up with the writer.
// Thread-safe: RocksDB iterators and Gets need no lock; the catch-up is serialized.
#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <thread>

#include "queue/codec.h"
#include "queue/rocksdb_keys.h"
#include "queue/rocksdb_queue_impl.h"

namespace pgbaton::queue {

using namespace rocksdb_keys;
namespace fs = std::filesystem;

namespace {

class RocksTxnReader : public TransactionReader {
 public:
  // `shared`, when given, is an iterator the cursor lends for this transaction's chunks (made
  // after the commit record was seen, so it sees every chunk); else the reader makes its own.
  RocksTxnReader(rocksdb::DB* db, std::string dir, StoredCommit commit,
                 std::shared_ptr<rocksdb::Iterator> shared = nullptr)
      : db_(db), dir_(std::move(dir)), stored_(std::move(commit)), shared_(std::move(shared)) {
    prefix_ = stored_.txn_ref == 0 ? CommitKey(stored_.commit.commit_lsn)
                                   : RefKey(kPendingPrefix, stored_.txn_ref);
    prefix_[0] = stored_.txn_ref == 0 ? kInlinePrefix : kPendingPrefix;
  }
  const CommitRecord& commit() const override { return stored_.commit; }
  Result<bool> NextChunk(ChangeChunk* chunk) override {
    std::string what =
        fmt::format("chunk {} of commit {}", read_, stored_.commit.commit_lsn.ToString());
    if (it_ == nullptr) {
      if (shared_ != nullptr) {
        it_ = shared_.get();
      } else {
        rocksdb::ReadOptions ro;
        ro.verify_checksums = true;
        upper_ = PrefixEnd(prefix_);
        upper_slice_ = rocksdb::Slice(upper_);
        ro.iterate_upper_bound = &upper_slice_;
        own_.reset(db_->NewIterator(ro));
        it_ = own_.get();
      }
      it_->Seek(prefix_);
    } else if (it_->Valid()) {
      it_->Next();
    }
    if (!it_->status().ok()) return FromRocks(it_->status(), dir_, "reading " + what);
    if (!it_->Valid() || !StartsWith(it_->key(), prefix_)) {
      if (read_ != stored_.commit.chunk_count) {
        return Status::Error(
            ErrorCode::kQueueCorrupt,
            fmt::format("queue record commit {} is corrupt: {} of its {} chunks are "
                        "present",
                        stored_.commit.commit_lsn.ToString(), read_, stored_.commit.chunk_count),
            "the queue cannot be read past this record; recreate it");
      }
      return false;
    }
    PGB_RETURN_IF_ERROR(DecodeChunk(View(it_->value()), what, chunk));
    ++read_;
    return true;
  }

 private:
  rocksdb::DB* db_;
  std::string dir_;
  StoredCommit stored_;
  std::string prefix_;
  std::string upper_;
  rocksdb::Slice upper_slice_;
  std::shared_ptr<rocksdb::Iterator> shared_;
  std::unique_ptr<rocksdb::Iterator> own_;
  rocksdb::Iterator* it_ = nullptr;
  uint32_t read_ = 0;
};

// Reads commits in order through one iterator, and lends one iterator to the transaction readers
// in turn: making two RocksDB iterators per transaction cost more than decoding it. An iterator
// sees the queue as it was when made, so both are dropped at the end of what they see (and every
// kRefreshEvery commits, so they do not pin files that a trim has freed), and made anew.
class RocksCursor : public QueueCursor {
 public:
  RocksCursor(RocksDbQueue* q, Lsn after) : q_(q), pos_(after) {}
  Result<std::unique_ptr<TransactionReader>> Next(std::chrono::milliseconds wait) override {
    auto deadline = std::chrono::steady_clock::now() + wait;
    while (true) {
      uint64_t gen = q_->generation();
      if (pos_ == Lsn::Max()) {
        // Nothing can come after the largest LSN.
      } else if (commits_ == nullptr || served_ >= kRefreshEvery) {
        PGB_RETURN_IF_ERROR(q_->CatchUp());
        commits_.reset(q_->db()->NewIterator(rocksdb::ReadOptions()));
        commits_->Seek(CommitKey(Lsn(pos_.value() + 1)));
        chunks_.reset();
        served_ = 0;
      } else {
        commits_->Next();
      }
      std::optional<StoredCommit> s;
      if (commits_ != nullptr) {
        PGB_ASSIGN_OR_RETURN(s, q_->CommitAt(*commits_));
      }
      if (s) {
        pos_ = s->commit.commit_lsn;
        ++served_;
        if (chunks_ == nullptr || chunks_.use_count() > 1) {
          rocksdb::ReadOptions ro;
          ro.verify_checksums = true;
          chunks_.reset(q_->db()->NewIterator(ro));
        }
        return std::unique_ptr<TransactionReader>(
            new RocksTxnReader(q_->db(), q_->dir(), std::move(*s), chunks_));
      }
      commits_.reset();  // at the end of what it sees: look again with a new one
      chunks_.reset();
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return std::unique_ptr<TransactionReader>();
      q_->WaitForMore(gen, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) +
                               std::chrono::milliseconds(1));
    }
  }

 private:
  static constexpr uint64_t kRefreshEvery = 10000;
  RocksDbQueue* q_;
  Lsn pos_;
  std::unique_ptr<rocksdb::Iterator> commits_;
  std::shared_ptr<rocksdb::Iterator> chunks_;
  uint64_t served_ = 0;
};

}  // namespace

Result<std::unique_ptr<QueueCursor>> RocksDbQueue::ReadFrom(Lsn after) {
  return std::unique_ptr<QueueCursor>(new RocksCursor(this, after));
}

Result<Lsn> RocksDbQueue::LastCommitLsn() {
  PGB_ASSIGN_OR_RETURN(auto s, LastCommit());
  return s ? s->commit.commit_lsn : Lsn::Invalid();
}

Result<Lsn> RocksDbQueue::LastEndLsn() {
  PGB_ASSIGN_OR_RETURN(auto s, LastCommit());
  return s ? s->commit.end_lsn : Lsn::Invalid();
}

Result<Lsn> RocksDbQueue::FirstCommitLsn() {
  PGB_RETURN_IF_ERROR(CatchUp());
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  it->Seek(std::string(1, kCommitPrefix));
  if (!it->status().ok()) return FromRocks(it->status(), options_.dir, "reading");
  if (!it->Valid() || !StartsWith(it->key(), std::string(1, kCommitPrefix))) return Lsn::Invalid();
  return Lsn(GetBigEndian64(it->key().data() + 1));
}

Result<std::vector<Lsn>> RocksDbQueue::CommitLsns(Lsn after, size_t max) {
  std::vector<Lsn> out;
  if (after == Lsn::Max()) return out;  // nothing comes after it (and +1 would wrap)
  PGB_RETURN_IF_ERROR(CatchUp());
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const std::string prefix(1, kCommitPrefix);
  for (it->Seek(CommitKey(Lsn(after.value() + 1))); it->Valid() && out.size() < max; it->Next()) {
    if (!StartsWith(it->key(), prefix) || it->key().size() < 9) break;
    out.push_back(Lsn(GetBigEndian64(it->key().data() + 1)));
  }
  if (!it->status().ok()) return FromRocks(it->status(), options_.dir, "reading");
  return out;
}

Result<RelationDescriptor> RocksDbQueue::GetRelation(RelationId id, uint32_t version) {
  PGB_ASSIGN_OR_RETURN(auto raw, GetRaw(RelKey(id, version)));
  if (!raw && options_.read_only) {
    PGB_RETURN_IF_ERROR(CatchUp());
    PGB_ASSIGN_OR_RETURN(raw, GetRaw(RelKey(id, version)));
  }
  if (!raw) {
    return Status::Error(ErrorCode::kNotFound,
                         fmt::format("relation {} version {} is not in queue \"{}\"", id.value,
                                     version, options_.dir));
  }
  RelationDescriptor r;
  PGB_RETURN_IF_ERROR(
      DecodeRelation(*raw, fmt::format("relation {} version {}", id.value, version), &r));
  return r;
}

Result<std::vector<RelationDescriptor>> RocksDbQueue::ListRelations() {
  PGB_RETURN_IF_ERROR(CatchUp());
  std::vector<RelationDescriptor> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  std::string p(1, kRelPrefix);
  for (it->Seek(p); it->Valid() && StartsWith(it->key(), p); it->Next()) {
    RelationDescriptor r;
    PGB_RETURN_IF_ERROR(DecodeRelation(View(it->value()), "relation", &r));
    out.push_back(std::move(r));
  }
  if (!it->status().ok()) return FromRocks(it->status(), options_.dir, "listing relations");
  return out;
}

Result<std::optional<std::string>> RocksDbQueue::GetMeta(const std::string& key) {
  PGB_RETURN_IF_ERROR(CatchUp());
  return GetRaw(MetaKey(key));
}

Result<std::map<std::string, std::string>> RocksDbQueue::ListMeta(const std::string& prefix) {
  PGB_RETURN_IF_ERROR(CatchUp());
  std::map<std::string, std::string> out;
  std::string p = MetaKey(prefix);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(p); it->Valid() && StartsWith(it->key(), p); it->Next()) {
    out.emplace(std::string(it->key().data() + 1, it->key().size() - 1), it->value().ToString());
  }
  if (!it->status().ok()) return FromRocks(it->status(), options_.dir, "listing metadata");
  return out;
}

Result<uint64_t> RocksDbQueue::SizeBytes() {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(options_.dir, ec)) {
    if (e.is_regular_file(ec)) total += e.file_size(ec);
  }
  if (ec)
    return Status::Error(ErrorCode::kIo,
                         fmt::format("queue \"{}\": {}", options_.dir, ec.message()));
  return total;
}

Result<std::optional<StoredCommit>> RocksDbQueue::CommitAt(const rocksdb::Iterator& it) {
  if (!it.status().ok()) return FromRocks(it.status(), options_.dir, "reading");
  if (!it.Valid() || !StartsWith(it.key(), std::string(1, kCommitPrefix))) {
    return std::optional<StoredCommit>();
  }
  StoredCommit s;
  Lsn lsn(GetBigEndian64(it.key().data() + 1));
  PGB_RETURN_IF_ERROR(DecodeCommit(View(it.value()), "commit " + lsn.ToString(), &s));
  if (s.commit.commit_lsn != lsn) {
    return Status::Error(ErrorCode::kQueueCorrupt,
                         fmt::format("queue record commit {} is corrupt: it holds commit {}",
                                     lsn.ToString(), s.commit.commit_lsn.ToString()));
  }
  return std::optional<StoredCommit>(std::move(s));
}

void RocksDbQueue::WaitForMore(uint64_t seen_generation, std::chrono::milliseconds wait) {
  if (options_.read_only) {
    std::this_thread::sleep_for(std::min(wait, std::chrono::milliseconds(20)));
    return;
  }
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait_for(l, wait, [&] { return generation_ != seen_generation; });
}

uint64_t RocksDbQueue::generation() {
  std::lock_guard<std::mutex> g(mu_);
  return generation_;
}

Status RocksDbQueue::CatchUp() {
  if (!options_.read_only) return Status::Ok();
  std::lock_guard<std::mutex> g(catch_up_mu_);
  rocksdb::Status s = db_->TryCatchUpWithPrimary();
  if (!s.ok()) return FromRocks(s, options_.dir, "following the writer");
  return Status::Ok();
}

Result<std::optional<std::string>> RocksDbQueue::GetRaw(const std::string& key) {
  std::string v;
  rocksdb::ReadOptions ro;
  ro.verify_checksums = true;
  rocksdb::Status s = db_->Get(ro, key, &v);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, options_.dir, "reading");
  return std::optional<std::string>(std::move(v));
}

Result<std::optional<StoredCommit>> RocksDbQueue::LastCommit() {
  PGB_RETURN_IF_ERROR(CatchUp());
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  it->SeekForPrev(PrefixEnd(std::string(1, kCommitPrefix)));
  if (!it->status().ok()) return FromRocks(it->status(), options_.dir, "reading");
  if (!it->Valid() || !StartsWith(it->key(), std::string(1, kCommitPrefix))) {
    return std::optional<StoredCommit>();
  }
  StoredCommit s;
  Lsn lsn(GetBigEndian64(it->key().data() + 1));
  PGB_RETURN_IF_ERROR(DecodeCommit(View(it->value()), "commit " + lsn.ToString(), &s));
  return std::optional<StoredCommit>(std::move(s));
}

}  // namespace pgbaton::queue

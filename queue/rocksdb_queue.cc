#include "queue/rocksdb_queue.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/log.h"
#include "queue/codec.h"

namespace pgbaton::queue {
namespace {

namespace fs = std::filesystem;

// Key prefixes (one column family; see docs/reference/queue-format.md).
constexpr char kSysPrefix = 's';     // s<name>: format_version, migration_name, next_txn_ref
constexpr char kMetaPrefix = 'm';    // m<key>: user metadata
constexpr char kRelPrefix = 'r';     // r<id BE32><version BE32>
constexpr char kCommitPrefix = 'c';  // c<commit lsn BE64>
constexpr char kInlinePrefix =
    'k';                           // k<commit lsn BE64><seq BE32>: chunks written with their commit
constexpr char kOpenPrefix = 'o';  // o<txn_ref BE64> -> xid BE32: a transaction without commit
constexpr char kPendingPrefix =
    'p';  // p<txn_ref BE64><seq BE32>: chunks of a txn over several appends

const char kLockFile[] = "pgbaton.lock";

std::string CommitKey(Lsn lsn) {
  std::string k(1, kCommitPrefix);
  PutBigEndian64(&k, lsn.value());
  return k;
}
std::string InlineKey(Lsn lsn, uint32_t seq) {
  std::string k(1, kInlinePrefix);
  PutBigEndian64(&k, lsn.value());
  PutBigEndian32(&k, seq);
  return k;
}
std::string RefKey(char prefix, uint64_t ref) {
  std::string k(1, prefix);
  PutBigEndian64(&k, ref);
  return k;
}
std::string PendingKey(uint64_t ref, uint32_t seq) {
  std::string k = RefKey(kPendingPrefix, ref);
  PutBigEndian32(&k, seq);
  return k;
}
std::string RelKey(RelationId id, uint32_t version) {
  std::string k(1, kRelPrefix);
  PutBigEndian32(&k, id.value);
  PutBigEndian32(&k, version);
  return k;
}
std::string SysKey(std::string_view name) { return std::string(1, kSysPrefix) + std::string(name); }
// The first key after every key that starts with `prefix`.
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    unsigned char last = static_cast<unsigned char>(prefix.back());
    if (last != 0xff) {
      prefix.back() = static_cast<char>(last + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\xff');
}
bool StartsWith(const rocksdb::Slice& s, std::string_view p) {
  return s.size() >= p.size() && std::memcmp(s.data(), p.data(), p.size()) == 0;
}
std::string_view View(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }

// Converts a RocksDB status once, here. A full disk is kDiskFull naming the directory.
Status FromRocks(const rocksdb::Status& s, const std::string& dir, std::string_view op) {
  std::string text = s.ToString();
  if (s.IsNoSpace() || text.find("No space left") != std::string::npos) {
    return Status::Error(ErrorCode::kDiskFull,
                         fmt::format("queue \"{}\": no space left on device while {}", dir, op),
                         "free space on the file system that holds the queue directory; nothing "
                         "after the last durable transaction was confirmed to the source");
  }
  if (s.IsCorruption()) {
    return Status::Error(
        ErrorCode::kQueueCorrupt, fmt::format("queue \"{}\" is corrupt ({}): {}", dir, op, text),
        "the queue cannot be read; recreate it (pgbaton cleanup, then copy again)");
  }
  return Status::Error(ErrorCode::kIo, fmt::format("queue \"{}\": {} failed: {}", dir, op, text));
}

// RocksDB's own diagnostics go to our log, not to a LOG file in the queue directory: a LOG file
// there fails with the disk when it fills up (and RocksDB asserts on writing it afterwards).
class QueueLogger : public rocksdb::Logger {
 public:
  explicit QueueLogger(std::string dir)
      : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL), dir_(std::move(dir)) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    char buf[1024];
    vsnprintf(buf, sizeof(buf), format, ap);
    LogDebug(fmt::format("queue \"{}\": rocksdb: {}", dir_, buf));
  }

 private:
  std::string dir_;
};

struct OpenTxn {
  uint64_t ref = 0;
  uint32_t next_seq = 0;  // key sequence of the next pending chunk
  uint32_t count = 0;     // chunks stored
};

class RocksDbQueue;

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

class RocksDbQueue : public WorkQueue {
 public:
  RocksDbQueue(QueueOptions options, int lock_fd, std::string secondary_dir)
      : options_(std::move(options)), lock_fd_(lock_fd), secondary_dir_(std::move(secondary_dir)) {}
  ~RocksDbQueue() override {
    if (db_ != nullptr && appended_) {
      // A clean close leaves the appended records in table files rather than only in the WAL,
      // so the next process to open the queue does not replay them into a memtable first.
      rocksdb::Status s = db_->Flush(rocksdb::FlushOptions());
      if (!s.ok()) LogDebug("queue: flush at close failed", {{"error", s.ToString()}});
    }
    db_.reset();
    if (lock_fd_ >= 0) close(lock_fd_);
    if (!secondary_dir_.empty()) {
      std::error_code ec;
      fs::remove_all(secondary_dir_, ec);
    }
  }

  Status Init(rocksdb::DB* db) {
    db_.reset(db);
    PGB_ASSIGN_OR_RETURN(auto version, GetRaw(SysKey("format_version")));
    PGB_ASSIGN_OR_RETURN(auto name, GetRaw(SysKey("migration_name")));
    if (!version) {
      if (options_.read_only) {
        return Status::Error(ErrorCode::kNotFound,
                             fmt::format("queue \"{}\" is empty or not initialized", options_.dir),
                             "start the writer (pgbaton run or stream) first");
      }
      rocksdb::WriteBatch wb;
      wb.Put(SysKey("format_version"), std::to_string(kFormatVersion));
      wb.Put(SysKey("migration_name"), options_.migration_name);
      PGB_RETURN_IF_ERROR(Write(&wb, "initializing"));
    } else {
      int v = std::atoi(version->c_str());
      if (v > kFormatVersion) {
        return Status::Error(
            ErrorCode::kQueueFormat,
            fmt::format("queue \"{}\" has format version {}, newer than {} which this "
                        "pgbaton reads",
                        options_.dir, v, kFormatVersion),
            "use the pgbaton release that wrote this queue, or a newer one");
      }
      if (!options_.migration_name.empty() && name && *name != options_.migration_name) {
        return Status::Error(ErrorCode::kQueueMismatch,
                             fmt::format("queue \"{}\" belongs to migration \"{}\", not \"{}\"",
                                         options_.dir, *name, options_.migration_name),
                             "pass the matching --name, or another --queue-dir");
      }
      if (v < kFormatVersion && !options_.read_only) {
        // This writer adds records of the newer format: an older build must refuse the queue
        // as a whole rather than stop at the first new record.
        rocksdb::WriteBatch wb;
        wb.Put(SysKey("format_version"), std::to_string(kFormatVersion));
        PGB_RETURN_IF_ERROR(Write(&wb, "raising the format version"));
      }
    }
    if (!options_.read_only) PGB_RETURN_IF_ERROR(LoadWriterState());
    return Status::Ok();
  }

  // --- writing ---
  Status Append(const RecordBatch& batch) override {
    PGB_RETURN_IF_ERROR(CheckWritable("append"));
    if (batch.empty()) return Status::Ok();
    appended_ = true;
    rocksdb::WriteBatch wb;
    for (const RelationDescriptor& r : batch.relations)
      wb.Put(RelKey(r.id, r.version), EncodeRelation(r));

    std::unordered_map<uint32_t, OpenTxn> open = open_;  // staged; committed after the write
    uint64_t next_ref = next_ref_;
    std::vector<bool> dropped(batch.chunks.size(), false);
    for (auto [xid, subxid] : batch.aborts) {
      for (size_t i = 0; i < batch.chunks.size(); ++i) {
        const ChangeChunk& c = batch.chunks[i];
        if (c.xid == xid && (subxid == xid || c.subxid == subxid)) dropped[i] = true;
      }
      auto it = open.find(xid.value);
      if (it == open.end()) continue;
      if (subxid == xid) {
        DropOpen(&wb, it->second);
        open.erase(it);
      } else {
        PGB_RETURN_IF_ERROR(DropSubxact(&wb, subxid, &it->second));
      }
    }

    std::unordered_map<uint32_t, size_t> committing;  // xid -> index in batch.commits
    for (size_t i = 0; i < batch.commits.size(); ++i) committing[batch.commits[i].xid.value] = i;
    std::vector<std::vector<size_t>> chunks_of_commit(batch.commits.size());
    for (size_t i = 0; i < batch.chunks.size(); ++i) {
      if (dropped[i]) continue;
      const ChangeChunk& c = batch.chunks[i];
      auto cit = committing.find(c.xid.value);
      if (cit != committing.end()) {
        chunks_of_commit[cit->second].push_back(i);
        continue;
      }
      auto [it, inserted] = open.try_emplace(c.xid.value);
      if (inserted) {
        it->second.ref = next_ref++;
        std::string xid;
        PutBigEndian32(&xid, c.xid.value);
        wb.Put(RefKey(kOpenPrefix, it->second.ref), xid);
      }
      wb.Put(PendingKey(it->second.ref, it->second.next_seq++), EncodeChunk(c));
      ++it->second.count;
    }

    Lsn last = last_commit_;
    Lsn last_end = last_end_;
    for (size_t i = 0; i < batch.commits.size(); ++i) {
      StoredCommit stored{batch.commits[i], 0};
      CommitRecord& commit = stored.commit;
      auto oit = open.find(commit.xid.value);
      if (commit.commit_lsn <= last) {
        // The source resent a transaction the queue already holds (after a restart): keep the
        // first copy, drop this one and its chunks.
        LogDebug(fmt::format("queue: skipping commit {} of xid {}: already at {}",
                             commit.commit_lsn.ToString(), commit.xid.value, last.ToString()));
        if (oit != open.end()) {
          DropOpen(&wb, oit->second);
          open.erase(oit);
        }
        continue;
      }
      uint32_t count = 0;
      if (oit != open.end()) {
        OpenTxn& t = oit->second;
        for (size_t ci : chunks_of_commit[i]) {
          wb.Put(PendingKey(t.ref, t.next_seq++), EncodeChunk(batch.chunks[ci]));
          ++t.count;
        }
        stored.txn_ref = t.ref;
        count = t.count;
        wb.Delete(RefKey(kOpenPrefix, t.ref));
        open.erase(oit);
      } else {
        for (size_t ci : chunks_of_commit[i]) {
          wb.Put(InlineKey(commit.commit_lsn, count++), EncodeChunk(batch.chunks[ci]));
        }
      }
      commit.chunk_count = count;
      wb.Put(CommitKey(commit.commit_lsn), EncodeCommit(stored));
      last = commit.commit_lsn;
      last_end = commit.end_lsn;
    }
    if (next_ref != next_ref_) wb.Put(SysKey("next_txn_ref"), std::to_string(next_ref));
    PGB_RETURN_IF_ERROR(Write(&wb, "appending"));
    open_ = std::move(open);
    next_ref_ = next_ref;
    {
      std::lock_guard<std::mutex> g(mu_);
      last_commit_ = last;
      last_end_ = last_end;
      ++generation_;
    }
    cv_.notify_all();
    return Status::Ok();
  }

  Status DiscardUncommitted() override {
    PGB_RETURN_IF_ERROR(CheckWritable("discard uncommitted chunks"));
    rocksdb::WriteBatch wb;
    for (auto& [xid, t] : open_) DropOpen(&wb, t);
    if (wb.Count() == 0) return Status::Ok();
    PGB_RETURN_IF_ERROR(Write(&wb, "discarding uncommitted chunks"));
    open_.clear();
    return Status::Ok();
  }

  Status Trim(Lsn upto) override {
    PGB_RETURN_IF_ERROR(CheckWritable("trim"));
    if (!upto.IsValid()) return Status::Ok();
    std::string commit_end = upto == Lsn::Max() ? PrefixEnd(std::string(1, kCommitPrefix))
                                                : CommitKey(Lsn(upto.value() + 1));
    std::string inline_end = commit_end;
    inline_end[0] = commit_end.size() == 1 ? kInlinePrefix + 1 : kInlinePrefix;
    rocksdb::WriteBatch wb;
    std::vector<uint64_t> refs;
    {
      rocksdb::ReadOptions ro;
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
      for (it->Seek(std::string(1, kCommitPrefix));
           it->Valid() && it->key().compare(commit_end) < 0; it->Next()) {
        StoredCommit s;
        Lsn lsn(GetBigEndian64(it->key().data() + 1));
        PGB_RETURN_IF_ERROR(DecodeCommit(View(it->value()), "commit " + lsn.ToString(), &s));
        if (s.txn_ref != 0) refs.push_back(s.txn_ref);
      }
      if (!it->status().ok()) return FromRocks(it->status(), options_.dir, "trimming");
    }
    wb.DeleteRange(std::string(1, kCommitPrefix), commit_end);
    wb.DeleteRange(std::string(1, kInlinePrefix), inline_end);
    for (uint64_t ref : refs)
      wb.DeleteRange(RefKey(kPendingPrefix, ref), RefKey(kPendingPrefix, ref + 1));
    wb.Put(SysKey("trimmed_lsn"), std::to_string(upto.value()));
    PGB_RETURN_IF_ERROR(Write(&wb, "trimming"));
    // Range deletions only hide data; compacting the ranges frees the disk space now.
    rocksdb::CompactRangeOptions co;
    std::string cb(1, kCommitPrefix), kb(1, kInlinePrefix);
    rocksdb::Slice cbs(cb), ces(commit_end), kbs(kb), kes(inline_end);
    rocksdb::Status s = db_->CompactRange(co, &cbs, &ces);
    if (s.ok()) s = db_->CompactRange(co, &kbs, &kes);
    if (s.ok() && !refs.empty()) {
      std::string pb = RefKey(kPendingPrefix, refs.front()),
                  pe = RefKey(kPendingPrefix, refs.back() + 1);
      rocksdb::Slice pbs(pb), pes(pe);
      s = db_->CompactRange(co, &pbs, &pes);
    }
    if (!s.ok()) return FromRocks(s, options_.dir, "compacting after a trim");
    return Status::Ok();
  }

  // --- reading ---
  Result<Lsn> LastCommitLsn() override {
    PGB_ASSIGN_OR_RETURN(auto s, LastCommit());
    return s ? s->commit.commit_lsn : Lsn::Invalid();
  }
  Result<Lsn> LastEndLsn() override {
    PGB_ASSIGN_OR_RETURN(auto s, LastCommit());
    return s ? s->commit.end_lsn : Lsn::Invalid();
  }
  Result<Lsn> FirstCommitLsn() override {
    PGB_RETURN_IF_ERROR(CatchUp());
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    it->Seek(std::string(1, kCommitPrefix));
    if (!it->status().ok()) return FromRocks(it->status(), options_.dir, "reading");
    if (!it->Valid() || !StartsWith(it->key(), std::string(1, kCommitPrefix)))
      return Lsn::Invalid();
    return Lsn(GetBigEndian64(it->key().data() + 1));
  }

  Result<std::unique_ptr<QueueCursor>> ReadFrom(Lsn after) override;

  // Reads only the commit keys: no value is decoded.
  Result<std::vector<Lsn>> CommitLsns(Lsn after, size_t max) override {
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

  Result<RelationDescriptor> GetRelation(RelationId id, uint32_t version) override {
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
  Result<std::vector<RelationDescriptor>> ListRelations() override {
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

  // --- metadata ---
  Status PutMeta(const std::string& key, const std::string& value) override {
    PGB_RETURN_IF_ERROR(CheckWritable("write metadata"));
    rocksdb::WriteBatch wb;
    wb.Put(std::string(1, kMetaPrefix) + key, value);
    return Write(&wb, "writing metadata \"" + key + "\"");
  }
  Result<std::optional<std::string>> GetMeta(const std::string& key) override {
    PGB_RETURN_IF_ERROR(CatchUp());
    return GetRaw(std::string(1, kMetaPrefix) + key);
  }
  Result<std::map<std::string, std::string>> ListMeta(const std::string& prefix) override {
    PGB_RETURN_IF_ERROR(CatchUp());
    std::map<std::string, std::string> out;
    std::string p = std::string(1, kMetaPrefix) + prefix;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek(p); it->Valid() && StartsWith(it->key(), p); it->Next()) {
      out.emplace(std::string(it->key().data() + 1, it->key().size() - 1), it->value().ToString());
    }
    if (!it->status().ok()) return FromRocks(it->status(), options_.dir, "listing metadata");
    return out;
  }
  Status DeleteMeta(const std::string& key) override {
    PGB_RETURN_IF_ERROR(CheckWritable("delete metadata"));
    rocksdb::WriteBatch wb;
    wb.Delete(std::string(1, kMetaPrefix) + key);
    return Write(&wb, "deleting metadata \"" + key + "\"");
  }

  Result<uint64_t> SizeBytes() override {
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

  // For cursors: reads the first commit after `after`, or nullopt.
  // The commit record `it` is on; none when it is past the last commit.
  Result<std::optional<StoredCommit>> CommitAt(const rocksdb::Iterator& it) {
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

  // Waits up to `wait` for a newer append (same process) or polls the writer (read-only).
  void WaitForMore(uint64_t seen_generation, std::chrono::milliseconds wait) {
    if (options_.read_only) {
      std::this_thread::sleep_for(std::min(wait, std::chrono::milliseconds(20)));
      return;
    }
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, wait, [&] { return generation_ != seen_generation; });
  }
  uint64_t generation() {
    std::lock_guard<std::mutex> g(mu_);
    return generation_;
  }
  Status CatchUp() {
    if (!options_.read_only) return Status::Ok();
    std::lock_guard<std::mutex> g(catch_up_mu_);
    rocksdb::Status s = db_->TryCatchUpWithPrimary();
    if (!s.ok()) return FromRocks(s, options_.dir, "following the writer");
    return Status::Ok();
  }
  rocksdb::DB* db() { return db_.get(); }
  const std::string& dir() const { return options_.dir; }

 private:
  Status CheckWritable(std::string_view op) {
    if (options_.read_only) {
      return Status::Error(
          ErrorCode::kInternal,
          fmt::format("queue \"{}\" is open read-only: cannot {}", options_.dir, op));
    }
    if (write_failed_) {
      // After an I/O error RocksDB stops writing; Resume() retries once the cause is gone.
      // While it cannot (the disk is still full, or recovery is busy) the first error stands.
      rocksdb::Status s = db_->Resume();
      if (!s.ok()) {
        LogDebug(fmt::format("queue \"{}\": cannot {} yet: {}", options_.dir, op, s.ToString()));
        return write_error_;
      }
      write_failed_ = false;
    }
    return Status::Ok();
  }
  Status Write(rocksdb::WriteBatch* wb, std::string_view op) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    rocksdb::Status s = db_->Write(wo, wb);
    if (!s.ok()) {
      write_failed_ = true;
      write_error_ = FromRocks(s, options_.dir, op);
      return write_error_;
    }
    return Status::Ok();
  }
  Result<std::optional<std::string>> GetRaw(const std::string& key) {
    std::string v;
    rocksdb::ReadOptions ro;
    ro.verify_checksums = true;
    rocksdb::Status s = db_->Get(ro, key, &v);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok()) return FromRocks(s, options_.dir, "reading");
    return std::optional<std::string>(std::move(v));
  }
  Result<std::optional<StoredCommit>> LastCommit() {
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
  void DropOpen(rocksdb::WriteBatch* wb, const OpenTxn& t) {
    wb->DeleteRange(RefKey(kPendingPrefix, t.ref), RefKey(kPendingPrefix, t.ref + 1));
    wb->Delete(RefKey(kOpenPrefix, t.ref));
  }
  Status DropSubxact(rocksdb::WriteBatch* wb, Xid subxid, OpenTxn* t) {
    std::string p = RefKey(kPendingPrefix, t->ref);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek(p); it->Valid() && StartsWith(it->key(), p); it->Next()) {
      ChangeChunk c;
      PGB_RETURN_IF_ERROR(DecodeChunk(View(it->value()), "pending chunk", &c));
      if (c.subxid == subxid) {
        wb->Delete(it->key());
        --t->count;
      }
    }
    if (!it->status().ok())
      return FromRocks(it->status(), options_.dir, "aborting a subtransaction");
    return Status::Ok();
  }
  // Rebuilds the open transactions and counters from the database.
  Status LoadWriterState() {
    PGB_ASSIGN_OR_RETURN(auto next, GetRaw(SysKey("next_txn_ref")));
    next_ref_ = next ? std::stoull(*next) : 1;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    std::string op(1, kOpenPrefix);
    for (it->Seek(op); it->Valid() && StartsWith(it->key(), op); it->Next()) {
      if (it->key().size() != 9 || it->value().size() != 4) {
        return Status::Error(
            ErrorCode::kQueueCorrupt,
            fmt::format("queue \"{}\": malformed open-transaction key", options_.dir));
      }
      OpenTxn t;
      t.ref = GetBigEndian64(it->key().data() + 1);
      std::unique_ptr<rocksdb::Iterator> ci(db_->NewIterator(rocksdb::ReadOptions()));
      std::string p = RefKey(kPendingPrefix, t.ref);
      for (ci->Seek(p); ci->Valid() && StartsWith(ci->key(), p); ci->Next()) {
        ++t.count;
        t.next_seq = GetBigEndian32(ci->key().data() + 9) + 1;
      }
      open_[GetBigEndian32(it->value().data())] = t;
    }
    if (!it->status().ok()) return FromRocks(it->status(), options_.dir, "opening");
    PGB_ASSIGN_OR_RETURN(auto last, LastCommit());
    if (last) {
      last_commit_ = last->commit.commit_lsn;
      last_end_ = last->commit.end_lsn;
    }
    return Status::Ok();
  }

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

Result<std::unique_ptr<QueueCursor>> RocksDbQueue::ReadFrom(Lsn after) {
  return std::unique_ptr<QueueCursor>(new RocksCursor(this, after));
}

// Takes the writer's flock on <dir>/pgbaton.lock and records our pid in it.
Result<int> LockQueue(const std::string& dir) {
  std::string path = dir + "/" + kLockFile;
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == ENOSPC) {
      return Status::Error(ErrorCode::kDiskFull,
                           fmt::format("queue \"{}\": no space left on device", dir));
    }
    return Status::Error(ErrorCode::kIo, fmt::format("queue \"{}\": cannot open {}: {}", dir, path,
                                                     strerror(errno)));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char buf[32] = {0};
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "unknown";
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    if (err == EWOULDBLOCK) {
      return Status::Error(
          ErrorCode::kQueueLocked,
          fmt::format("queue \"{}\" is locked by another writer (pid {})", dir, holder),
          "stop the other pgbaton process first; readers such as status and queue "
          "inspect need no lock");
    }
    return Status::Error(ErrorCode::kIo,
                         fmt::format("queue \"{}\": cannot lock {}: {}", dir, path, strerror(err)));
  }
  std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) != 0 ||
      pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    // The pid is informational only; the flock is what excludes other writers.
    LogDebug(fmt::format("queue \"{}\": could not record the writer pid", dir));
  }
  return fd;
}

}  // namespace

Result<std::unique_ptr<WorkQueue>> OpenRocksDbQueue(const QueueOptions& options) {
  const std::string& dir = options.dir;
  std::error_code ec;
  bool exists = fs::exists(fs::path(dir) / "CURRENT", ec);
  if (!exists && (options.read_only || !options.create_if_missing)) {
    // Nothing is created here: a reader (status, inspect) or apply must not leave an empty
    // queue behind where an operator mistyped the path or `pgbaton cleanup` removed it.
    bool dir_exists = fs::exists(fs::path(dir), ec);
    bool empty_dir =
        dir_exists && fs::is_directory(fs::path(dir), ec) && fs::is_empty(fs::path(dir), ec);
    if (dir_exists && !empty_dir) {
      return Status::Error(
          ErrorCode::kQueueMismatch,
          fmt::format("\"{}\" is not a pgbaton queue (no RocksDB database in it)", dir),
          "check --queue-dir: it names the directory that pgbaton copy, run or stream wrote "
          "(or use --kafka-brokers and --kafka-topic for a Kafka queue)");
    }
    return Status::Error(
        ErrorCode::kNotFound,
        fmt::format("queue \"{}\" does not exist{}", dir,
                    empty_dir ? " (the directory is empty)" : ""),
        "check --queue-dir; the writer (pgbaton copy, run or stream) creates it, and "
        "`pgbaton cleanup --queue-dir` removes it at the end of a migration");
  }
  rocksdb::Options ro_opts;
  ro_opts.create_if_missing = true;
  ro_opts.paranoid_checks = true;
  // Large values are zstd already; LZ4 per block compresses the many small ones cheaply.
  ro_opts.compression = rocksdb::kLZ4Compression;
  ro_opts.max_open_files = -1;  // required by secondary instances
  ro_opts.info_log = std::make_shared<QueueLogger>(dir);
  ro_opts.write_buffer_size = 16 << 20;
  ro_opts.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  rocksdb::DB* db = nullptr;
  if (options.read_only) {
    char tmpl[] = "/tmp/pgbaton-queue-reader-XXXXXX";
    if (!mkdtemp(tmpl)) {
      return Status::Error(ErrorCode::kIo,
                           fmt::format("cannot create a temporary directory: {}", strerror(errno)));
    }
    std::string secondary = tmpl;
    rocksdb::Status s = rocksdb::DB::OpenAsSecondary(ro_opts, dir, secondary, &db);
    if (!s.ok()) {
      fs::remove_all(secondary, ec);
      return FromRocks(s, dir, "opening for reading");
    }
    auto q = std::make_unique<RocksDbQueue>(options, -1, secondary);
    PGB_RETURN_IF_ERROR(q->Init(db));
    return std::unique_ptr<WorkQueue>(std::move(q));
  }
  fs::create_directories(dir, ec);
  if (ec) {
    return Status::Error(
        ec == std::errc::no_space_on_device ? ErrorCode::kDiskFull : ErrorCode::kIo,
        fmt::format("queue \"{}\": cannot create the directory: {}", dir, ec.message()));
  }
  PGB_ASSIGN_OR_RETURN(int fd, LockQueue(dir));
  rocksdb::Status s = rocksdb::DB::Open(ro_opts, dir, &db);
  if (!s.ok()) {
    close(fd);
    return FromRocks(s, dir, "opening");
  }
  auto q = std::make_unique<RocksDbQueue>(options, fd, "");
  PGB_RETURN_IF_ERROR(q->Init(db));
  return std::unique_ptr<WorkQueue>(std::move(q));
}

}  // namespace pgbaton::queue

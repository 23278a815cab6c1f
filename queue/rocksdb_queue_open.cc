// Opening the RocksDB queue: the RocksDB options, the writer's lock file, the format and migration
// checks, and the writer's state rebuilt from the database. Also the one conversion of
// rocksdb::Status to Status.
#include <fcntl.h>
#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/write_batch.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "common/log.h"
#include "queue/codec.h"
#include "queue/rocksdb_keys.h"
#include "queue/rocksdb_queue.h"
#include "queue/rocksdb_queue_impl.h"

namespace pgbaton::queue {

using namespace rocksdb_keys;
namespace fs = std::filesystem;

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

namespace {

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

// The keys that memtable inserts find their place for with a hint (one per key kind): commit
// keys and chunk keys, whole. Never the start of a range deletion (a trim's or a dropped
// transaction's: a bare prefix, or a transaction's 9-byte reference): RocksDB keeps range
// deletions in a memtable of their own but takes the hint from the same map, and a hint into the
// other memtable corrupts the skiplist (seen as an assertion in InlineSkipList::Insert when the
// applier trimmed while the decoder appended).
class InsertHintKinds : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "pgbaton.InsertHintKinds"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), 1);
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    if (key.empty()) return false;
    switch (key[0]) {
      case kCommitPrefix:
        return key.size() == 9;  // c<lsn>
      case kInlinePrefix:
      case kPendingPrefix:
        return key.size() == 13;  // i<lsn><seq>, p<ref><seq>
      default:
        return false;
    }
  }
};

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

RocksDbQueue::~RocksDbQueue() {
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

Status RocksDbQueue::Init(rocksdb::DB* db) {
  db_.reset(db);
  PGB_ASSIGN_OR_RETURN(auto version, GetRaw(SysKey("format_version")));
  // A secondary can open between the writer's memtable flush and its deletion of the WAL that
  // held the same keys, and see neither: catch up again before calling the queue empty (a
  // status under pgbench once read an initialized queue as "not initialized").
  for (int attempt = 0; !version && options_.read_only && attempt < 5; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    rocksdb::Status s = db_->TryCatchUpWithPrimary();
    if (!s.ok()) return FromRocks(s, options_.dir, "catching up with the writer");
    PGB_ASSIGN_OR_RETURN(version, GetRaw(SysKey("format_version")));
  }
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

Status RocksDbQueue::LoadWriterState() {
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
  // Commit keys and chunk keys arrive in increasing order: a memtable insert hint per kind
  // spares the skiplist search from the top (the key comparisons were half of an append's CPU).
  ro_opts.memtable_insert_with_hint_prefix_extractor = std::make_shared<InsertHintKinds>();
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

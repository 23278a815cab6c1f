// The RocksDB WorkQueue against a real RocksDB in a temporary directory: the WorkQueueConformance
// suite (tests/support/queue/work_queue_conformance.h), and what only this backend promises:
// trimming frees the disk, one writer holds the lock, a corrupt record names its LSN.
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "queue/codec.h"
#include "queue/work_queue.h"
#include "tests/support/queue/work_queue_conformance.h"
#include "tests/support/queue_records.h"

namespace pgbaton::queue {
namespace {

using namespace std::chrono_literals;
using testing::AddTxn;
using testing::MakeChunk;
using testing::MakeInsert;
using testing::ReadAll;
using testing::WorkQueueConformance;

// A queue directory below a fresh temporary directory, removed at the end.
class TempQueueDir {
 public:
  TempQueueDir() {
    char tmpl[] = "/tmp/pgbaton-queue-test-XXXXXX";
    if (mkdtemp(tmpl) != nullptr) dir_ = std::string(tmpl) + "/q";
  }
  ~TempQueueDir() {
    if (!dir_.empty()) std::filesystem::remove_all(std::filesystem::path(dir_).parent_path());
  }
  // Empty when the temporary directory could not be made.
  const std::string& path() const { return dir_; }

 private:
  std::string dir_;
};

// The backend of the conformance suite; the raw writes go to the database directly, with the
// keys of queue/rocksdb_keys.h.
class RocksDbBackend : public testing::QueueBackend {
 public:
  static std::unique_ptr<testing::QueueBackend> Make() {
    return std::make_unique<RocksDbBackend>();
  }
  Status Start() override {
    if (dir_.path().empty()) return Status::Error(ErrorCode::kIo, "cannot make a temporary dir");
    return Status::Ok();
  }
  QueueOptions Options() const override {
    QueueOptions o;
    o.dir = dir_.path();
    return o;
  }
  QueueOptions MissingQueueOptions() const override {
    QueueOptions o;
    o.dir = dir_.path() + "/nothing";
    o.read_only = true;
    return o;
  }
  Status SetStoredFormatVersion(const std::string& version) override {
    return Put("sformat_version", version);
  }
  Result<std::string> StoredFormatVersion() override {
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::OpenForReadOnly(rocksdb::Options(), dir_.path(), &raw);
    if (!s.ok()) return Status::Error(ErrorCode::kIo, s.ToString());
    std::string version;
    s = raw->Get(rocksdb::ReadOptions(), "sformat_version", &version);
    delete raw;
    if (!s.ok()) return Status::Error(ErrorCode::kIo, s.ToString());
    return version;
  }
  Status PutStoredRelation(RelationId id, uint32_t version, const std::string& bytes) override {
    std::string key = "r";
    PutBigEndian32(&key, id.value);
    PutBigEndian32(&key, version);
    return Put(key, bytes);
  }

 private:
  Status Put(const std::string& key, const std::string& value) {
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(rocksdb::Options(), dir_.path(), &raw);
    if (s.ok()) s = raw->Put(rocksdb::WriteOptions(), key, value);
    delete raw;
    if (!s.ok()) return Status::Error(ErrorCode::kIo, s.ToString());
    return Status::Ok();
  }

  TempQueueDir dir_;
};

INSTANTIATE_TEST_SUITE_P(RocksDb, WorkQueueConformance,
                         ::testing::Values(testing::BackendParam{"RocksDb",
                                                                 &RocksDbBackend::Make}));

class RocksDbQueueTest : public ::testing::Test {
 protected:
  std::unique_ptr<WorkQueue> OpenWriter() {
    QueueOptions o;
    o.dir = dir_.path();
    auto q = WorkQueue::Open(o);
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    return q.ok() ? std::move(q).value() : nullptr;
  }

  TempQueueDir dir_;
};

TEST_F(RocksDbQueueTest, TrimFreesTheDisk) {
  auto q = OpenWriter();
  ASSERT_TRUE(q);
  std::mt19937_64 rng(1);
  std::string noise(64 << 10, '\0');
  for (int txn = 0; txn < 200; ++txn) {
    for (char& ch : noise) ch = static_cast<char>(rng());
    RecordBatch b;
    AddTxn(&b, 1000 + txn, 0x100 * (txn + 1), 0);
    b.chunks[0].changes = {MakeInsert(1, txn, noise)};
    ASSERT_TRUE(q->Append(b).ok());
  }
  // One transaction over several appends (stored under its own number).
  RecordBatch p1, p2;
  p1.chunks = {MakeChunk(5, 0, noise)};
  ASSERT_TRUE(q->Append(p1).ok());
  AddTxn(&p2, 5, 0x100 * 201, 1);
  ASSERT_TRUE(q->Append(p2).ok());

  uint64_t before = *q->SizeBytes();
  EXPECT_GT(before, 200u * (64 << 10));
  ASSERT_TRUE(q->Trim(Lsn(0x100 * 150)).ok());
  auto rest = ReadAll(q.get());
  ASSERT_EQ(rest.size(), 51u);
  EXPECT_EQ(rest.back().chunks.size(), 2u);
  ASSERT_TRUE(q->Trim(Lsn::Max()).ok());
  uint64_t after = *q->SizeBytes();
  EXPECT_LT(after, before / 4) << "before " << before << " after " << after;
  // The write-ahead log is recycled on a later flush; reopening must still show an empty queue.
  q.reset();
  q = OpenWriter();
  ASSERT_TRUE(q);
  EXPECT_EQ(ReadAll(q.get()).size(), 0u);
}

TEST_F(RocksDbQueueTest, SecondWriterIsRefusedWithThePid) {
  auto q = OpenWriter();
  ASSERT_TRUE(q);
  QueueOptions o;
  o.dir = dir_.path();
  auto second = WorkQueue::Open(o);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), ErrorCode::kQueueLocked);
  EXPECT_NE(second.status().message().find(dir_.path()), std::string::npos)
      << second.status().message();
  EXPECT_NE(second.status().message().find("pid " + std::to_string(getpid())), std::string::npos)
      << second.status().message();
  q.reset();
  EXPECT_TRUE(WorkQueue::Open(o).ok());
}

TEST_F(RocksDbQueueTest, CorruptRecordsNameTheirLsn) {
  {
    auto q = OpenWriter();
    ASSERT_TRUE(q);
    RecordBatch b;
    AddTxn(&b, 1, 0x16B374D848ull);
    AddTxn(&b, 2, 0x16B374D900ull);
    ASSERT_TRUE(q->Append(b).ok());
  }
  {
    rocksdb::DB* raw;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_.path(), &raw).ok());
    std::string key = "k";
    PutBigEndian64(&key, 0x16B374D848ull);
    PutBigEndian32(&key, 0);
    std::string v;
    ASSERT_TRUE(raw->Get(rocksdb::ReadOptions(), key, &v).ok());
    v[v.size() - 1] ^= 1;
    ASSERT_TRUE(raw->Put(rocksdb::WriteOptions(), key, v).ok());
    std::string key2 = "k";
    PutBigEndian64(&key2, 0x16B374D900ull);
    PutBigEndian32(&key2, 0);
    ASSERT_TRUE(raw->Delete(rocksdb::WriteOptions(), key2).ok());
    delete raw;
  }
  auto q = OpenWriter();
  ASSERT_TRUE(q);
  auto cursor = std::move(q->ReadFrom(Lsn::Invalid())).value();
  auto t = std::move(cursor->Next(0ms)).value();
  ASSERT_TRUE(t);
  ChangeChunk c;
  auto r = t->NextChunk(&c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kQueueCorrupt);
  EXPECT_NE(r.status().message().find("16/B374D848"), std::string::npos) << r.status().message();
  t = std::move(cursor->Next(0ms)).value();
  ASSERT_TRUE(t);
  r = t->NextChunk(&c);  // its only chunk is missing
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kQueueCorrupt);
  EXPECT_NE(r.status().message().find("16/B374D900"), std::string::npos) << r.status().message();
}

// Appends, trims and dropped transactions interleaved in one memtable: the range deletions of a
// trim or a discard live in a memtable of their own and must not take the insert hints of the
// appends (an earlier build did, and RocksDB's skiplist asserted within a few rounds).
TEST_F(RocksDbQueueTest, AppendsInterleavedWithTrimsAndDiscardsReadBackWhole) {
  auto q = OpenWriter();
  ASSERT_TRUE(q);
  uint64_t lsn = 0x1000;
  uint32_t xid = 100;
  for (int round = 0; round < 200; ++round) {
    RecordBatch b;
    for (int i = 0; i < 5; ++i) AddTxn(&b, xid++, lsn += 0x10);
    b.chunks.push_back(MakeChunk(xid++, 0, "open"));  // stays open: a pending chunk
    ASSERT_TRUE(q->Append(b).ok());
    if (round % 3 == 0) {
      ASSERT_TRUE(q->Trim(Lsn(lsn - 0x20)).ok());
    }
    if (round % 7 == 0) {
      ASSERT_TRUE(q->DiscardUncommitted().ok());
    }
  }
  ASSERT_TRUE(q->Trim(Lsn(lsn - 0x40)).ok());
  auto rest = ReadAll(q.get());
  ASSERT_EQ(rest.size(), 4u);
  EXPECT_EQ(rest.back().commit.commit_lsn, Lsn(lsn));
  EXPECT_EQ(rest.back().chunks.size(), 1u);
}

}  // namespace
}  // namespace pgbaton::queue

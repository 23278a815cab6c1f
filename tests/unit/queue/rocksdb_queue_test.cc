// The RocksDB WorkQueue against a real RocksDB in a temporary directory.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <thread>

#include "queue/codec.h"
#include "queue/work_queue.h"
#include "tests/unit/queue/test_records.h"

namespace pgbaton::queue {
namespace {

using namespace std::chrono_literals;
using testing::AddTxn;
using testing::MakeInsert;
using testing::MakeRelation;

class RocksDbQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pgbaton-queue-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = std::string(tmpl) + "/q";
  }
  void TearDown() override {
    std::filesystem::remove_all(std::filesystem::path(dir_).parent_path());
  }

  std::unique_ptr<WorkQueue> OpenWriter() {
    QueueOptions o;
    o.dir = dir_;
    auto q = WorkQueue::Open(o);
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    return q.ok() ? std::move(q).value() : nullptr;
  }
  std::unique_ptr<WorkQueue> OpenReader() {
    QueueOptions o;
    o.dir = dir_;
    o.read_only = true;
    auto q = WorkQueue::Open(o);
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    return q.ok() ? std::move(q).value() : nullptr;
  }

  struct ReadTxn {
    CommitRecord commit;
    std::vector<ChangeChunk> chunks;
  };
  static std::vector<ReadTxn> ReadAll(WorkQueue* q, Lsn after = Lsn::Invalid()) {
    std::vector<ReadTxn> out;
    auto cursor = q->ReadFrom(after);
    EXPECT_TRUE(cursor.ok());
    while (true) {
      auto r = (*cursor)->Next(0ms);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (!r.ok() || !*r) break;
      ReadTxn t{(*r)->commit(), {}};
      ChangeChunk c;
      while (true) {
        auto more = (*r)->NextChunk(&c);
        EXPECT_TRUE(more.ok()) << more.status().ToString();
        if (!more.ok() || !*more) break;
        t.chunks.push_back(c);
      }
      out.push_back(std::move(t));
    }
    return out;
  }

  std::string dir_;
};

TEST_F(RocksDbQueueTest, AppendReadInOrderAndFromAnLsn) {
  auto q = OpenWriter();
  ASSERT_TRUE(q);
  EXPECT_EQ(*q->LastCommitLsn(), Lsn::Invalid());
  EXPECT_EQ(*q->FirstCommitLsn(), Lsn::Invalid());
  RecordBatch b1, b2;
  b1.relations.push_back(MakeRelation(1));
  AddTxn(&b1, 100, 0x1000);
  AddTxn(&b1, 101, 0x2000, 5);
  AddTxn(&b2, 102, 0x1'0000'0000ull);  // crosses the 32-bit boundary: keys must sort as numbers
  ASSERT_TRUE(q->Append(b1).ok());
  ASSERT_TRUE(q->Append(b2).ok());
  EXPECT_EQ(*q->LastCommitLsn(), Lsn(0x1'0000'0000ull));
  EXPECT_EQ(*q->LastEndLsn(), Lsn(0x1'0000'0008ull));
  EXPECT_EQ(*q->FirstCommitLsn(), Lsn(0x1000));

  auto all = ReadAll(q.get());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].commit, b1.commits[0]);
  EXPECT_EQ(all[1].commit, b1.commits[1]);
  EXPECT_EQ(all[2].commit, b2.commits[0]);
  ASSERT_EQ(all[1].chunks.size(), 1u);
  EXPECT_EQ(all[1].chunks[0], b1.chunks[1]);
  auto tail = ReadAll(q.get(), Lsn(0x1000));
  ASSERT_EQ(tail.size(), 2u);
  EXPECT_EQ(tail[0].commit.xid, Xid{101});
  EXPECT_EQ(ReadAll(q.get(), Lsn(0x1'0000'0000ull)).size(), 0u);
}

TEST_F(RocksDbQueueTest, CommitLsnsListsCommittedTransactionsInOrderAfterAClose) {
  auto q = OpenWriter();
  ASSERT_TRUE(q);
  RecordBatch b;
  for (uint32_t i = 1; i <= 20; ++i) AddTxn(&b, 100 + i, 0x1000 * i);
  ChangeChunk open;  // a transaction without its commit yet: not listed
  open.xid = open.subxid = Xid{99};
  open.changes = {MakeInsert(1, 1, "open")};
  b.chunks.push_back(open);
  ASSERT_TRUE(q->Append(b).ok());
  ASSERT_TRUE(q->Trim(Lsn(0x1000 * 3)).ok());
  // Closed and opened again: what the first writer appended is read from its table files.
  q.reset();
  q = OpenWriter();
  ASSERT_TRUE(q);
  auto all = q->CommitLsns(Lsn::Invalid(), 100);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 17u);
  EXPECT_EQ(all->front(), Lsn(0x1000 * 4));
  EXPECT_EQ(all->back(), Lsn(0x1000 * 20));
  // The same as the generic implementation, which reads every transaction through a cursor.
  auto generic = q->WorkQueue::CommitLsns(Lsn::Invalid(), 100);
  ASSERT_TRUE(generic.ok());
  EXPECT_EQ(*all, *generic);
  // After an LSN (exclusive), and at most `max`.
  auto some = q->CommitLsns(Lsn(0x1000 * 10), 3);
  ASSERT_TRUE(some.ok());
  EXPECT_EQ(*some, (std::vector<Lsn>{Lsn(0x1000 * 11), Lsn(0x1000 * 12), Lsn(0x1000 * 13)}));
  EXPECT_TRUE(q->CommitLsns(Lsn(0x1000 * 20), 3)->empty());
  EXPECT_TRUE(q->CommitLsns(Lsn::Max(), 3)->empty());
}

TEST_F(RocksDbQueueTest, ChunksAreInvisibleUntilTheirCommitAndMayInterleave) {
  auto q = OpenWriter();
  ASSERT_TRUE(q);
  auto chunk = [](uint32_t xid, uint32_t seq, uint32_t subxid = 0) {
    ChangeChunk c;
    c.xid = Xid{xid};
    c.subxid = Xid{subxid ? subxid : xid};
    c.seq = seq;
    c.changes = {MakeInsert(1, seq, "xid" + std::to_string(xid))};
    return c;
  };
  RecordBatch b1;
  b1.chunks = {chunk(7, 0), chunk(8, 0), chunk(7, 1)};
  ASSERT_TRUE(q->Append(b1).ok());
  EXPECT_EQ(ReadAll(q.get()).size(), 0u);
  // Reopen: open transactions survive a restart of the writer.
  q.reset();
  q = OpenWriter();
  ASSERT_TRUE(q);
  RecordBatch b2;
  b2.chunks = {chunk(8, 1), chunk(7, 2)};
  CommitRecord c8;
  c8.xid = Xid{8};
  c8.commit_lsn = Lsn(500);
  c8.end_lsn = Lsn(510);
  c8.chunk_count = 2;
  b2.commits = {c8};
  ASSERT_TRUE(q->Append(b2).ok());
  auto all = ReadAll(q.get());
  ASSERT_EQ(all.size(), 1u);
  ASSERT_EQ(all[0].chunks.size(), 2u);
  EXPECT_EQ(all[0].chunks[0], b1.chunks[1]);
  EXPECT_EQ(all[0].chunks[1], b2.chunks[0]);

  // A subtransaction abort drops only that subxid's chunks, also ones in the same batch.
  RecordBatch b3;
  b3.chunks = {chunk(7, 3, 70), chunk(7, 4)};
  b3.aborts = {{Xid{7}, Xid{70}}};
  CommitRecord c7;
  c7.xid = Xid{7};
  c7.commit_lsn = Lsn(600);
  c7.end_lsn = Lsn(610);
  b3.commits = {c7};
  RecordBatch b0;
  b0.chunks = {chunk(7, 99, 70)};
  ASSERT_TRUE(q->Append(b0).ok());  // a pending chunk of subxid 70, dropped by b3's abort
  ASSERT_TRUE(q->Append(b3).ok());
  all = ReadAll(q.get(), Lsn(500));
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].commit.chunk_count, 4u);
  ASSERT_EQ(all[0].chunks.size(), 4u);
  EXPECT_EQ(all[0].chunks[0], b1.chunks[0]);
  EXPECT_EQ(all[0].chunks[1], b1.chunks[2]);
  EXPECT_EQ(all[0].chunks[2], b2.chunks[1]);
  EXPECT_EQ(all[0].chunks[3], b3.chunks[1]);
}

TEST_F(RocksDbQueueTest, DiscardUncommittedAndXidReuse) {
  auto q = OpenWriter();
  ASSERT_TRUE(q);
  RecordBatch open;
  ChangeChunk c;
  c.xid = c.subxid = Xid{9};
  c.changes = {MakeInsert(1, 1, "first attempt")};
  open.chunks = {c};
  ASSERT_TRUE(q->Append(open).ok());
  q.reset();
  q = OpenWriter();
  ASSERT_TRUE(q->DiscardUncommitted().ok());
  // The source resends xid 9 from the start.
  RecordBatch again;
  AddTxn(&again, 9, 900);
  ASSERT_TRUE(q->Append(again).ok());
  auto all = ReadAll(q.get());
  ASSERT_EQ(all.size(), 1u);
  ASSERT_EQ(all[0].chunks.size(), 1u);
  EXPECT_EQ(all[0].chunks[0], again.chunks[0]);
  // A whole-transaction abort drops its chunks.
  RecordBatch aborted;
  c.xid = c.subxid = Xid{10};
  aborted.chunks = {c};
  ASSERT_TRUE(q->Append(aborted).ok());
  RecordBatch abort;
  abort.aborts = {{Xid{10}, Xid{10}}};
  ASSERT_TRUE(q->Append(abort).ok());
  RecordBatch reuse;
  AddTxn(&reuse, 10, 1000, 1);
  ASSERT_TRUE(q->Append(reuse).ok());
  all = ReadAll(q.get(), Lsn(900));
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].chunks.size(), 1u);
}

TEST_F(RocksDbQueueTest, ResentCommitIsSkipped) {
  auto q = OpenWriter();
  RecordBatch b;
  AddTxn(&b, 1, 100);
  ASSERT_TRUE(q->Append(b).ok());
  RecordBatch dup;
  AddTxn(&dup, 1, 100, 7);
  AddTxn(&dup, 2, 200);
  ASSERT_TRUE(q->Append(dup).ok());
  auto all = ReadAll(q.get());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].commit.change_count, 2u);  // the first copy is kept
  EXPECT_EQ(all[1].commit.commit_lsn, Lsn(200));
}

TEST_F(RocksDbQueueTest, TrimDeletesAndFreesDisk) {
  auto q = OpenWriter();
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
  ChangeChunk c;
  c.xid = c.subxid = Xid{5};
  c.changes = {MakeInsert(1, 1, noise)};
  p1.chunks = {c};
  ASSERT_TRUE(q->Append(p1).ok());
  AddTxn(&p2, 5, 0x100 * 201, 1);
  ASSERT_TRUE(q->Append(p2).ok());

  uint64_t before = *q->SizeBytes();
  EXPECT_GT(before, 200u * (64 << 10));
  ASSERT_TRUE(q->Trim(Lsn(0x100 * 150)).ok());
  EXPECT_EQ(*q->FirstCommitLsn(), Lsn(0x100 * 151));
  auto rest = ReadAll(q.get());
  ASSERT_EQ(rest.size(), 51u);
  EXPECT_EQ(rest.back().chunks.size(), 2u);
  ASSERT_TRUE(q->Trim(Lsn::Max()).ok());
  EXPECT_EQ(*q->FirstCommitLsn(), Lsn::Invalid());
  EXPECT_EQ(ReadAll(q.get()).size(), 0u);
  uint64_t after = *q->SizeBytes();
  EXPECT_LT(after, before / 4) << "before " << before << " after " << after;
  // The write-ahead log is recycled on a later flush; reopening must still show an empty queue
  // whose last position is gone but whose metadata and relations stay.
  q.reset();
  q = OpenWriter();
  EXPECT_EQ(ReadAll(q.get()).size(), 0u);
}

TEST_F(RocksDbQueueTest, MetadataAndRelations) {
  auto q = OpenWriter();
  ASSERT_TRUE(q->PutMeta("sync/public.a", "0/10").ok());
  ASSERT_TRUE(q->PutMeta("sync/public.b", "0/20").ok());
  ASSERT_TRUE(q->PutMeta("copy/progress", std::string("\0\1", 2)).ok());
  RecordBatch b;
  b.relations = {MakeRelation(1, 1), MakeRelation(1, 2), MakeRelation(2, 1)};
  b.relations[1].columns.pop_back();
  ASSERT_TRUE(q->Append(b).ok());
  q.reset();
  q = OpenWriter();
  EXPECT_EQ(**q->GetMeta("sync/public.a"), "0/10");
  EXPECT_EQ(**q->GetMeta("copy/progress"), std::string("\0\1", 2));
  EXPECT_FALSE(q->GetMeta("nope")->has_value());
  auto sync = *q->ListMeta("sync/");
  ASSERT_EQ(sync.size(), 2u);
  EXPECT_EQ(sync["sync/public.b"], "0/20");
  ASSERT_TRUE(q->DeleteMeta("sync/public.a").ok());
  EXPECT_EQ(q->ListMeta("sync/")->size(), 1u);
  EXPECT_EQ(*q->GetRelation(RelationId{1}, 2), b.relations[1]);
  EXPECT_EQ(*q->GetRelation(RelationId{2}, 1), b.relations[2]);
  EXPECT_EQ(q->GetRelation(RelationId{2}, 9).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(q->ListRelations()->size(), 3u);
}

TEST_F(RocksDbQueueTest, SecondWriterIsRefusedWithThePid) {
  auto q = OpenWriter();
  ASSERT_TRUE(q);
  QueueOptions o;
  o.dir = dir_;
  auto second = WorkQueue::Open(o);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), ErrorCode::kQueueLocked);
  EXPECT_NE(second.status().message().find(dir_), std::string::npos) << second.status().message();
  EXPECT_NE(second.status().message().find("pid " + std::to_string(getpid())), std::string::npos)
      << second.status().message();
  q.reset();
  EXPECT_TRUE(WorkQueue::Open(o).ok());
}

TEST_F(RocksDbQueueTest, ReaderFollowsARunningWriter) {
  auto w = OpenWriter();
  RecordBatch b1;
  AddTxn(&b1, 1, 100);
  b1.relations = {MakeRelation(1)};
  ASSERT_TRUE(w->Append(b1).ok());
  ASSERT_TRUE(w->PutMeta("k", "v1").ok());
  auto r = OpenReader();
  ASSERT_TRUE(r);
  EXPECT_EQ(*r->LastCommitLsn(), Lsn(100));
  auto cursor = std::move(r->ReadFrom(Lsn::Invalid())).value();
  auto t = cursor->Next(0ms);
  ASSERT_TRUE(t.ok() && *t);
  EXPECT_EQ((*t)->commit().commit_lsn, Lsn(100));
  RecordBatch b2;
  AddTxn(&b2, 2, 200);
  b2.relations = {MakeRelation(1, 2)};
  ASSERT_TRUE(w->Append(b2).ok());
  ASSERT_TRUE(w->PutMeta("k", "v2").ok());
  t = cursor->Next(5s);
  ASSERT_TRUE(t.ok() && *t) << t.status().ToString();
  EXPECT_EQ((*t)->commit().commit_lsn, Lsn(200));
  ChangeChunk c;
  ASSERT_TRUE(*(*t)->NextChunk(&c));
  EXPECT_EQ(c, b2.chunks[0]);
  EXPECT_EQ(*r->LastCommitLsn(), Lsn(200));
  EXPECT_EQ(**r->GetMeta("k"), "v2");
  EXPECT_TRUE(r->GetRelation(RelationId{1}, 2).ok());
  EXPECT_FALSE(r->Append(b2).ok());
}

TEST_F(RocksDbQueueTest, CursorWakesOnAppendFromAnotherThread) {
  auto q = OpenWriter();
  auto cursor = std::move(q->ReadFrom(Lsn::Invalid())).value();
  std::thread writer([&] {
    std::this_thread::sleep_for(50ms);
    RecordBatch b;
    AddTxn(&b, 1, 100);
    EXPECT_TRUE(q->Append(b).ok());
  });
  auto t = cursor->Next(30s);
  writer.join();
  ASSERT_TRUE(t.ok() && *t);
  EXPECT_EQ((*t)->commit().commit_lsn, Lsn(100));
}

TEST_F(RocksDbQueueTest, ReadOnlyOfMissingQueueIsNotFound) {
  QueueOptions o;
  o.dir = dir_ + "/nothing";
  o.read_only = true;
  EXPECT_EQ(WorkQueue::Open(o).status().code(), ErrorCode::kNotFound);
}

TEST_F(RocksDbQueueTest, NewerFormatAndOtherMigrationAreRefused) {
  OpenWriter().reset();
  {
    rocksdb::DB* raw;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_, &raw).ok());
    ASSERT_TRUE(
        raw->Put(rocksdb::WriteOptions(), "sformat_version", std::to_string(kFormatVersion + 1))
            .ok());
    delete raw;
  }
  QueueOptions o;
  o.dir = dir_;
  auto q = WorkQueue::Open(o);
  EXPECT_EQ(q.status().code(), ErrorCode::kQueueFormat);
  EXPECT_NE(q.status().message().find(fmt::format("format version {}", kFormatVersion + 1)),
            std::string::npos)
      << q.status().message();
  {
    rocksdb::DB* raw;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_, &raw).ok());
    ASSERT_TRUE(raw->Put(rocksdb::WriteOptions(), "sformat_version", "1").ok());
    delete raw;
  }
  o.migration_name = "other";
  q = WorkQueue::Open(o);
  EXPECT_EQ(q.status().code(), ErrorCode::kQueueMismatch);
  EXPECT_NE(q.status().message().find("\"pgbaton\""), std::string::npos) << q.status().message();
}

// A queue written by a format-1 build: its relation descriptors still read (the type string
// split at the first dot), and a writer of this build raises the queue's format version, so that
// a format-1 build refuses the whole queue rather than stop at the first new record.
TEST_F(RocksDbQueueTest, FormatOneQueueIsReadAndRaisedByAWriter) {
  OpenWriter().reset();
  // The format-1 bytes of relation 7 version 1 (see CodecTest.Version1RelationStillReads).
  const std::string v1(
      "\x01\x03\x00\xb1\x25\x56\x73\x07\x01\x06\x70\x75\x62\x6c\x69\x63"
      "\x01\x74\x64\x02\x02\x69\x64\x0f\x70\x67\x5f\x63\x61\x74\x61\x6c"
      "\x6f\x67\x2e\x69\x6e\x74\x34\x17\x01\x01\x04\x68\x6f\x6d\x65\x11"
      "\x53\x68\x6f\x70\x20\x44\x61\x74\x61\x2e\x61\x64\x64\x72\x65\x73"
      "\x73\xf4\x80\x01\x01\x00",
      70);
  {
    rocksdb::DB* raw;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_, &raw).ok());
    ASSERT_TRUE(raw->Put(rocksdb::WriteOptions(), "sformat_version", "1").ok());
    std::string key = "r";
    PutBigEndian32(&key, 7);
    PutBigEndian32(&key, 1);
    ASSERT_TRUE(raw->Put(rocksdb::WriteOptions(), key, v1).ok());
    delete raw;
  }
  {
    auto reader = OpenReader();
    ASSERT_TRUE(reader);
    auto rels = reader->ListRelations();
    ASSERT_TRUE(rels.ok()) << rels.status().ToString();
    ASSERT_EQ(rels->size(), 1u);
    EXPECT_EQ((*rels)[0].columns[1].type, (QualifiedName{"Shop Data", "address"}));
  }
  OpenWriter().reset();
  rocksdb::DB* raw;
  ASSERT_TRUE(rocksdb::DB::OpenForReadOnly(rocksdb::Options(), dir_, &raw).ok());
  std::string version;
  ASSERT_TRUE(raw->Get(rocksdb::ReadOptions(), "sformat_version", &version).ok());
  delete raw;
  EXPECT_EQ(version, std::to_string(kFormatVersion));
}

TEST_F(RocksDbQueueTest, CorruptRecordsNameTheirLsn) {
  {
    auto q = OpenWriter();
    RecordBatch b;
    AddTxn(&b, 1, 0x16B374D848ull);
    AddTxn(&b, 2, 0x16B374D900ull);
    ASSERT_TRUE(q->Append(b).ok());
  }
  {
    rocksdb::DB* raw;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_, &raw).ok());
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

}  // namespace
}  // namespace pgbaton::queue

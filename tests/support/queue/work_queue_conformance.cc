// The contract tests every WorkQueue backend passes; see work_queue_conformance.h.
#include "tests/support/queue/work_queue_conformance.h"

#include <fmt/format.h>

#include <random>
#include <thread>

#include "queue/codec.h"
#include "tests/support/queue_records.h"

namespace pgbaton::queue::testing {

using namespace std::chrono_literals;

void WorkQueueConformance::SetUp() {
  backend_ = GetParam().make();
  ASSERT_TRUE(backend_);
  Status s = backend_->Start();
  ASSERT_TRUE(s.ok()) << s.ToString();
}

QueueOptions WorkQueueConformance::Options(bool read_only) const {
  QueueOptions o = backend_->Options();
  o.read_only = read_only;
  return o;
}

std::unique_ptr<WorkQueue> WorkQueueConformance::OpenWriter() {
  auto q = WorkQueue::Open(Options());
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  return q.ok() ? std::move(q).value() : nullptr;
}

std::unique_ptr<WorkQueue> WorkQueueConformance::OpenReader() {
  auto q = WorkQueue::Open(Options(true));
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  return q.ok() ? std::move(q).value() : nullptr;
}

std::vector<ReadTxn> ReadAll(WorkQueue* q, Lsn after) {
  std::vector<ReadTxn> out;
  auto cursor = q->ReadFrom(after);
  EXPECT_TRUE(cursor.ok()) << cursor.status().ToString();
  if (!cursor.ok()) return out;
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

namespace {

TEST_P(WorkQueueConformance, AppendReadInOrderAndFromAnLsn) {
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
  EXPECT_EQ(ReadAll(q.get(), Lsn(0x2000)).size(), 1u);
  EXPECT_EQ(ReadAll(q.get(), Lsn(0x1'0000'0000ull)).size(), 0u);
}

// A second process's view: a read-only queue sees the positions, descriptors and metadata.
TEST_P(WorkQueueConformance, AReaderSeesWhatTheWriterWrote) {
  auto q = OpenWriter();
  ASSERT_TRUE(q);
  RecordBatch b1, b2;
  b1.relations = {MakeRelation(1), MakeRelation(2)};
  AddTxn(&b1, 100, 0x1000);
  AddTxn(&b1, 101, 0x2000, 5);
  AddTxn(&b2, 102, 0x1'0000'0000ull);
  b2.relations = {MakeRelation(1, 2)};
  ASSERT_TRUE(q->Append(b1).ok());
  ASSERT_TRUE(q->Append(b2).ok());
  ASSERT_TRUE(q->PutMeta("sync/public.a", "0/10").ok());
  ASSERT_TRUE(q->PutMeta("sync/public.b", "0/20").ok());
  ASSERT_TRUE(q->DeleteMeta("sync/public.a").ok());

  auto r = OpenReader();
  ASSERT_TRUE(r);
  EXPECT_EQ(*r->LastCommitLsn(), Lsn(0x1'0000'0000ull));
  EXPECT_EQ(*r->LastEndLsn(), Lsn(0x1'0000'0008ull));
  EXPECT_EQ(*r->FirstCommitLsn(), Lsn(0x1000));
  EXPECT_EQ(*r->GetRelation(RelationId{1}, 2), b2.relations[0]);
  EXPECT_EQ(r->ListRelations()->size(), 3u);
  auto meta = *r->ListMeta("sync/");
  ASSERT_EQ(meta.size(), 1u);
  EXPECT_EQ(meta["sync/public.b"], "0/20");
  EXPECT_FALSE(r->GetMeta("sync/public.a")->has_value());
  EXPECT_GT(*r->SizeBytes(), 0u);
  EXPECT_EQ(ReadAll(r.get()).size(), 3u);
  EXPECT_FALSE(r->Append(b2).ok());
}

TEST_P(WorkQueueConformance, CommitLsnsListsCommittedTransactionsInOrderAfterAClose) {
  auto q = OpenWriter();
  ASSERT_TRUE(q);
  RecordBatch b;
  for (uint32_t i = 1; i <= 20; ++i) AddTxn(&b, 100 + i, 0x1000 * i);
  b.chunks.push_back(MakeChunk(99, 0, "open"));  // a transaction without its commit: not listed
  ASSERT_TRUE(q->Append(b).ok());
  ASSERT_TRUE(q->Trim(Lsn(0x1000 * 3)).ok());
  // Closed and opened again: what the first writer appended is read from storage.
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

TEST_P(WorkQueueConformance, ChunksAreInvisibleUntilTheirCommitAndMayInterleave) {
  auto q = OpenWriter();
  ASSERT_TRUE(q);
  RecordBatch b1;
  b1.chunks = {MakeChunk(7, 0, "xid7"), MakeChunk(8, 0, "xid8"), MakeChunk(7, 1, "xid7")};
  ASSERT_TRUE(q->Append(b1).ok());
  EXPECT_EQ(ReadAll(q.get()).size(), 0u);
  // Reopen: open transactions survive a restart of the writer.
  q.reset();
  q = OpenWriter();
  ASSERT_TRUE(q);
  RecordBatch b2;
  b2.chunks = {MakeChunk(8, 1, "xid8"), MakeChunk(7, 2, "xid7")};
  CommitRecord c8 = MakeCommit(8, 500, 10);
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
  b3.chunks = {MakeChunk(7, 3, "xid7", 70), MakeChunk(7, 4, "xid7")};
  b3.aborts = {{Xid{7}, Xid{70}}};
  b3.commits = {MakeCommit(7, 600, 10)};
  RecordBatch b0;
  b0.chunks = {MakeChunk(7, 99, "xid7", 70)};
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

TEST_P(WorkQueueConformance, InterleavedChunksAbortsDiscardAndWriterRestart) {
  auto q = OpenWriter();
  ASSERT_TRUE(q);
  RecordBatch b1;  // xid 7 and 8 open, interleaved
  b1.chunks = {MakeChunk(7, 0, "a"), MakeChunk(8, 0, "b"), MakeChunk(7, 1, "c", 70)};
  ASSERT_TRUE(q->Append(b1).ok());
  RecordBatch b2;  // 9 commits while 7 and 8 stay open
  AddTxn(&b2, 9, 100);
  ASSERT_TRUE(q->Append(b2).ok());
  // The writer restarts without discarding: it must rebuild 7 and 8 from storage.
  q.reset();
  q = OpenWriter();
  ASSERT_TRUE(q);
  EXPECT_EQ(*q->LastCommitLsn(), Lsn(100));
  RecordBatch b3;
  b3.chunks = {MakeChunk(8, 1, "d")};
  b3.commits = {MakeCommit(8, 200)};
  b3.aborts = {{Xid{7}, Xid{70}}};
  ASSERT_TRUE(q->Append(b3).ok());
  RecordBatch b4;
  b4.chunks = {MakeChunk(7, 2, "e")};
  b4.commits = {MakeCommit(7, 300)};
  ASSERT_TRUE(q->Append(b4).ok());

  auto all = ReadAll(q.get());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[1].commit.commit_lsn, Lsn(200));
  ASSERT_EQ(all[1].chunks.size(), 2u);
  EXPECT_EQ(all[1].chunks[0], b1.chunks[1]);
  EXPECT_EQ(all[1].chunks[1], b3.chunks[0]);
  ASSERT_EQ(all[2].chunks.size(), 2u);  // subxid 70 aborted
  EXPECT_EQ(all[2].chunks[0], b1.chunks[0]);
  EXPECT_EQ(all[2].chunks[1], b4.chunks[0]);
  // Starting after 100 or 200 must still find chunks written before those commits.
  auto tail = ReadAll(q.get(), Lsn(200));
  ASSERT_EQ(tail.size(), 1u);
  EXPECT_EQ(tail[0].chunks.size(), 2u);
  EXPECT_EQ(ReadAll(q.get(), Lsn(100)).size(), 2u);

  // Discard: chunks of an unfinished xid 11 vanish; the resent xid 11 is read whole.
  RecordBatch b5;
  b5.chunks = {MakeChunk(11, 0, "lost")};
  ASSERT_TRUE(q->Append(b5).ok());
  q.reset();
  q = OpenWriter();
  ASSERT_TRUE(q);
  ASSERT_TRUE(q->DiscardUncommitted().ok());
  RecordBatch b6;
  b6.chunks = {MakeChunk(11, 0, "resent")};
  b6.commits = {MakeCommit(11, 400)};
  ASSERT_TRUE(q->Append(b6).ok());
  tail = ReadAll(q.get(), Lsn(300));
  ASSERT_EQ(tail.size(), 1u);
  ASSERT_EQ(tail[0].chunks.size(), 1u);
  EXPECT_EQ(tail[0].chunks[0], b6.chunks[0]);
  // A resent commit is skipped.
  RecordBatch dup;
  AddTxn(&dup, 11, 400);
  ASSERT_TRUE(q->Append(dup).ok());
  EXPECT_EQ(ReadAll(q.get(), Lsn(300)).size(), 1u);
}

TEST_P(WorkQueueConformance, DiscardUncommittedAndXidReuse) {
  auto q = OpenWriter();
  ASSERT_TRUE(q);
  RecordBatch open;
  open.chunks = {MakeChunk(9, 0, "first attempt")};
  ASSERT_TRUE(q->Append(open).ok());
  q.reset();
  q = OpenWriter();
  ASSERT_TRUE(q);
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
  aborted.chunks = {MakeChunk(10, 0, "first attempt")};
  ASSERT_TRUE(q->Append(aborted).ok());
  RecordBatch abort;
  abort.aborts = {{Xid{10}, Xid{10}}};
  ASSERT_TRUE(q->Append(abort).ok());
  RecordBatch reuse;
  AddTxn(&reuse, 10, 1000, 1);
  ASSERT_TRUE(q->Append(reuse).ok());
  all = ReadAll(q.get(), Lsn(900));
  ASSERT_EQ(all.size(), 1u);
  ASSERT_EQ(all[0].chunks.size(), 1u);
  EXPECT_EQ(all[0].chunks[0], reuse.chunks[0]);
}

TEST_P(WorkQueueConformance, ResentCommitIsSkipped) {
  auto q = OpenWriter();
  ASSERT_TRUE(q);
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

// Trimmed transactions are gone for every reader, also after a reopen; metadata and relation
// descriptors stay.
TEST_P(WorkQueueConformance, TrimHidesTransactionsAndKeepsTheRest) {
  auto q = OpenWriter();
  ASSERT_TRUE(q);
  RecordBatch first;
  first.relations = {MakeRelation(1)};
  ASSERT_TRUE(q->Append(first).ok());
  ASSERT_TRUE(q->PutMeta("sync/public.t1", "0/10").ok());
  for (uint32_t i = 1; i <= 20; ++i) {
    RecordBatch b;
    AddTxn(&b, 1000 + i, 0x100 * i);
    ASSERT_TRUE(q->Append(b).ok());
  }
  // One transaction over several appends.
  RecordBatch p1, p2;
  p1.chunks = {MakeChunk(5, 0, "spread")};
  ASSERT_TRUE(q->Append(p1).ok());
  AddTxn(&p2, 5, 0x100 * 21, 1);
  ASSERT_TRUE(q->Append(p2).ok());

  ASSERT_TRUE(q->Trim(Lsn(0x100 * 15)).ok());
  EXPECT_EQ(*q->FirstCommitLsn(), Lsn(0x100 * 16));
  auto rest = ReadAll(q.get());
  ASSERT_EQ(rest.size(), 6u);
  EXPECT_EQ(rest.front().commit.commit_lsn, Lsn(0x100 * 16));
  ASSERT_EQ(rest.back().chunks.size(), 2u);
  EXPECT_EQ(rest.back().chunks[0], p1.chunks[0]);
  EXPECT_EQ(ReadAll(q.get(), Lsn(0x100 * 3)).size(), 6u);  // a reader's start does not undo it
  ASSERT_TRUE(q->Trim(Lsn::Max()).ok());
  EXPECT_EQ(*q->FirstCommitLsn(), Lsn::Invalid());
  EXPECT_EQ(ReadAll(q.get()).size(), 0u);
  q.reset();
  q = OpenWriter();
  ASSERT_TRUE(q);
  EXPECT_EQ(ReadAll(q.get()).size(), 0u);
  EXPECT_EQ(**q->GetMeta("sync/public.t1"), "0/10");
  EXPECT_EQ(*q->GetRelation(RelationId{1}, 1), first.relations[0]);
}

TEST_P(WorkQueueConformance, MetadataAndRelations) {
  auto q = OpenWriter();
  ASSERT_TRUE(q);
  ASSERT_TRUE(q->PutMeta("sync/public.a", "0/10").ok());
  ASSERT_TRUE(q->PutMeta("sync/public.b", "0/20").ok());
  ASSERT_TRUE(q->PutMeta("copy/progress", std::string("\0\1", 2)).ok());
  RecordBatch b;
  b.relations = {MakeRelation(1, 1), MakeRelation(1, 2), MakeRelation(2, 1)};
  b.relations[1].columns.pop_back();
  ASSERT_TRUE(q->Append(b).ok());
  q.reset();
  q = OpenWriter();
  ASSERT_TRUE(q);
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

TEST_P(WorkQueueConformance, ReaderFollowsARunningWriter) {
  auto w = OpenWriter();
  ASSERT_TRUE(w);
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

// A reader opened before the writer adds a relation (a table created mid-stream, cutover's
// sentinel table) finds its descriptor, and metadata written later. (On Kafka the reader re-reads
// the meta topic's tail: the end-of-partition event librdkafka queued after its first load must
// not end the next read early; it did, and GetRelation failed with "relation 9 version 1 is not
// in kafka topic".)
TEST_P(WorkQueueConformance, ReaderFindsRelationsAndMetadataWrittenAfterItOpened) {
  auto w = OpenWriter();
  ASSERT_TRUE(w);
  RecordBatch b1;
  b1.relations = {MakeRelation(1)};
  AddTxn(&b1, 100, 0x1000);
  ASSERT_TRUE(w->Append(b1).ok());
  auto r = OpenReader();
  ASSERT_TRUE(r);
  EXPECT_EQ(*r->GetRelation(RelationId{1}, 1), b1.relations[0]);
  std::this_thread::sleep_for(500ms);  // lets an end-of-partition event reach the reader

  for (uint32_t id = 9; id < 12; ++id) {
    RecordBatch b;
    b.relations = {MakeRelation(id)};
    AddTxn(&b, 100 + id, 0x1000 + id * 0x100);
    ASSERT_TRUE(w->Append(b).ok());
    auto rel = r->GetRelation(RelationId{id}, 1);
    ASSERT_TRUE(rel.ok()) << rel.status().ToString();
    EXPECT_EQ(*rel, b.relations[0]);
    ASSERT_TRUE(w->PutMeta(fmt::format("sync_lsn/public.t{}", id), "0/10").ok());
    std::this_thread::sleep_for(300ms);
    auto meta = r->ListMeta("sync_lsn/");
    ASSERT_TRUE(meta.ok()) << meta.status().ToString();
    EXPECT_EQ(meta->size(), id - 8) << "metadata written after the reader opened is listed";
  }
}

TEST_P(WorkQueueConformance, CursorWakesOnAppendFromAnotherThread) {
  auto q = OpenWriter();
  ASSERT_TRUE(q);
  auto cursor = std::move(q->ReadFrom(Lsn::Invalid())).value();
  std::thread writer([&] {
    std::this_thread::sleep_for(50ms);
    RecordBatch b;
    AddTxn(&b, 1, 100);
    EXPECT_TRUE(q->Append(b).ok());
  });
  auto t = cursor->Next(30s);
  writer.join();
  ASSERT_TRUE(t.ok() && *t) << t.status().ToString();
  EXPECT_EQ((*t)->commit().commit_lsn, Lsn(100));
}

// A transaction whose chunks come over many appends, while others commit, is read back whole
// (40 MiB of incompressible chunks: on Kafka more than a cursor's cache holds).
TEST_P(WorkQueueConformance, LargeTransactionIsReadBackWhole) {
  auto q = OpenWriter();
  ASSERT_TRUE(q);
  std::mt19937_64 rng(3);
  std::vector<ChangeChunk> chunks;
  for (uint32_t i = 0; i < 40; ++i) {
    std::string v(1 << 20, '\0');
    for (char& ch : v) ch = static_cast<char>(rng());
    chunks.push_back(MakeChunk(5, i, std::move(v)));
    RecordBatch b;
    b.chunks = {chunks.back()};
    if (i % 10 == 5) AddTxn(&b, 1000 + i, 100 + i);  // small transactions commit meanwhile
    ASSERT_TRUE(q->Append(b).ok());
  }
  RecordBatch c;
  c.commits = {MakeCommit(5, 1000)};
  ASSERT_TRUE(q->Append(c).ok());
  auto all = ReadAll(q.get(), Lsn(200));
  ASSERT_EQ(all.size(), 1u);
  ASSERT_EQ(all[0].chunks.size(), 40u);
  for (size_t i = 0; i < chunks.size(); ++i) EXPECT_TRUE(all[0].chunks[i] == chunks[i]) << i;
}

TEST_P(WorkQueueConformance, ReadOnlyOfMissingQueueIsNotFound) {
  EXPECT_EQ(WorkQueue::Open(backend_->MissingQueueOptions()).status().code(), ErrorCode::kNotFound);
}

TEST_P(WorkQueueConformance, NewerFormatAndOtherMigrationAreRefused) {
  OpenWriter().reset();
  ASSERT_TRUE(backend_->SetStoredFormatVersion(std::to_string(kFormatVersion + 1)).ok());
  auto q = WorkQueue::Open(Options());
  EXPECT_EQ(q.status().code(), ErrorCode::kQueueFormat) << q.status().ToString();
  EXPECT_NE(q.status().message().find(fmt::format("format version {}", kFormatVersion + 1)),
            std::string::npos)
      << q.status().message();
  ASSERT_TRUE(backend_->SetStoredFormatVersion("1").ok());
  QueueOptions other = Options();
  other.migration_name = "other";
  q = WorkQueue::Open(other);
  EXPECT_EQ(q.status().code(), ErrorCode::kQueueMismatch) << q.status().ToString();
  EXPECT_NE(q.status().message().find("\"pgbaton\""), std::string::npos) << q.status().message();
}

// A queue written by a format-1 build: its relation descriptors still read (the type string
// split at the first dot), and a writer of this build raises the queue's format version, so that
// a format-1 build refuses the whole queue rather than stop at the first new record.
TEST_P(WorkQueueConformance, FormatOneQueueIsReadAndRaisedByAWriter) {
  OpenWriter().reset();
  ASSERT_TRUE(backend_->SetStoredFormatVersion("1").ok());
  ASSERT_TRUE(backend_->PutStoredRelation(RelationId{7}, 1, FormatOneRelation7()).ok());
  {
    auto reader = OpenReader();
    ASSERT_TRUE(reader);
    auto rels = reader->ListRelations();
    ASSERT_TRUE(rels.ok()) << rels.status().ToString();
    ASSERT_EQ(rels->size(), 1u);
    EXPECT_EQ((*rels)[0].columns[1].type, (QualifiedName{"Shop Data", "address"}));
  }
  OpenWriter().reset();
  auto version = backend_->StoredFormatVersion();
  ASSERT_TRUE(version.ok()) << version.status().ToString();
  EXPECT_EQ(*version, std::to_string(kFormatVersion));
}

}  // namespace
}  // namespace pgbaton::queue::testing

// The memory tail (queue/memory_tail.h) over a real RocksDB queue: whatever a cursor takes from
// memory or reads from the backend, it serves exactly what the backend alone would, in order —
// transactions whose chunks spanned appends, aborts, resent commits, a full memory budget,
// cursors made again from an earlier position (the applier restarting), trims.
#include "queue/memory_tail.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "tests/support/queue/work_queue_conformance.h"
#include "tests/support/queue_records.h"

namespace pgbaton::queue {
namespace {

using namespace std::chrono_literals;
using testing::AddTxn;
using testing::MakeChunk;
using testing::MakeCommit;
using testing::ReadAll;
using testing::ReadTxn;

class MemoryTailTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pgbaton-tail-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  QueueOptions Options() const {
    QueueOptions o;
    o.dir = root_ + "/q";
    return o;
  }
  // A writer with a memory tail of `max_bytes`, after the decoder's first DiscardUncommitted.
  std::unique_ptr<MemoryTailQueue> OpenTail(size_t max_bytes) {
    auto q = WorkQueue::Open(Options());
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    if (!q.ok()) return nullptr;
    auto t = WithMemoryTail(std::move(q).value(), MemoryTailOptions{max_bytes});
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    if (!t.ok()) return nullptr;
    EXPECT_TRUE((*t)->DiscardUncommitted().ok());
    return std::move(t).value();
  }
  // Every transaction as the backend alone serves it (the tail closed first).
  std::vector<ReadTxn> BackendAlone() {
    auto q = WorkQueue::Open(Options());
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    if (!q.ok()) return {};
    return ReadAll(q->get());
  }

  std::string root_;
};

ReadTxn ReadOne(TransactionReader* r) {
  ReadTxn t{r->commit(), {}};
  ChangeChunk c;
  while (true) {
    auto more = r->NextChunk(&c);
    EXPECT_TRUE(more.ok()) << more.status().ToString();
    if (!more.ok() || !*more) break;
    t.chunks.push_back(std::move(c));
  }
  return t;
}

TEST_F(MemoryTailTest, ServesFromMemoryWhatTheBackendHoldsAndMovesTheChanges) {
  auto q = OpenTail(1 << 20);
  ASSERT_TRUE(q);
  auto cursor = std::move(q->ReadFrom(Lsn::Invalid())).value();
  RecordBatch b;
  AddTxn(&b, 1, 100, 3);
  AddTxn(&b, 2, 200, 1);
  RecordBatch want = b;
  ASSERT_TRUE(q->AppendOwned(std::move(b)).ok());
  for (int i = 0; i < 2; ++i) {
    auto r = cursor->Next(0ms);
    ASSERT_TRUE(r.ok() && *r);
    ReadTxn t = ReadOne(r->get());
    EXPECT_EQ(t.commit, want.commits[i]);
    ASSERT_EQ(t.chunks.size(), 1u);
    EXPECT_EQ(t.chunks[0], want.chunks[i]);
  }
  auto none = cursor->Next(0ms);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, nullptr);
  EXPECT_EQ(q->memory_stats().from_memory, 2u);
  EXPECT_EQ(q->memory_stats().from_backend, 0u);
  // Taken from memory, still in the backend: a second cursor reads them there.
  auto again = ReadAll(q.get());
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[1].chunks[0], want.chunks[1]);
  EXPECT_EQ(q->memory_stats().from_backend, 2u);
}

TEST_F(MemoryTailTest, ATransactionOverSeveralAppendsIsReadFromTheBackend) {
  auto q = OpenTail(1 << 20);
  ASSERT_TRUE(q);
  auto cursor = std::move(q->ReadFrom(Lsn::Invalid())).value();
  RecordBatch b1;
  b1.chunks = {MakeChunk(7, 0, "first")};
  AddTxn(&b1, 8, 100);
  ASSERT_TRUE(q->AppendOwned(RecordBatch(b1)).ok());
  RecordBatch b2;
  b2.chunks = {MakeChunk(7, 1, "second")};
  CommitRecord c7 = MakeCommit(7, 200);
  c7.chunk_count = 2;
  b2.commits = {c7};
  AddTxn(&b2, 9, 300);
  ASSERT_TRUE(q->AppendOwned(RecordBatch(b2)).ok());
  std::vector<ReadTxn> got;
  while (true) {
    auto r = cursor->Next(0ms);
    ASSERT_TRUE(r.ok());
    if (*r == nullptr) break;
    got.push_back(ReadOne(r->get()));
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[1].commit.commit_lsn, Lsn(200));
  ASSERT_EQ(got[1].chunks.size(), 2u);
  EXPECT_EQ(got[1].chunks[0], b1.chunks[0]);
  EXPECT_EQ(got[1].chunks[1], b2.chunks[0]);
  EXPECT_EQ(got[2].chunks[0], b2.chunks[1]);
  // Memory starts over after a transaction it cannot hold: 100 and 200 come from the backend,
  // 300 from memory.
  EXPECT_EQ(q->memory_stats().from_memory, 1u);
  EXPECT_EQ(q->memory_stats().from_backend, 2u);
}

// Until the writer discards what an earlier writer left open, memory cannot know which
// transactions have chunks in the backend: it holds nothing.
TEST_F(MemoryTailTest, HoldsNothingBeforeTheFirstDiscard) {
  {
    auto q = WorkQueue::Open(Options());
    ASSERT_TRUE(q.ok());
    RecordBatch open;
    open.chunks = {MakeChunk(7, 0, "from the earlier writer")};
    ASSERT_TRUE((*q)->Append(open).ok());
  }
  auto q = WorkQueue::Open(Options());
  ASSERT_TRUE(q.ok());
  auto t = WithMemoryTail(std::move(q).value());
  ASSERT_TRUE(t.ok());
  RecordBatch b;
  b.chunks = {MakeChunk(7, 1, "now")};
  b.commits = {MakeCommit(7, 100)};
  ASSERT_TRUE((*t)->AppendOwned(std::move(b)).ok());
  auto all = ReadAll(t->get());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].chunks.size(), 2u);
  EXPECT_EQ((*t)->memory_stats().from_memory, 0u);
}

TEST_F(MemoryTailTest, TrimmedTransactionsAreNotServedFromMemory) {
  auto q = OpenTail(1 << 20);
  ASSERT_TRUE(q);
  RecordBatch b;
  for (uint32_t i = 1; i <= 5; ++i) AddTxn(&b, i, 100 * i);
  ASSERT_TRUE(q->AppendOwned(std::move(b)).ok());
  ASSERT_TRUE(q->Trim(Lsn(300)).ok());
  auto all = ReadAll(q.get());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].commit.commit_lsn, Lsn(400));
  EXPECT_EQ(all[1].commit.commit_lsn, Lsn(500));
  // A cursor from before the trim point reads the backend up to it, then memory.
  EXPECT_EQ(q->memory_stats().from_backend, 1u);
  EXPECT_EQ(q->memory_stats().from_memory, 1u);
}

// A random stream of batches as the decoder makes them, written by one thread while another reads
// through the tail with a small memory budget, making its cursor again now and then from an
// earlier position; every transaction it got must be the one the backend alone serves after the
// position it read from.
TEST_F(MemoryTailTest, RandomBatchesReadAsTheBackendAloneServesThem) {
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    SCOPED_TRACE(seed);
    TearDown();
    SetUp();
    auto q = OpenTail(seed % 2 ? 4000 : 40000);
    ASSERT_TRUE(q);
    std::mt19937 rng(seed);
    struct Seen {
      Lsn after;
      ReadTxn txn;
    };
    std::vector<Seen> seen;
    std::atomic<bool> done{false};
    Lsn final_lsn;
    std::thread reader([&] {
      std::mt19937 rr(seed * 7);
      auto cursor = std::move(q->ReadFrom(Lsn::Invalid())).value();
      Lsn pos;
      while (true) {
        if (rr() % 50 == 0 && !seen.empty()) {
          // Restart from an earlier position (the target's, after a lost connection).
          pos = seen[rr() % seen.size()].after;
          cursor = std::move(q->ReadFrom(pos)).value();
        }
        auto r = cursor->Next(std::chrono::milliseconds(rr() % 3));
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        if (*r == nullptr) {
          if (done.load() && pos >= final_lsn) return;
          continue;
        }
        Seen s{pos, ReadOne(r->get())};
        pos = s.txn.commit.commit_lsn;
        seen.push_back(std::move(s));
      }
    });
    uint32_t next_xid = 10;
    uint64_t lsn = 0x1000;
    std::map<uint32_t, uint32_t> open;  // spanning transactions: xid -> chunks so far
    for (int batch = 0; batch < 300; ++batch) {
      RecordBatch b;
      int actions = 1 + static_cast<int>(rng() % 6);
      for (int a = 0; a < actions; ++a) {
        const uint32_t kind = rng() % 10;
        if (kind < 6) {  // a transaction whole in this batch
          const uint32_t xid = next_xid++;
          AddTxn(&b, xid, lsn += 0x10, 1 + static_cast<int>(rng() % 4));
        } else if (kind < 8) {  // chunks of a transaction that commits later
          const uint32_t xid = open.empty() || rng() % 2 ? next_xid++ : open.begin()->first;
          b.chunks.push_back(MakeChunk(xid, open[xid]++, std::string(rng() % 300, 'p')));
        } else if (kind == 8 && !open.empty()) {  // a spanning transaction commits
          auto it = open.begin();
          std::advance(it, rng() % open.size());
          b.chunks.push_back(MakeChunk(it->first, it->second++, "last"));
          if (rng() % 3 == 0) {  // a subtransaction of it aborted
            b.chunks.push_back(MakeChunk(it->first, it->second++, "sub", 99999));
            b.aborts.emplace_back(Xid{it->first}, Xid{99999});
          }
          CommitRecord c = MakeCommit(it->first, lsn += 0x10);
          c.chunk_count = it->second;
          b.commits.push_back(c);
          open.erase(it);
        } else if (!open.empty()) {  // a spanning transaction aborts whole
          b.aborts.emplace_back(Xid{open.begin()->first}, Xid{open.begin()->first});
          open.erase(open.begin());
        } else {  // a resent commit (after a reconnect)
          AddTxn(&b, 5, lsn, 1);
        }
      }
      ASSERT_TRUE(q->AppendOwned(std::move(b)).ok());
      if (rng() % 20 == 0) std::this_thread::sleep_for(1ms);
    }
    final_lsn = *q->LastCommitLsn();
    done.store(true);
    reader.join();
    const MemoryTailStats st = q->memory_stats();
    EXPECT_GT(st.from_memory, 100u);
    EXPECT_GT(st.from_backend, 0u);
    q.reset();
    std::vector<ReadTxn> want = BackendAlone();
    ASSERT_GT(want.size(), 300u);
    size_t checked = 0;
    for (const Seen& s : seen) {
      auto it = std::find_if(want.begin(), want.end(),
                             [&](const ReadTxn& t) { return t.commit.commit_lsn > s.after; });
      ASSERT_NE(it, want.end());
      ASSERT_EQ(s.txn.commit, it->commit) << "after " << s.after.ToString();
      ASSERT_EQ(s.txn.chunks, it->chunks) << "after " << s.after.ToString();
      ++checked;
    }
    EXPECT_GE(checked, want.size());
  }
}

}  // namespace
}  // namespace pgbaton::queue

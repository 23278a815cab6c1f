// --stop-at against a queue that grows while the applier is idle (PostgreSQL 17 target, RocksDB
// queue, the applier as a library): a transaction appended after the applier's read came back
// empty, but before it looked at how far the source is, must still be applied before the run
// ends. `run --stop-at` once exited 0 with such a transaction (56 rows) left unapplied.
#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "applier/applier.h"
#include "queue/work_queue.h"
#include "tests/support/pg_test.h"
#include "tests/support/process.h"
#include "tests/support/queue_records.h"

namespace pgbaton::testing {
namespace {

using queue::testing::MakeCommit;
using queue::testing::MakeInsert;
using queue::testing::MakeRelation;

// One transaction of `rows` inserts into relation 1 (public.t1) with ids from `first_id`.
queue::RecordBatch Txn(uint32_t xid, uint64_t lsn, int first_id, int rows) {
  queue::RecordBatch b;
  queue::ChangeChunk chunk;
  chunk.xid = Xid{xid};
  chunk.subxid = Xid{xid};
  for (int i = 0; i < rows; ++i) chunk.changes.push_back(MakeInsert(1, first_id + i, "v"));
  b.chunks.push_back(std::move(chunk));
  queue::CommitRecord c = MakeCommit(xid, lsn);
  c.change_count = static_cast<uint64_t>(rows);
  c.chunk_count = 1;
  b.commits.push_back(std::move(c));
  return b;
}

TEST(StopAtTest, ATransactionAppendedWhileTheApplierLooksAtTheSourceIsApplied) {
  auto target = StartServer(17);
  ASSERT_TRUE(target);
  ASSERT_TRUE(target->Exec("create database app").ok());
  ASSERT_TRUE(target->Exec("create table t1 (id int primary key, v text)", "app").ok());

  std::string dir = MakeTempDir("pgbaton-stop-at");
  queue::QueueOptions qo;
  qo.dir = dir + "/queue";
  auto q = queue::WorkQueue::Open(qo);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  queue::RecordBatch first = Txn(100, 0x1000, 1, 3);
  first.relations.push_back(MakeRelation(1));
  ASSERT_TRUE((*q)->Append(first).ok());

  // The source's position, as `run` reads it from the slot: past --stop-at. On its first call,
  // after the applier has read transaction 100 and found nothing more, the decoder appends
  // transaction 101 (commit 0x2000, inside --stop-at) and confirms it: exactly the race.
  std::atomic<int> calls{0};
  queue::WorkQueue* queue = q->get();
  applier::ApplierOptions options;
  options.target_conninfo = target->Conninfo("app");
  options.name = "stop_at_test";
  options.stop_at = Lsn(0x3000);
  options.idle_wait = std::chrono::milliseconds(50);
  options.source_position = [&]() -> Lsn {
    if (calls.fetch_add(1) == 0) {
      Status st = queue->Append(Txn(101, 0x2000, 10, 56));
      EXPECT_TRUE(st.ok()) << st.ToString();
    }
    return Lsn(0x4000);
  };
  applier::Applier applier(options, queue);
  std::atomic<bool> stop{false};
  Status st = applier.Run(&stop);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_GE(calls.load(), 1) << "the applier never looked at the source: the race was not staged";
  EXPECT_EQ(*target->Query("select count(*) from t1", "app"), "59")
      << "transaction 101 (56 rows, commit 0/2000 <= --stop-at 0/3000) was not applied";
  EXPECT_EQ(applier.stats().transactions, 2u);
  q->reset();
  RemoveTree(dir);
}

}  // namespace
}  // namespace pgbaton::testing

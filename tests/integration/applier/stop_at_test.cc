// The applier at the queue's tail (PostgreSQL 17 target, RocksDB queue, the applier as a library).
// --stop-at against a queue that grows while the applier is idle: a transaction appended after
// the applier's read came back empty, but before it looked at how far the source is, must still
// be applied before the run ends (`run --stop-at` once exited 0 with such a transaction, 56 rows,
// left unapplied). And a steady trickle of transactions: what the applier has read when it
// reaches the tail is committed then, not held open for the group delay (a steady 200 tps once
// kept `migrate`'s replay lag at the 1 s group delay, never under its 1 s caught-up threshold).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

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

TEST(StopAtTest, AtTheTailTheOpenGroupIsCommittedWhileTransactionsKeepComing) {
  auto target = StartServer(17);
  ASSERT_TRUE(target);
  ASSERT_TRUE(target->Exec("create database app").ok());
  ASSERT_TRUE(target->Exec("create table t1 (id int primary key, v text)", "app").ok());
  std::string dir = MakeTempDir("pgbaton-tail");
  queue::QueueOptions qo;
  qo.dir = dir + "/queue";
  auto q = queue::WorkQueue::Open(qo);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  queue::RecordBatch first = Txn(100, 0x1000, 1, 1);
  first.relations.push_back(MakeRelation(1));
  ASSERT_TRUE((*q)->Append(first).ok());

  // A group may stay open for an hour; a transaction arrives every 20 ms, well inside one read's
  // wait, so the queue never reads empty while the trickle lasts.
  applier::ApplierOptions options;
  options.target_conninfo = target->Conninfo("app");
  options.name = "tail_test";
  options.group_max_delay = std::chrono::hours(1);
  options.idle_wait = std::chrono::milliseconds(200);
  applier::Applier applier(options, q->get());
  std::atomic<bool> stop{false};
  Status st;
  std::thread run([&] { st = applier.Run(&stop); });

  std::atomic<bool> trickle{true};
  std::atomic<int> appended{1};
  std::thread writer([&] {
    for (int k = 1; trickle.load() && k < 1000; ++k) {
      Status a = (*q)->Append(Txn(100 + k, 0x1000 + 0x100 * k, 1 + k, 1));
      EXPECT_TRUE(a.ok()) << a.ToString();
      appended.store(k + 1);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  // Rows on the target while the trickle still runs: the open group was committed at the tail.
  bool seen = false;
  for (int i = 0; i < 150 && !seen; ++i) {
    auto n = target->Query("select count(*) from t1", "app");
    seen = n.ok() && *n != "0";
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const int appended_when_seen = appended.load();
  trickle.store(false);
  writer.join();
  // Once the trickle ends the queue reads empty: everything arrives, on any build.
  const std::string all = std::to_string(appended.load());
  std::string rows;
  for (int i = 0; i < 500 && rows != all; ++i) {
    auto n = target->Query("select count(*) from t1", "app");
    rows = n.ok() ? *n : n.status().ToString();
    if (rows != all) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop.store(true);
  run.join();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(seen) << "nothing was committed in 3 s of a steady trickle (" << appended_when_seen
                    << " transactions appended): the group waited for its delay";
  EXPECT_EQ(rows, all);
  q->reset();
  RemoveTree(dir);
}

}  // namespace
}  // namespace pgbaton::testing

// Pause requests (applier/pause.h) against a running applier (PostgreSQL 17 target, RocksDB
// queue, the applier as a library, the requester as `verify --at-lsn` uses it): the applier holds
// at the first step's position, then applies exactly the transactions that commit before the
// pause's LSN and none after, holds there until released, and then applies the rest. A first
// step at a position the applier already passed is answered 'passed'; a request nobody releases
// is given up after pause_max and the applier goes on.
#include "applier/pause.h"

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

// Transaction k: one insert of id k into public.t1, committing at 0x1000 + 0x100 * (k - 1).
queue::RecordBatch Txn(int k) {
  queue::RecordBatch b;
  queue::ChangeChunk chunk;
  chunk.xid = Xid{static_cast<uint32_t>(100 + k)};
  chunk.subxid = chunk.xid;
  chunk.changes.push_back(MakeInsert(1, k, "v"));
  b.chunks.push_back(std::move(chunk));
  queue::CommitRecord c = MakeCommit(100 + k, 0x1000 + 0x100 * (k - 1));
  c.change_count = 1;
  c.chunk_count = 1;
  b.commits.push_back(std::move(c));
  if (k == 1) b.relations.push_back(MakeRelation(1));
  return b;
}

class PauseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    target_ = StartServer(17);
    ASSERT_TRUE(target_);
    ASSERT_TRUE(target_->Exec("create database app").ok());
    ASSERT_TRUE(target_->Exec("create table t1 (id int primary key, v text)", "app").ok());
    dir_ = MakeTempDir("pgbaton-pause");
    queue::QueueOptions qo;
    qo.dir = dir_ + "/queue";
    auto q = queue::WorkQueue::Open(qo);
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    q_ = std::move(*q);
  }
  void TearDown() override {
    stop_.store(true);
    if (run_.joinable()) run_.join();
    q_.reset();
    RemoveTree(dir_);
  }

  void Append(int first, int last) {
    for (int k = first; k <= last; ++k) ASSERT_TRUE(q_->Append(Txn(k)).ok());
  }
  void StartApplier(std::chrono::milliseconds pause_max) {
    applier::ApplierOptions o;
    o.target_conninfo = target_->Conninfo("app");
    o.name = "pause_test";
    o.idle_wait = std::chrono::milliseconds(50);
    o.pause_max = pause_max;
    // The source is far ahead: everything it will send is in the queue when the queue reads
    // empty.
    o.source_position = [] { return Lsn(0x100000); };
    applier_ = std::make_unique<applier::Applier>(o, q_.get());
    run_ = std::thread([this] { status_ = applier_->Run(&stop_); });
  }
  std::string Rows() { return *target_->Query("select count(*) from t1", "app"); }
  // Waits up to 30 s for `n` rows.
  bool WaitRows(const std::string& n) {
    for (int i = 0; i < 1500 && Rows() != n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return Rows() == n;
  }

  std::unique_ptr<PgServer> target_;
  std::string dir_;
  std::unique_ptr<queue::WorkQueue> q_;
  std::unique_ptr<applier::Applier> applier_;
  std::atomic<bool> stop_{false};
  std::thread run_;
  Status status_;
};

TEST_F(PauseTest, HoldsThenAppliesExactlyWhatCommitsBeforeTheLsnUntilReleased) {
  Append(1, 3);
  StartApplier(std::chrono::minutes(5));
  ASSERT_TRUE(WaitRows("3"));
  auto req = applier::PauseRequester::Open(target_->Conninfo("app"), "pause_test",
                                           std::chrono::minutes(5));
  ASSERT_TRUE(req.ok()) << req.status().ToString();

  // Step 1 at 0/1300: transaction 4 commits there, so from 4 on nothing is applied.
  auto holding = req->Hold(Lsn(0x1300), std::chrono::seconds(30));
  ASSERT_TRUE(holding.ok()) << holding.status().ToString();
  ASSERT_TRUE(*holding);
  Append(4, 10);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(Rows(), "3") << "applied at or past the first step's position";

  // Step 2 before 0/1550: transactions 4, 5, 6 (0/1300, 0/1400, 0/1500) and not 7 (0/1600).
  auto applied = req->PauseBefore(Lsn(0x1550), std::chrono::seconds(30));
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(applied->ToString(), Lsn(0x1500).ToString());
  EXPECT_EQ(Rows(), "6");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(Rows(), "6") << "applied past the pause while it held";
  EXPECT_EQ(*target_->Query("select max(id) from t1", "app"), "6");

  ASSERT_TRUE(req->Release().ok());
  EXPECT_TRUE(WaitRows("10")) << Rows();

  // A first step at a position already applied cannot be held: 'passed', ask again.
  auto passed = req->Hold(Lsn(0x1000), std::chrono::seconds(30));
  ASSERT_TRUE(passed.ok()) << passed.status().ToString();
  EXPECT_FALSE(*passed);
  ASSERT_TRUE(req->Release().ok());
  Append(11, 11);
  EXPECT_TRUE(WaitRows("11")) << "a 'passed' request still held the applier";
  stop_.store(true);
  run_.join();
  EXPECT_TRUE(status_.ok()) << status_.ToString();
}

TEST_F(PauseTest, ARequestNobodyReleasesIsGivenUpAfterPauseMax) {
  Append(1, 2);
  StartApplier(std::chrono::seconds(2));
  ASSERT_TRUE(WaitRows("2"));
  auto req = applier::PauseRequester::Open(target_->Conninfo("app"), "pause_test",
                                           std::chrono::seconds(2));
  ASSERT_TRUE(req.ok()) << req.status().ToString();
  auto holding = req->Hold(Lsn(0x1200), std::chrono::seconds(30));
  ASSERT_TRUE(holding.ok() && *holding);
  Append(3, 4);
  EXPECT_TRUE(WaitRows("4")) << "the applier still holds after pause_max";
  auto late = req->PauseBefore(Lsn(0x1300), std::chrono::seconds(5));
  EXPECT_FALSE(late.ok());
  EXPECT_EQ(late.status().code(), ErrorCode::kApplierNotRunning) << late.status().ToString();
}

}  // namespace
}  // namespace pgbaton::testing

// `pgbaton apply` against a real target (PostgreSQL 17) from a real RocksDB queue. The records
// come from statements run for real on a source database (sql_workload.h), so source and target
// can be compared row for row: serial and parallel apply, conflict-heavy workloads, kill -9 of
// the applier and of the target server, conflicts, and per-table sync LSNs.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <thread>

#include "queue/work_queue.h"
#include "tests/integration/applier/sql_workload.h"
#include "tests/support/pg_server.h"
#include "tests/support/pg_test.h"
#include "tests/support/process.h"

namespace pgbaton::testing {
namespace {

class ApplyQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = StartServer(17);
    ASSERT_TRUE(server_);
    for (const char* db : {"src", "dst1", "dst2"}) {
      ASSERT_TRUE(server_->Exec(fmt::format("create database {}", db)).ok());
      Status st = server_->Exec(WorkloadSchema(), db);
      ASSERT_TRUE(st.ok()) << st.ToString();
    }
    auto c = server_->Connect("src");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    source_ = std::move(*c);
    queue_dir_ = MakeTempDir("pgbaton-applier-queue");
    queue_dir2_ = MakeTempDir("pgbaton-applier-queue2");
  }
  void TearDown() override {
    RemoveTree(queue_dir_);
    RemoveTree(queue_dir2_);
  }

  // Appends `batch` to the queue(s) at `dirs`.
  void Append(const queue::RecordBatch& batch, std::vector<std::string> dirs = {}) {
    if (dirs.empty()) dirs = {queue_dir_};
    for (const auto& d : dirs) {
      queue::QueueOptions o;
      o.dir = d;
      o.migration_name = d == queue_dir_ ? "m_dst1" : "m_dst2";
      auto q = queue::WorkQueue::Open(o);
      ASSERT_TRUE(q.ok()) << q.status().ToString();
      Status s = (*q)->Append(batch);
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
  }
  void PutMeta(const std::string& key, const std::string& value) {
    queue::QueueOptions o;
    o.dir = queue_dir_;
    o.migration_name = "m_dst1";
    auto q = queue::WorkQueue::Open(o);
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    ASSERT_TRUE((*q)->PutMeta(key, value).ok());
  }

  std::vector<std::string> ApplyArgs(const std::string& db, const std::string& dir,
                                     std::vector<std::string> extra) {
    // Replication origins are cluster-wide: one migration name per target database.
    std::vector<std::string> args = {PgbatonBinary(), "--name",   "m_" + db,
                                     "apply",         "--target", server_->Conninfo(db),
                                     "--queue-dir",   dir};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  CommandResult Apply(const std::string& db, const std::string& dir,
                      std::vector<std::string> extra) {
    return RunCommand(ApplyArgs(db, dir, std::move(extra)));
  }

  std::string Digest(const std::string& db) {
    auto c = server_->Connect(db);
    EXPECT_TRUE(c.ok());
    if (!c.ok()) return "";
    auto d = TablesDigest(*c, WorkloadTables());
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.ok() ? *d : "";
  }
  std::string Position(const std::string& db) {
    auto p =
        server_->Query(fmt::format("select max(pg_replication_origin_progress(roname, false)) from "
                                   "pg_replication_origin where roname ~ '^m_{}(-[0-9]+)?$'",
                                   db),
                       db);
    // A failed query is a test failure, never a position (it would look like "behind").
    EXPECT_TRUE(p.ok()) << "position on " << db << ": " << p.status().ToString();
    return p.ok() ? *p : "error: " + p.status().ToString();
  }

  std::unique_ptr<PgServer> server_;
  PgConn source_;
  std::string queue_dir_, queue_dir2_;
};

TEST_F(ApplyQueueTest, SerialAndParallelApplyMatchTheSource) {
  SqlWorkload w(&source_, 7);
  auto a = w.Run(250, /*conflict_heavy=*/false);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  Append(*a, {queue_dir_, queue_dir2_});
  auto t = w.Truncate("t_full", 0);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  Append(*t, {queue_dir_, queue_dir2_});
  auto b = w.Run(250, false);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  Append(*b, {queue_dir_, queue_dir2_});
  std::string stop = w.last_lsn().ToString();

  CommandResult serial = Apply("dst1", queue_dir_, {"--stop-at", stop, "--group-rows", "100"});
  ASSERT_EQ(serial.exit_code, 0) << serial.output;
  CommandResult parallel =
      Apply("dst2", queue_dir2_, {"--stop-at", stop, "--apply-jobs", "4", "--group-rows", "40"});
  ASSERT_EQ(parallel.exit_code, 0) << parallel.output;

  std::string want = Digest("src");
  EXPECT_EQ(Digest("dst1"), want);
  EXPECT_EQ(Digest("dst2"), want) << parallel.output;
  EXPECT_EQ(Position("dst1"), stop);
  EXPECT_EQ(Position("dst2"), stop);
  // The TOASTed column really was left alone by updates that did not change it.
  EXPECT_NE(*server_->Query("select count(*) from t_default where big is not null", "dst1"), "0");

  // Running again applies nothing twice.
  CommandResult again = Apply("dst1", queue_dir_, {"--stop-at", stop});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(Digest("dst1"), want);
}

TEST_F(ApplyQueueTest, ParallelApplyOfConflictHeavyWorkloadEqualsSerial) {
  SqlWorkload w(&source_, 11);
  auto a = w.Run(600, /*conflict_heavy=*/true);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  Append(*a, {queue_dir_, queue_dir2_});
  std::string stop = w.last_lsn().ToString();
  // Small groups so that many groups are in flight at once on four connections.
  CommandResult serial = Apply("dst1", queue_dir_, {"--stop-at", stop, "--group-rows", "10"});
  ASSERT_EQ(serial.exit_code, 0) << serial.output;
  CommandResult parallel =
      Apply("dst2", queue_dir2_,
            {"--stop-at", stop, "--apply-jobs", "4", "--group-rows", "5", "--copy-min-rows", "2",
             // transactions of more than 3 changes stream alone
             "--big-txn-changes", "3"});
  ASSERT_EQ(parallel.exit_code, 0) << parallel.output;
  std::string want = Digest("src");
  EXPECT_EQ(Digest("dst1"), want);
  EXPECT_EQ(Digest("dst2"), want);
}

TEST_F(ApplyQueueTest, KillNineOfApplierAndTargetLosesAndDuplicatesNothing) {
  SqlWorkload w(&source_, 23);
  auto a = w.Run(1500, false);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  Append(*a);
  std::string stop = w.last_lsn().ToString();
  std::mt19937 rng(99);
  std::vector<std::string> args = ApplyArgs(
      "dst1", queue_dir_,
      {"--stop-at", stop, "--apply-jobs", "3", "--group-rows", "20", "--group-delay-ms", "20"});
  int mid_kills = 0;  // kills of a running applier short of the end
  for (int round = 0; round < 4; ++round) {
    ProcessOptions po;
    po.stdout_path = queue_dir_ + "/../apply-" + std::to_string(round) + ".log";
    ChildProcess p(args, po);
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 400));
    if (round == 2) {
      // The target crashes under load; the applier reconnects by itself once it is back.
      server_->Kill();
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      ASSERT_TRUE(server_->StartAgain().ok()) << server_->LogTail();
      std::this_thread::sleep_for(std::chrono::milliseconds(400 + rng() % 300));
    }
    // Mid-stream means: the applier was still running when killed, and the target's position
    // (a valid LSN, or none yet) was short of the end.
    const bool was_running = p.running();
    p.Signal(SIGKILL);
    p.Wait(10000);
    std::string pos = Position("dst1");
    ASSERT_EQ(pos.rfind("error", 0), std::string::npos) << pos;
    auto parsed = Lsn::Parse(pos);
    ASSERT_TRUE(pos.empty() || parsed.ok()) << "not an LSN: " << pos;
    if (was_running && (pos.empty() || *parsed < w.last_lsn())) ++mid_kills;
  }
  CommandResult last = RunCommand(args);
  ASSERT_EQ(last.exit_code, 0) << last.output;
  EXPECT_EQ(Digest("dst1"), Digest("src"));
  EXPECT_EQ(Position("dst1"), stop);
  std::printf("[apply] kills of a running applier short of the end: %d of 4\n", mid_kills);
  EXPECT_GT(mid_kills, 0)
      << "every kill came after the applier had finished; the test proved nothing";
}

TEST_F(ApplyQueueTest, ConflictStopsWithTheRelationKeyAndLsnAndAppliesNothingAfter) {
  SqlWorkload w(&source_, 5);
  auto a = w.Run(150, false);
  ASSERT_TRUE(a.ok());
  Append(*a);
  std::string first_stop = w.last_lsn().ToString();
  CommandResult r1 = Apply("dst1", queue_dir_, {"--stop-at", first_stop});
  ASSERT_EQ(r1.exit_code, 0) << r1.output;
  // The target diverges: its t_default rows vanish.
  ASSERT_TRUE(server_->Exec("delete from t_default", "dst1").ok());
  auto b = w.Run(150, false);
  ASSERT_TRUE(b.ok());
  Append(*b);
  std::string stop = w.last_lsn().ToString();
  CommandResult r2 = Apply("dst1", queue_dir_, {"--stop-at", stop});
  EXPECT_EQ(r2.exit_code, static_cast<int>(ErrorCode::kApplyConflict)) << r2.output;
  EXPECT_NE(r2.output.find("apply conflict on relation \"public.t_default\""), std::string::npos)
      << r2.output;
  EXPECT_NE(r2.output.find("at commit LSN"), std::string::npos) << r2.output;
  EXPECT_NE(r2.output.find("(id)=("), std::string::npos) << r2.output;
  EXPECT_NE(r2.output.find("hint:"), std::string::npos) << r2.output;
  // Nothing at or after the conflicting transaction was applied.
  std::string pos = Position("dst1");
  auto conflict_at = r2.output.find("at commit LSN ");
  ASSERT_NE(conflict_at, std::string::npos);
  std::string lsn_text = r2.output.substr(conflict_at + 14);
  lsn_text = lsn_text.substr(0, lsn_text.find(':'));
  auto conflict_lsn = Lsn::Parse(lsn_text);
  auto applied = Lsn::Parse(pos);
  ASSERT_TRUE(conflict_lsn.ok() && applied.ok()) << lsn_text << " " << pos;
  EXPECT_LT(*applied, *conflict_lsn);

  // --on-conflict skip logs and goes on to the end.
  CommandResult r3 = Apply("dst1", queue_dir_, {"--stop-at", stop, "--on-conflict", "skip"});
  EXPECT_EQ(r3.exit_code, 0) << r3.output;
  EXPECT_NE(r3.output.find("skipped a conflicting change"), std::string::npos);
  EXPECT_EQ(Position("dst1"), stop);
}

TEST_F(ApplyQueueTest, ChangesCoveredByATablesSyncLsnAreNotApplied) {
  SqlWorkload w(&source_, 3);
  auto a = w.Run(200, false);
  ASSERT_TRUE(a.ok());
  Append(*a);
  Lsn sync = w.last_lsn();
  // t_gen is "copied" at `sync`: its rows go to the target directly, and the queue says so.
  auto rows = source_.Exec("select id, a from t_gen");
  ASSERT_TRUE(rows.ok());
  for (int i = 0; i < rows->rows(); ++i) {
    ASSERT_TRUE(
        server_
            ->Exec(fmt::format("insert into t_gen (id, a) values ({}, {})", rows->GetString(i, 0),
                               rows->IsNull(i, 1) ? "null" : rows->GetString(i, 1)),
                   "dst1")
            .ok());
  }
  ASSERT_GT(rows->rows(), 0);
  PutMeta("sync_lsn/public.t_gen", sync.ToString());
  auto b = w.Run(200, false);
  ASSERT_TRUE(b.ok());
  Append(*b);
  std::string stop = w.last_lsn().ToString();
  CommandResult r = Apply("dst1", queue_dir_, {"--stop-at", stop});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Digest("dst1"), Digest("src"));
}

TEST_F(ApplyQueueTest, ProgressMovesPastTransactionsThatAreEmptyOnTheTarget) {
  SqlWorkload w(&source_, 13);
  auto a = w.Run(30, false);
  ASSERT_TRUE(a.ok());
  Append(*a);
  std::string stop = w.last_lsn().ToString();
  // Every table was "copied" after all of it: every change is filtered out.
  for (const auto& t : WorkloadTables()) PutMeta("sync_lsn/public." + t, stop);
  CommandResult r = Apply("dst1", queue_dir_, {"--stop-at", stop});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(*server_->Query("select count(*) from t_default", "dst1"), "0");
  // The origin still records that the target holds everything up to `stop`.
  EXPECT_EQ(Position("dst1"), stop);
}

}  // namespace
}  // namespace pgbaton::testing

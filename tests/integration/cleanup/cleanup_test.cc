// `pgbaton cleanup` against a real PostgreSQL 15 source and 17 target and a real RocksDB queue:
// everything of the migration goes, nothing of another migration does, a second run is a no-op
// that exits 0, and nothing is dropped while a slot is streamed (pg_recvlogical) or the queue
// is open for writing.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "queue/work_queue.h"
#include "tests/support/pg_server.h"
#include "tests/support/pg_test.h"
#include "tests/support/process.h"

namespace pgbaton::testing {
namespace {

namespace fs = std::filesystem;
using queue::QueueOptions;
using queue::WorkQueue;

class CleanupTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    source_ = StartServer(15).release();
    target_ = StartServer(17).release();
    ASSERT_TRUE(source_ && target_);
    ASSERT_TRUE(source_->Exec("CREATE TABLE t (id int PRIMARY KEY)").ok());
  }
  static void TearDownTestSuite() {
    delete source_;
    delete target_;
    source_ = target_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(source_, nullptr);
    ASSERT_NE(target_, nullptr);
    dir_ = MakeTempDir("pgbaton-cleanup");
  }
  void TearDown() override { RemoveTree(dir_); }

  // Creates what a migration called `name` leaves: slot, publication, origins, progress rows.
  void MakeMigration(const std::string& name) {
    // Two statements: a slot cannot be created in a transaction that has written.
    Status s = source_->Exec(fmt::format("CREATE PUBLICATION \"{}\" FOR TABLE t", name));
    ASSERT_TRUE(s.ok()) << s.ToString();
    s = source_->Exec(
        fmt::format("SELECT pg_create_logical_replication_slot('{}', 'pgoutput')", name));
    ASSERT_TRUE(s.ok()) << s.ToString();
    // The table cutover writes its sentinel to, on both sides and in the publication.
    for (PgServer* srv : {source_, target_}) {
      s = srv->Exec(
          "CREATE SCHEMA IF NOT EXISTS pgbaton; CREATE TABLE IF NOT EXISTS "
          "pgbaton.cutover_sentinel (id text PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())");
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
    s = source_->Exec(
        fmt::format("ALTER PUBLICATION \"{}\" ADD TABLE pgbaton.cutover_sentinel", name));
    ASSERT_TRUE(s.ok()) << s.ToString();
    s = target_->Exec(fmt::format(
        "SELECT pg_replication_origin_create('{0}'); SELECT pg_replication_origin_create('{0}-1'); "
        "CREATE SCHEMA IF NOT EXISTS pgbaton; CREATE TABLE IF NOT EXISTS pgbaton.progress "
        "(name text PRIMARY KEY, lsn pg_lsn NOT NULL, commit_time timestamptz, "
        "updated_at timestamptz NOT NULL DEFAULT now()); "
        "INSERT INTO pgbaton.progress (name, lsn) VALUES ('{0}', '0/10'), ('{0}-1', '0/20')",
        name));
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  // A real queue directory written by the RocksDB backend.
  std::string MakeQueue(const std::string& name) {
    QueueOptions qo;
    qo.dir = dir_ + "/queue-" + name;
    qo.migration_name = name;
    auto q = WorkQueue::Open(qo);
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    return qo.dir;
  }

  CommandResult Cleanup(const std::string& name, const std::string& queue_dir) {
    return RunCommand({PgbatonBinary(), "--name", name, "cleanup", "--source", source_->Conninfo(),
                       "--target", target_->Conninfo(), "--queue-dir", queue_dir});
  }

  std::string Count(PgServer* s, const std::string& sql) {
    auto r = s->Query(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : "?";
  }

  // What migration `name` holds: "slots S, publications P, origins O" (on the source its slot
  // and publication, on the target its replication origins "name" and "name-N").
  std::string Objects(const std::string& name) {
    return "slots " +
           Count(source_,
                 "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" + name + "'") +
           ", publications " +
           Count(source_, "SELECT count(*) FROM pg_publication WHERE pubname = '" + name + "'") +
           ", origins " +
           Count(target_,
                 "SELECT count(*) FROM pg_replication_origin WHERE roname LIKE '" + name + "%'");
  }

  static PgServer* source_;
  static PgServer* target_;
  std::string dir_;
};

PgServer* CleanupTest::source_ = nullptr;
PgServer* CleanupTest::target_ = nullptr;

TEST_F(CleanupTest, DropsEverythingOnceAndIsIdempotent) {
  MakeMigration("mig_a");
  MakeMigration("other");  // another migration side by side: must survive
  std::string queue = MakeQueue("mig_a");
  ASSERT_TRUE(fs::exists(queue + "/CURRENT"));

  CommandResult first = Cleanup("mig_a", queue);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("slot \"mig_a\" on source: dropped"), std::string::npos)
      << first.output;
  EXPECT_NE(first.output.find("publication \"mig_a\" on source: dropped"), std::string::npos);
  EXPECT_NE(first.output.find("replication origins \"mig_a\", \"mig_a-1\" on target: dropped"),
            std::string::npos)
      << first.output;
  EXPECT_NE(first.output.find("(table kept: 2 other migrations use it)"), std::string::npos)
      << first.output;
  EXPECT_NE(first.output.find("queue \"" + queue + "\": removed"), std::string::npos);
  EXPECT_NE(first.output.find("table pgbaton.cutover_sentinel on source: kept"), std::string::npos)
      << first.output;
  EXPECT_NE(first.output.find("table pgbaton.cutover_sentinel on target: kept"), std::string::npos)
      << first.output;

  EXPECT_EQ(Objects("mig_a"), "slots 0, publications 0, origins 0");
  EXPECT_EQ(Count(target_, "SELECT count(*) FROM pgbaton.progress WHERE name LIKE 'mig_a%'"), "0");
  EXPECT_FALSE(fs::exists(queue));
  // The other migration is untouched.
  EXPECT_EQ(Objects("other"), "slots 1, publications 1, origins 2");
  EXPECT_EQ(Count(target_, "SELECT count(*) FROM pgbaton.progress WHERE name LIKE 'other%'"), "2");

  CommandResult second = Cleanup("mig_a", queue);
  EXPECT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("slot \"mig_a\" on source: already gone"), std::string::npos)
      << second.output;
  EXPECT_NE(second.output.find("publication \"mig_a\" on source: already gone"), std::string::npos);
  EXPECT_NE(second.output.find("replication origin \"mig_a\" on target: already gone"),
            std::string::npos);
  EXPECT_NE(second.output.find("queue \"" + queue + "\": already gone"), std::string::npos);

  // The last migration's cleanup also drops the progress table and the schema.
  CommandResult last = Cleanup("other", dir_ + "/queue-other");
  EXPECT_EQ(last.exit_code, 0) << last.output;
  EXPECT_NE(last.output.find("pgbaton.progress on target: deleted; table dropped; schema pgbaton "
                             "kept"),
            std::string::npos)
      << last.output;
  EXPECT_NE(last.output.find("table pgbaton.cutover_sentinel on source: dropped; schema pgbaton "
                             "dropped"),
            std::string::npos)
      << last.output;
  EXPECT_NE(last.output.find("table pgbaton.cutover_sentinel on target: dropped; schema pgbaton "
                             "dropped"),
            std::string::npos)
      << last.output;
  EXPECT_EQ(Count(source_, "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgbaton'"), "0");
  EXPECT_EQ(Count(target_, "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgbaton'"), "0");
}

TEST_F(CleanupTest, RefusesAnActiveSlotAndDropsNothing) {
  MakeMigration("busy");
  // pg_recvlogical streams from the slot, so it is active in that walsender.
  ChildProcess recv({"pg_recvlogical", "-d", source_->Conninfo(), "--slot", "busy", "--start", "-o",
                     "proto_version=1", "-o", "publication_names=busy", "-f", "/dev/null"},
                    {});
  std::string active = "f";
  for (int i = 0; i < 100 && active != "t"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    active = Count(source_, "SELECT active FROM pg_replication_slots WHERE slot_name = 'busy'");
  }
  ASSERT_EQ(active, "t") << "pg_recvlogical never made the slot active";

  std::string queue = MakeQueue("busy");
  CommandResult r = Cleanup("busy", queue);
  EXPECT_EQ(r.exit_code, 22) << r.output;
  EXPECT_NE(r.output.find("slot \"busy\" on source is active in process"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("hint:"), std::string::npos);
  EXPECT_EQ(Objects("busy"), "slots 1, publications 1, origins 2");
  EXPECT_TRUE(fs::exists(queue + "/CURRENT"));

  // Once the stream stops, cleanup goes through.
  recv.Signal(SIGTERM);
  recv.Wait(10000);
  CommandResult after;
  for (int i = 0; i < 50; ++i) {  // the walsender may take a moment to release the slot
    after = Cleanup("busy", queue);
    if (after.exit_code != 22) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(after.exit_code, 0) << after.output;
  EXPECT_FALSE(fs::exists(queue));
}

TEST_F(CleanupTest, RefusesAQueueInUseOrADirectoryThatIsNoQueue) {
  // A directory that is not a queue is never removed.
  std::string not_queue = dir_ + "/photos";
  fs::create_directories(not_queue);
  WriteFile(not_queue + "/holiday.jpg", "x");
  CommandResult r = RunCommand({PgbatonBinary(), "cleanup", "--queue-dir", not_queue});
  EXPECT_EQ(r.exit_code, 44) << r.output;
  EXPECT_NE(r.output.find("does not look like a pgbaton queue"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(not_queue + "/holiday.jpg"));

  // A queue held open by a writer is refused.
  QueueOptions qo;
  qo.dir = dir_ + "/queue-open";
  auto q = WorkQueue::Open(qo);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  CommandResult locked = RunCommand({PgbatonBinary(), "cleanup", "--queue-dir", qo.dir});
  EXPECT_EQ(locked.exit_code, 42) << locked.output;
  EXPECT_NE(locked.output.find("is in use by a writer"), std::string::npos) << locked.output;
  EXPECT_TRUE(fs::exists(qo.dir + "/CURRENT"));
  q->reset();
  CommandResult freed = RunCommand({PgbatonBinary(), "cleanup", "--queue-dir", qo.dir});
  EXPECT_EQ(freed.exit_code, 0) << freed.output;
  EXPECT_FALSE(fs::exists(qo.dir));
}

// After a read-only fence (cutover --fence readonly sets the old database's
// default_transaction_read_only) cleanup's own statements still run: it used to drop the slot and
// then fail on DROP PUBLICATION in a read-only transaction (exit 34), half done.
TEST_F(CleanupTest, FinishesAfterAReadOnlyFence) {
  MakeMigration("fenced");
  std::string queue = MakeQueue("fenced");
  ASSERT_TRUE(source_->Exec("ALTER DATABASE postgres SET default_transaction_read_only = on").ok());
  // New sessions default to read-only now, as after the fence.
  EXPECT_EQ(Count(source_, "SHOW default_transaction_read_only"), "on");

  CommandResult r = Cleanup("fenced", queue);
  // Lift the fence before any assertion can end the test: the servers are shared.
  Status lifted = source_->Exec(
      "BEGIN READ WRITE; ALTER DATABASE postgres RESET default_transaction_read_only; COMMIT");
  ASSERT_TRUE(lifted.ok()) << lifted.ToString();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("publication \"fenced\" on source: dropped"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("slot \"fenced\" on source: dropped"), std::string::npos) << r.output;
  EXPECT_EQ(Objects("fenced"), "slots 0, publications 0, origins 0");
  EXPECT_FALSE(fs::exists(queue));
  // The fence itself is the cutover's business: cleanup did not lift it.
}

// A step that fails leaves what is left for the next cleanup, and says so: here the target's
// origin is held by a session, so the source side is done and the target side is refused with a
// hint; once the session ends, the same command finishes.
TEST_F(CleanupTest, AFailedStepIsFinishedByTheNextCleanup) {
  MakeMigration("half");
  std::string queue = MakeQueue("half");
  auto holder = target_->Connect();
  ASSERT_TRUE(holder.ok()) << holder.status().ToString();
  ASSERT_TRUE(holder->Run("SELECT pg_replication_origin_session_setup('half')").ok());

  CommandResult r = Cleanup("half", queue);
  EXPECT_EQ(r.exit_code, 22) << r.output;
  EXPECT_NE(r.output.find("run the same cleanup again"), std::string::npos) << r.output;
  EXPECT_EQ(Count(source_, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'half'"),
            "0");
  EXPECT_TRUE(fs::exists(queue + "/CURRENT"));  // the queue goes last

  *holder = PgConn();  // ends the session holding the origin
  CommandResult again;
  for (int i = 0; i < 50; ++i) {  // the backend may take a moment to exit and release it
    again = Cleanup("half", queue);
    if (again.exit_code != 22) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("slot \"half\" on source: already gone"), std::string::npos)
      << again.output;
  EXPECT_EQ(Count(target_, "SELECT count(*) FROM pg_replication_origin WHERE roname LIKE 'half%'"),
            "0");
  EXPECT_FALSE(fs::exists(queue));
}

}  // namespace
}  // namespace pgbaton::testing

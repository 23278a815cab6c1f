// Operator mistakes that used to lose or duplicate changes with no error (issue 21), each against
// real servers: a stale queue directory (target database re-created; brand-new source cluster),
// `run` pointed at another database of the target cluster, --target equal to --source, the queue
// directory deleted while `run` is stopped, the slot dropped (and re-created) mid-migration, and a
// second `run` on a slot that is streaming elsewhere. Each is refused with its exit code, a message
// naming the object and a hint; source and target are compared before and after (rows, slots,
// origin positions) and must be unchanged; then the right command continues to a target that is
// identical to the source row for row.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/error_code.h"
#include "tests/support/pg_server.h"
#include "tests/support/pg_test.h"
#include "tests/support/process.h"

namespace pgbaton::testing::mistakes {
namespace {

constexpr const char* kSchema =
    "create table accounts (id int primary key, balance int not null, owner text); "
    "create table events (id bigserial primary key, account int, note text)";

// The source database "app" with its tables and rows.
void CreateSource(PgServer* s) {
  ASSERT_TRUE(s->Exec("create database app").ok());
  ASSERT_TRUE(s->Exec(kSchema, "app").ok());
  ASSERT_TRUE(s->Exec("insert into accounts select g, g * 10, 'o' || g from "
                      "generate_series(1, 500) g; insert into events (account, note) select "
                      "g % 500 + 1, 'e' || g from generate_series(1, 2000) g",
                      "app")
                  .ok());
}

// Updates, inserts and deletes on the source: round `r` differs from every other round.
void Write(PgServer* s, int r) {
  ASSERT_TRUE(
      s->Exec(fmt::format("update accounts set balance = balance + {0} where id % 7 = {1}; "
                          "insert into events (account, note) select g, 'w{0}' from "
                          "generate_series(1, 50) g; delete from events where id % 97 = {1}",
                          r, r % 7),
              "app")
          .ok());
}

// Rows of both tables ("none" when the database has none of them): equal means equal contents.
std::string Rows(PgServer* s, const std::string& db) {
  auto has = s->Query("select to_regclass('public.accounts') is not null", db);
  if (!has.ok()) return "error: " + has.status().ToString();
  if (*has != "t") return "none";
  return TablesDigest(*s, db, {"accounts", "events"});
}

// What a refused command must not change on the source: rows, slots and their positions.
std::string SourceState(PgServer* s, bool with_positions = true) {
  auto slots = s->Query(
      with_positions ? "select coalesce(string_agg(slot_name || '@' || coalesce("
                       "confirmed_flush_lsn::text, '-'), ',' order by slot_name), 'no slots') "
                       "from pg_replication_slots"
                     : "select count(*) || ' slots' from pg_replication_slots");
  return Rows(s, "app") + " | " + (slots.ok() ? *slots : slots.status().ToString());
}

// ... on the target: rows of `db` and the replication origins' positions.
std::string TargetState(PgServer* s, const std::string& db) {
  auto origins = s->Query(
      "select coalesce(string_agg(external_id || '@' || remote_lsn::text, ',' order by "
      "external_id), 'no origins') from pg_replication_origin_status");
  return Rows(s, db) + " | " + (origins.ok() ? *origins : origins.status().ToString());
}

std::vector<std::string> Copy(PgServer* src, PgServer* dst, const std::string& dst_db,
                              const std::string& queue) {
  return {PgbatonBinary(),       "copy",        "--source", src->Conninfo("app"), "--target",
          dst->Conninfo(dst_db), "--queue-dir", queue,      "--progress",         "json"};
}
std::vector<std::string> RunArgs(PgServer* src, const std::string& target_conninfo,
                                 const std::string& queue) {
  return {PgbatonBinary(), "run",           "--source",    src->Conninfo("app"),
          "--target",      target_conninfo, "--queue-dir", queue};
}

void ExpectRefused(const CommandResult& r, ErrorCode code, const std::string& phrase) {
  EXPECT_EQ(r.exit_code, ExitCodeOf(code)) << r.output;
  EXPECT_NE(r.output.find(phrase), std::string::npos) << "want \"" << phrase << "\" in\n"
                                                      << r.output;
  EXPECT_NE(r.output.find("hint:"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("created slot"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("password"), std::string::npos) << r.output;
}

bool Exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

// Start over after a mistake that lost changes: cleanup, an empty target database, copy, run.
void StartOver(PgServer* src, PgServer* dst, const std::string& queue) {
  CommandResult c = RunCommand({PgbatonBinary(), "cleanup", "--source", src->Conninfo("app"),
                                "--target", dst->Conninfo("app"), "--queue-dir", queue});
  ASSERT_EQ(c.exit_code, 0) << c.output;
  ASSERT_TRUE(dst->Exec("drop database app").ok());
  ASSERT_TRUE(dst->Exec("create database app").ok());
  CommandResult copy = RunCommand(Copy(src, dst, "app", queue));
  ASSERT_EQ(copy.exit_code, 0) << copy.output;
}

void ExpectCaughtUp(PgServer* src, PgServer* dst, const std::string& dst_db,
                    const std::string& queue) {
  Write(src, 40);
  CommandResult r = RunCommand(StopAtNow(RunArgs(src, dst->Conninfo(dst_db), queue), *src));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Rows(dst, dst_db), Rows(src, "app"));
  EXPECT_NE(Rows(src, "app"), "none");
}

// Each test's migration: the source with database "app" (CreateSource), the target with the
// empty database db_, and a temporary directory that holds the queue.
class MistakesTest : public ::testing::Test {
 protected:
  // Starts PostgreSQL `source_major` and `target_major`, fills the source and creates `target_db`
  // on the target and the directory (named after `tag`). Call it in ASSERT_NO_FATAL_FAILURE.
  void Start(int source_major, int target_major, const std::string& tag,
             const std::string& target_db = "app") {
    source_server_ = StartServer(source_major);
    target_server_ = StartServer(target_major);
    ASSERT_TRUE(source_server_ && target_server_);
    source_ = source_server_.get();
    target_ = target_server_.get();
    ASSERT_NO_FATAL_FAILURE(CreateSource(source_));
    db_ = target_db;
    ASSERT_TRUE(target_->Exec("create database " + db_).ok());
    dir_ = MakeTempDir("pgbaton-mistake-" + tag);
    queue_ = dir_ + "/queue";
  }
  // pgbaton copy into db_, which must succeed.
  void CopyOk() const {
    CommandResult copy = RunCommand(Copy(source_, target_, db_, queue_));
    ASSERT_EQ(copy.exit_code, 0) << copy.output;
  }
  // Write round `r` on the source, then `run --stop-at` now, which must succeed.
  void WriteAndRun(int r) const {
    Write(source_, r);
    CommandResult run =
        RunCommand(StopAtNow(RunArgs(source_, target_->Conninfo(db_), queue_), *source_));
    ASSERT_EQ(run.exit_code, 0) << run.output;
  }
  // What a refused command must not change: SourceState and TargetState of db_.
  std::string State() const { return SourceState(source_) + " || " + TargetState(target_, db_); }
  // `run` into db_ with the queue again, after the mistake.
  CommandResult RunAgain() const {
    return RunCommand(RunArgs(source_, target_->Conninfo(db_), queue_));
  }
  // The right command continues: the target catches up with the source; the directory goes.
  void Finish() const {
    ExpectCaughtUp(source_, target_, db_, queue_);
    RemoveTree(dir_);
  }

  PgServer* source_ = nullptr;
  PgServer* target_ = nullptr;
  std::string db_, dir_, queue_;

 private:
  std::unique_ptr<PgServer> source_server_, target_server_;
};

// Mistake 1: a stale queue directory. Before the fix, copy exited 0 with "tables_copied":0 and
// left the re-created target empty.
TEST_F(MistakesTest, StaleQueueDirectoryIsRefusedForARecreatedTargetAndANewSourceCluster) {
  ASSERT_NO_FATAL_FAILURE(Start(15, 17, "stale"));
  ASSERT_NO_FATAL_FAILURE(CopyOk());

  // The target database is dropped and re-created (same name, new OID).
  ASSERT_TRUE(target_->Exec("drop database app").ok());
  ASSERT_TRUE(target_->Exec("create database app").ok());
  std::string src_before = SourceState(source_);
  std::string dst_before = TargetState(target_, "app");
  CommandResult r = RunCommand(Copy(source_, target_, "app", queue_));
  ExpectRefused(r, ErrorCode::kIdentityMismatch,
                "database \"app\" on target (127.0.0.1:" + std::to_string(target_->port()) +
                    "/app) was dropped and re-created");
  EXPECT_EQ(r.output.find("\"summary\":\"done\""), std::string::npos) << r.output;
  EXPECT_EQ(SourceState(source_), src_before);
  EXPECT_EQ(TargetState(target_, "app"), dst_before);
  EXPECT_EQ(Rows(target_, "app"), "none");

  // Brand-new clusters with the old queue directory: the source is another cluster.
  auto other = StartServer(15);
  ASSERT_TRUE(other);
  CreateSource(other.get());
  std::string other_before = SourceState(other.get());
  CommandResult o = RunCommand(Copy(other.get(), target_, "app", queue_));
  ExpectRefused(o, ErrorCode::kIdentityMismatch, "is another cluster than the one queue");
  EXPECT_EQ(SourceState(other.get()), other_before);
  EXPECT_EQ(TargetState(target_, "app"), dst_before);
  std::printf("[mistakes] stale queue: exit %d / %d\n", r.exit_code, o.exit_code);

  // The right command: remove the old migration (cleanup), copy again, run. The re-created
  // target database is accepted by cleanup: what it holds of "pgbaton" is the old migration's.
  CommandResult c = RunCommand({PgbatonBinary(), "cleanup", "--source", source_->Conninfo("app"),
                                "--target", target_->Conninfo("app"), "--queue-dir", queue_});
  ASSERT_EQ(c.exit_code, 0) << c.output;
  EXPECT_NE(
      c.output.find("was dropped and re-created since queue \"" + queue_ + "\" recorded it: OID"),
      std::string::npos)
      << c.output;
  EXPECT_EQ(SourceState(source_, false), Rows(source_, "app") + " | 0 slots");
  ASSERT_NO_FATAL_FAILURE(CopyOk());
  Finish();
}

// cleanup drops what carries the migration's name; pointed at another cluster, that may be
// another migration's slot. Refused against the queue's record and against the target's
// pgbaton.migration, unchanged; --force overrides; the right servers clean up.
TEST_F(MistakesTest, CleanupPointedAtAnotherClusterIsRefusedUnlessForced) {
  ASSERT_NO_FATAL_FAILURE(Start(15, 17, "cleanup"));
  auto other = StartServer(15);
  ASSERT_TRUE(other);
  CreateSource(other.get());
  ASSERT_NO_FATAL_FAILURE(CopyOk());
  // Another migration's slot of the same name on the other cluster.
  ASSERT_TRUE(
      other->Exec("select pg_create_logical_replication_slot('pgbaton', 'pgoutput')", "app").ok());

  std::string src_before = SourceState(source_);
  std::string other_before = SourceState(other.get());
  std::string dst_before = TargetState(target_, "app");
  auto record = [&] {
    auto r = target_->Query("select count(*) from pgbaton.migration", "app");
    return r.ok() ? *r : r.status().ToString();
  };
  ASSERT_EQ(record(), "1");

  CommandResult by_queue = RunCommand(
      {PgbatonBinary(), "cleanup", "--source", other->Conninfo("app"), "--queue-dir", queue_});
  ExpectRefused(by_queue, ErrorCode::kIdentityMismatch,
                "is another cluster than the one queue \"" + queue_ + "\" was made for");
  EXPECT_NE(by_queue.output.find("--force"), std::string::npos) << by_queue.output;
  CommandResult by_target =
      RunCommand({PgbatonBinary(), "cleanup", "--source", other->Conninfo("app"), "--target",
                  target_->Conninfo("app")});
  ExpectRefused(by_target, ErrorCode::kIdentityMismatch,
                "the record of migration \"pgbaton\" in pgbaton.migration on target");
  EXPECT_EQ(SourceState(other.get()), other_before);
  EXPECT_EQ(SourceState(source_), src_before);
  EXPECT_EQ(TargetState(target_, "app"), dst_before);
  EXPECT_EQ(record(), "1");
  EXPECT_TRUE(Exists(queue_ + "/CURRENT"));
  std::printf("[mistakes] cleanup on another cluster: exit %d / %d\n", by_queue.exit_code,
              by_target.exit_code);

  // --force: the operator says the other cluster's "pgbaton" objects are to go.
  CommandResult forced = RunCommand({PgbatonBinary(), "cleanup", "--source", other->Conninfo("app"),
                                     "--queue-dir", queue_, "--force"});
  ASSERT_EQ(forced.exit_code, 0) << forced.output;
  EXPECT_NE(forced.output.find("--force: cleaning up"), std::string::npos) << forced.output;
  EXPECT_EQ(SourceState(other.get(), false), Rows(other.get(), "app") + " | 0 slots");
  EXPECT_FALSE(Exists(queue_));
  EXPECT_EQ(SourceState(source_), src_before);

  // The migration's own servers, checked against the target's record.
  CommandResult right =
      RunCommand({PgbatonBinary(), "cleanup", "--source", source_->Conninfo("app"), "--target",
                  target_->Conninfo("app")});
  ASSERT_EQ(right.exit_code, 0) << right.output;
  EXPECT_NE(right.output.find("the database the record of migration"), std::string::npos)
      << right.output;
  EXPECT_EQ(SourceState(source_, false), Rows(source_, "app") + " | 0 slots");
  EXPECT_EQ(TargetState(target_, "app"), Rows(target_, "app") + " | no origins");
  RemoveTree(dir_);
}

// Mistake 2: `run` against another database of the right target cluster. Before the fix it
// applied the pending transactions there and advanced the shared origin past them.
TEST_F(MistakesTest, RunAgainstAnotherDatabaseOfTheTargetClusterIsRefused) {
  ASSERT_NO_FATAL_FAILURE(Start(13, 18, "otherdb", "app3"));
  ASSERT_NO_FATAL_FAILURE(CopyOk());
  ASSERT_NO_FATAL_FAILURE(WriteAndRun(1));
  // Another database with the same tables, where the changes would fit.
  ASSERT_TRUE(target_->Exec("create database app").ok());
  ASSERT_TRUE(target_->Exec(kSchema, "app").ok());
  Write(source_, 2);  // pending: decoded by the next run

  std::string src_before = SourceState(source_);
  std::string app_before = TargetState(target_, "app");
  std::string app3_before = TargetState(target_, "app3");
  CommandResult r = RunCommand(RunArgs(source_, target_->Conninfo("app"), queue_));
  ExpectRefused(r, ErrorCode::kIdentityMismatch,
                "is database \"app\", but queue \"" + queue_ + "\" was made for database \"app3\"");
  EXPECT_EQ(SourceState(source_), src_before);
  EXPECT_EQ(TargetState(target_, "app"), app_before);
  EXPECT_EQ(TargetState(target_, "app3"), app3_before);
  std::printf("[mistakes] another database: exit %d\n", r.exit_code);

  Finish();
}

// Mistake 3: --target equal to --source. Before the fix `run` applied the stream back onto the
// source. Refused before any slot, queue or record is made.
TEST_F(MistakesTest, TargetEqualToSourceIsRefusedBeforeAnythingIsCreated) {
  ASSERT_NO_FATAL_FAILURE(Start(15, 17, "same"));

  // On a fresh migration: nothing is created anywhere.
  std::string src_before = SourceState(source_);
  CommandResult c = RunCommand(Copy(source_, source_, "app", queue_));
  ExpectRefused(c, ErrorCode::kSourceIsTarget, "--source and --target are the same database");
  EXPECT_FALSE(Exists(queue_));
  CommandResult s = RunCommand(RunArgs(source_, source_->Conninfo("app"), queue_));
  ExpectRefused(s, ErrorCode::kSourceIsTarget, "--source and --target are the same database");
  EXPECT_FALSE(Exists(queue_));
  EXPECT_EQ(SourceState(source_), src_before);

  // Mid-migration: the typo on a restart.
  ASSERT_NO_FATAL_FAILURE(CopyOk());
  Write(source_, 1);
  std::string before = State();
  // The same server under another spelling (localhost instead of 127.0.0.1).
  std::string same =
      fmt::format("host=localhost port={} user=postgres dbname=app", source_->port());
  CommandResult r = RunCommand(RunArgs(source_, same, queue_));
  ExpectRefused(r, ErrorCode::kSourceIsTarget, "--source and --target are the same database");
  EXPECT_EQ(State(), before);
  std::printf("[mistakes] source == target: exit %d\n", r.exit_code);

  Finish();
}

// Mistake 4: the queue directory deleted while `run` is stopped. Before the fix `run` started a
// fresh queue from the slot's position and the held changes (and sync LSNs) were gone.
TEST_F(MistakesTest, QueueDeletedWhileRunIsStoppedIsRefusedAsQueueMissing) {
  ASSERT_NO_FATAL_FAILURE(Start(13, 18, "noqueue"));
  ASSERT_NO_FATAL_FAILURE(CopyOk());
  ASSERT_NO_FATAL_FAILURE(WriteAndRun(1));
  Write(source_, 2);
  auto written = source_->Query("select pg_current_wal_lsn()", "app");
  ASSERT_TRUE(written.ok());
  ASSERT_TRUE(
      source_->Exec("select pg_logical_emit_message(true, 'pgbaton-test', 'x')", "app").ok());
  // Decoded into the queue but not applied: stream alone, then stop it.
  {
    ProcessOptions po;
    po.stdout_path = dir_ + "/stream.log";
    ChildProcess stream(
        {PgbatonBinary(), "stream", "--source", source_->Conninfo("app"), "--queue-dir", queue_},
        po);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    bool decoded = false;
    while (!decoded && std::chrono::steady_clock::now() < deadline) {
      // The round-2 writes are in the queue once the slot confirmed past them.
      auto v =
          source_->Query(fmt::format("select confirmed_flush_lsn >= '{}' from "
                                     "pg_replication_slots where slot_name = 'pgbaton'",
                                     *written));
      decoded = v.ok() && *v == "t";
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ASSERT_TRUE(decoded) << ReadFile(dir_ + "/stream.log");
    stream.Signal(SIGTERM);
    ASSERT_EQ(stream.Wait(60000), 0) << ReadFile(dir_ + "/stream.log");
  }

  RemoveTree(queue_);
  std::string before = State();
  CommandResult r = RunAgain();
  ExpectRefused(r, ErrorCode::kQueueMissing, "was deleted or replaced");
  EXPECT_FALSE(Exists(queue_)) << "a refused run leaves no queue directory";
  EXPECT_EQ(State(), before);
  std::printf("[mistakes] queue deleted: exit %d\n", r.exit_code);

  StartOver(source_, target_, queue_);
  Finish();
}

// Mistake 5: the slot dropped mid-migration (and, second, re-created behind pgbaton's back).
// Before the fix `run` logged "created slot" and the rows written meanwhile never arrived.
TEST_F(MistakesTest, SlotDroppedOrRecreatedMidMigrationIsRefusedAsSlotMissing) {
  ASSERT_NO_FATAL_FAILURE(Start(15, 17, "slot"));
  ASSERT_NO_FATAL_FAILURE(CopyOk());
  ASSERT_NO_FATAL_FAILURE(WriteAndRun(1));

  ASSERT_TRUE(source_->Exec("select pg_drop_replication_slot('pgbaton')").ok());
  Write(source_, 2);  // lost to pgbaton
  std::string before = State();
  CommandResult r = RunAgain();
  ExpectRefused(r, ErrorCode::kSlotMissing, "slot \"pgbaton\" on source");
  EXPECT_NE(r.output.find("does not exist"), std::string::npos) << r.output;
  EXPECT_EQ(State(), before);

  // Re-created by hand: its position is past everything the queue received.
  ASSERT_TRUE(
      source_->Exec("select pg_create_logical_replication_slot('pgbaton', 'pgoutput')", "app")
          .ok());
  Write(source_, 3);
  before = State();
  CommandResult re = RunAgain();
  ExpectRefused(re, ErrorCode::kSlotMissing, "past everything queue");
  EXPECT_EQ(State(), before);
  std::printf("[mistakes] slot dropped: exit %d, re-created: exit %d\n", r.exit_code, re.exit_code);

  StartOver(source_, target_, queue_);
  Finish();
}

// A second `run` on a slot streaming elsewhere: before the fix ~15 s of reconnect back-off, then
// an origin error, and a stray queue directory. Now slot_in_use at once, naming the pid.
TEST_F(MistakesTest, SecondRunOnAnActiveSlotFailsAtOnceNamingThePid) {
  ASSERT_NO_FATAL_FAILURE(Start(13, 18, "second"));
  ASSERT_NO_FATAL_FAILURE(CopyOk());
  ProcessOptions po;
  po.stdout_path = dir_ + "/first.log";
  ChildProcess first(RunArgs(source_, target_->Conninfo("app"), queue_), po);
  std::string pid;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (pid.empty() && std::chrono::steady_clock::now() < deadline) {
    auto v = source_->Query("select coalesce(active_pid::text, '') from pg_replication_slots");
    if (v.ok()) pid = *v;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_FALSE(pid.empty()) << ReadFile(dir_ + "/first.log");
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (Rows(target_, "app") != Rows(source_, "app") &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  std::string src_before = SourceState(source_, /*with_positions=*/false);
  std::string dst_rows = Rows(target_, "app");
  std::string second_queue = dir_ + "/queue2";
  auto t0 = std::chrono::steady_clock::now();
  CommandResult r = RunCommand(RunArgs(source_, target_->Conninfo("app"), second_queue));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ExpectRefused(r, ErrorCode::kSlotInUse, "is active in process " + pid);
  EXPECT_LT(seconds, 10.0) << "refused only after " << seconds << " s";
  EXPECT_FALSE(Exists(second_queue)) << "a refused run leaves no queue directory";
  EXPECT_EQ(SourceState(source_, false), src_before);
  EXPECT_EQ(Rows(target_, "app"), dst_rows);
  EXPECT_TRUE(first.running()) << ReadFile(dir_ + "/first.log");
  std::printf("[mistakes] second run: exit %d after %.1f s\n", r.exit_code, seconds);

  first.Signal(SIGTERM);
  ASSERT_EQ(first.Wait(60000), 0) << ReadFile(dir_ + "/first.log");
  Finish();
}

// A resumed copy checks the tables it recorded as copied: one emptied on the target since is
// copied again (before the fix copy printed "done" with the table empty).
TEST_F(MistakesTest, ResumedCopyCopiesAgainATableEmptiedOnTheTarget) {
  ASSERT_NO_FATAL_FAILURE(Start(15, 17, "emptied"));
  ASSERT_NO_FATAL_FAILURE(CopyOk());
  ASSERT_TRUE(target_->Exec("truncate events", "app").ok());
  ASSERT_NE(Rows(target_, "app"), Rows(source_, "app"));
  CommandResult again = RunCommand(Copy(source_, target_, "app", queue_));
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("copying it again"), std::string::npos) << again.output;
  EXPECT_EQ(Rows(target_, "app"), Rows(source_, "app"));
  Finish();
}

}  // namespace
}  // namespace pgbaton::testing::mistakes

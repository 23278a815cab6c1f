// `pgbaton migrate` end to end, with an application writing to the source all along: the decoder
// drains the source into the queue while the copy runs (the slot's confirmed position passes a
// point taken during the copy, before the copy ends), --until caught-up exits 0, and after a
// final `run --stop-at` the target equals the source row for row. Killed (SIGKILL) in each phase,
// the same command finishes the job with nothing lost and nothing applied twice. A preflight
// blocker stops it before anything is created. verify --at-lsn and migrate --verify compare both
// sides at one source LSN while the writes go on.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/copy_fixture.h"
#include "tests/support/pg_test.h"

namespace pgbaton::testing {
namespace {

using copy::QueueDir;

// Names that need quoting in every position, a table bigger than a few chunks, a sequence.
constexpr const char* kSchema = R"SQL(
CREATE SCHEMA "Sales Data";
CREATE TABLE "Sales Data"."Order" (id int PRIMARY KEY, "Amount" int NOT NULL, note text);
INSERT INTO "Sales Data"."Order" SELECT i, 0, repeat('n', 80) FROM generate_series(1, 40000) i;
CREATE TABLE hist (id bigserial PRIMARY KEY, order_id int, delta int, "select" text);
CREATE TABLE small (k text PRIMARY KEY, v int);
)SQL";
const std::vector<std::string> kTables = {"\"Sales Data\".\"Order\"", "public.hist",
                                          "public.small"};

std::string NextWrite(std::mt19937& rng, int committed) {
  int id = 1 + static_cast<int>(rng() % 40000);
  int d = static_cast<int>(rng() % 100) - 50;
  std::string sql = fmt::format(
      "BEGIN; UPDATE \"Sales Data\".\"Order\" SET \"Amount\" = \"Amount\" + {1} WHERE id = {0}; "
      "INSERT INTO hist (order_id, delta, \"select\") VALUES ({0}, {1}, 'w{2}'); "
      "INSERT INTO small VALUES ('k{3}', {1}) ON CONFLICT (k) DO UPDATE SET v = small.v + 1; ",
      id, d, committed, rng() % 300);
  if (rng() % 10 == 0) {
    sql += fmt::format("DELETE FROM \"Sales Data\".\"Order\" WHERE id = {}; ", 1 + rng() % 40000);
  }
  return sql + "COMMIT";
}

struct Pair {
  int source;
  int target;
};

// Two servers with the schema on the source and an empty database on the target.
class MigrateFixture : public ::testing::Test {
 protected:
  void Start(Pair pair) {
    src_ = StartServer(pair.source);
    dst_ = StartServer(pair.target);
    ASSERT_TRUE(src_ && dst_);
    ASSERT_TRUE(src_->Exec("CREATE DATABASE app").ok());
    ASSERT_TRUE(src_->Exec(kSchema, "app").ok());
    ASSERT_TRUE(dst_->Exec("CREATE DATABASE app").ok());
  }

  std::vector<std::string> Migrate(const std::vector<std::string>& extra) const {
    std::vector<std::string> args = {PgbatonBinary(), "--name",
                                     "pgbaton",       "migrate",
                                     "--source",      src_->Conninfo("app"),
                                     "--target",      dst_->Conninfo("app"),
                                     "--queue-dir",   qdir_.path(),
                                     "--jobs",        "2",
                                     "--chunk-bytes", "262144",
                                     "--progress",    "json"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  // The final step of a test: everything written before now is applied by `run --stop-at`, and
  // the target equals the source.
  void ExpectIdenticalAfterStopAt() {
    std::vector<std::string> run = {PgbatonBinary(), "--name",
                                    "pgbaton",       "run",
                                    "--source",      src_->Conninfo("app"),
                                    "--target",      dst_->Conninfo("app"),
                                    "--queue-dir",   qdir_.path()};
    CommandResult r = RunCommand(StopAtNow(run, *src_));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(TablesDigest(*src_, "app", kTables), TablesDigest(*dst_, "app", kTables));
    auto seq_src = src_->Query("SELECT last_value FROM hist_id_seq", "app");
    auto seq_dst = dst_->Query("SELECT last_value FROM hist_id_seq", "app");
    ASSERT_TRUE(seq_src.ok() && seq_dst.ok());
    // The copy set the sequence once; cutover sets it again. It is never ahead of the source.
    EXPECT_LE(std::stoll(*seq_dst), std::stoll(*seq_src));
  }

  std::unique_ptr<PgServer> src_;
  std::unique_ptr<PgServer> dst_;
  QueueDir qdir_;
};

// On each pair of majors.
class MigrateTest : public MigrateFixture, public ::testing::WithParamInterface<Pair> {
 protected:
  void SetUp() override { Start(GetParam()); }
};

// On 15 -> 17 only: the crash rounds and the refusal (the pairs differ in the copy, not here).
class MigrateOnceTest : public MigrateFixture {
 protected:
  void SetUp() override { Start({15, 17}); }
};

// Waits up to `seconds` for `needle` in the file at `path`.
bool WaitForLine(const std::string& path, const std::string& needle, int seconds) {
  return WaitFor([&] { return ReadFile(path).find(needle) != std::string::npos; }, seconds);
}

TEST_P(MigrateTest, StreamsDuringTheCopyCatchesUpUnderWritesAndEndsIdentical) {
  BackgroundWriter writer(src_->Conninfo("app"), 7, NextWrite);
  const std::string log = qdir_.path() + ".migrate.log";
  ProcessOptions po;
  po.stdout_path = log;
  ChildProcess migrate(
      Migrate({"--hold-at", "after-data:8000", "--until", "caught-up", "--verify"}), po);

  // While the copy holds after its data, the decoder keeps draining the source: the slot's
  // confirmed position passes a point taken now, before the copy goes on.
  ASSERT_TRUE(WaitForLine(log, "the copy holds", 180)) << ReadFile(log);
  const auto held = std::chrono::steady_clock::now();
  auto mark = src_->Query("SELECT pg_current_wal_lsn()::text", "app");
  ASSERT_TRUE(mark.ok());
  bool passed = false;
  // Well inside the 8 s hold: what passes the mark is the decoder, not a copy that went on.
  while (!passed && std::chrono::steady_clock::now() - held < std::chrono::seconds(6)) {
    auto r = src_->Query("SELECT confirmed_flush_lsn >= '" + *mark +
                             "'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'pgbaton'",
                         "app");
    passed = r.ok() && *r == "t";
    if (!passed) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(passed) << "the slot did not pass " << *mark << " while the copy held\n"
                      << ReadFile(log);

  int rc = migrate.Wait(300000);
  EXPECT_EQ(rc, 0) << ReadFile(log);
  EXPECT_NE(ReadFile(log).find("caught up: replay lag"), std::string::npos) << ReadFile(log);
  // --verify: both sides compared at one source LSN (a temporary slot's snapshot on each major)
  // while the writer goes on.
  EXPECT_NE(ReadFile(log).find("\"phase\":\"verify\""), std::string::npos) << ReadFile(log);
  EXPECT_NE(ReadFile(log).find("\"match\":true"), std::string::npos) << ReadFile(log);
  EXPECT_GT(writer.committed(), 50);
  writer.Stop();
  ASSERT_EQ(writer.error(), "");
  ExpectIdenticalAfterStopAt();
}

TEST_F(MigrateOnceTest, KilledInEveryPhaseTheSameCommandFinishesIdentical) {
  BackgroundWriter writer(src_->Conninfo("app"), 11, NextWrite);
  for (const char* point :
       {"after-preflight", "after-slot", "after-schema", "data:2", "post-data:1"}) {
    CommandResult killed = RunCommand(Migrate({"--crash-at", point, "--until", "caught-up"}));
    ASSERT_EQ(killed.signal, SIGKILL) << point << "\n" << killed.output;
  }
  // Killed while catching up (or in the steady state) without a hook: a real kill -9.
  const std::string log = qdir_.path() + ".migrate.log";
  ProcessOptions po;
  po.stdout_path = log;
  {
    ChildProcess migrate(Migrate({}), po);
    ASSERT_TRUE(WaitForLine(log, "\"phase\":\"catch-up\"", 240)) << ReadFile(log);
    migrate.Kill();
  }
  // And in the steady state, once caught up and following the source.
  {
    const std::string steady = qdir_.path() + ".steady.log";
    ProcessOptions ps;
    ps.stdout_path = steady;
    ChildProcess migrate(Migrate({}), ps);
    ASSERT_TRUE(WaitForLine(steady, "caught up: the target trails", 240)) << ReadFile(steady);
    std::this_thread::sleep_for(std::chrono::seconds(1));
    migrate.Kill();
  }
  CommandResult finished = RunCommand(Migrate({"--until", "caught-up"}));
  EXPECT_EQ(finished.exit_code, 0) << finished.output;
  EXPECT_GT(writer.committed(), 50);
  writer.Stop();
  ASSERT_EQ(writer.error(), "");
  ExpectIdenticalAfterStopAt();
}

TEST_F(MigrateOnceTest, APreflightBlockerStopsItBeforeAnythingIsCreated) {
  ASSERT_TRUE(src_->Exec("CREATE TABLE \"No Key\" (v int)", "app").ok());
  CommandResult r = RunCommand(Migrate({"--until", "caught-up"}));
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("No Key"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("preflight found"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(qdir_.path() + "/CURRENT")) << "a queue was created";
  EXPECT_EQ(*src_->Query("SELECT count(*) FROM pg_replication_slots", "app"), "0");
  EXPECT_EQ(*src_->Query("SELECT count(*) FROM pg_publication", "app"), "0");
  EXPECT_EQ(*dst_->Query("SELECT count(*) FROM pg_tables WHERE schemaname <> 'pg_catalog' AND "
                         "schemaname <> 'information_schema'",
                         "app"),
            "0");
}

// verify --at-lsn reads both sides at one source LSN while the application keeps writing: an
// identical pair reports nothing (twice, while the applier runs), a row changed on the target
// behind the applier's back is found by table and key, and without a running applier it says so.
// migrate --verify is the same comparison as a gate once caught up.
TEST_F(MigrateOnceTest, VerifyAtLsnUnderWritesFindsOnlyWhatWasChangedBehindTheApplier) {
  // A table the application never writes: what is changed there on the target stays changed.
  ASSERT_TRUE(src_->Exec("CREATE TABLE \"Quiet \"\"T\"\"\" (id int PRIMARY KEY, \"Value\" text); "
                         "INSERT INTO \"Quiet \"\"T\"\"\" SELECT i, 'v' || i FROM "
                         "generate_series(1, 500) i",
                         "app")
                  .ok());
  BackgroundWriter writer(src_->Conninfo("app"), 13, NextWrite);
  CommandResult gate = RunCommand(Migrate({"--until", "caught-up", "--verify"}));
  ASSERT_EQ(gate.exit_code, 0) << gate.output;
  EXPECT_NE(gate.output.find("\"phase\":\"verify\""), std::string::npos) << gate.output;
  EXPECT_NE(gate.output.find("\"match\":true"), std::string::npos) << gate.output;

  const std::vector<std::string> verify = {PgbatonBinary(),
                                           "--name",
                                           "pgbaton",
                                           "verify",
                                           "--source",
                                           src_->Conninfo("app"),
                                           "--target",
                                           dst_->Conninfo("app"),
                                           "--at-lsn",
                                           "--pause-timeout",
                                           "120"};
  {
    ProcessOptions po;
    po.stdout_path = qdir_.path() + ".run.log";
    ChildProcess run(
        {PgbatonBinary(), "--name", "pgbaton", "run", "--source", src_->Conninfo("app"), "--target",
         dst_->Conninfo("app"), "--queue-dir", qdir_.path()},
        po);
    const int before = writer.committed();
    for (int round = 0; round < 2; ++round) {
      CommandResult same = RunCommand(verify);
      EXPECT_EQ(same.exit_code, 0) << same.output << ReadFile(po.stdout_path);
      EXPECT_NE(same.output.find("compared at source LSN"), std::string::npos) << same.output;
      EXPECT_NE(same.output.find("4 match, 0 differ"), std::string::npos) << same.output;
    }
    EXPECT_GT(writer.committed(), before) << "the writes did not go on while verify ran";

    ASSERT_TRUE(
        dst_->Exec("UPDATE \"Quiet \"\"T\"\"\" SET \"Value\" = 'changed' WHERE id = 321", "app")
            .ok());
    CommandResult differ = RunCommand(verify);
    EXPECT_EQ(differ.exit_code, 81) << differ.output;
    EXPECT_NE(differ.output.find("id=321: changed"), std::string::npos) << differ.output;
    EXPECT_NE(differ.output.find("3 match, 1 differ: public.\"Quiet \"\"T\"\"\""),
              std::string::npos)
        << differ.output;
    EXPECT_NE(differ.output.find("really differ"), std::string::npos) << differ.output;
    ASSERT_TRUE(run.Signal(SIGTERM));
    EXPECT_EQ(run.Wait(60000), 0) << ReadFile(po.stdout_path);
  }
  // Nothing applies: it says so instead of comparing a moving source with a still target.
  std::vector<std::string> alone = verify;
  alone.back() = "3";
  CommandResult none = RunCommand(alone);
  EXPECT_EQ(none.exit_code, 71) << none.output;
  EXPECT_NE(none.output.find("no applier of migration \"pgbaton\" answered"), std::string::npos)
      << none.output;
  EXPECT_EQ(*dst_->Query("SELECT count(*) FROM pgbaton.pause_request", "app"), "0");

  ASSERT_TRUE(
      dst_->Exec("UPDATE \"Quiet \"\"T\"\"\" SET \"Value\" = 'v321' WHERE id = 321", "app").ok());
  writer.Stop();
  ASSERT_EQ(writer.error(), "");
  ExpectIdenticalAfterStopAt();
}

INSTANTIATE_TEST_SUITE_P(Majors, MigrateTest,
                         ::testing::Values(Pair{15, 17}, Pair{13, 18}, Pair{12, 17}, Pair{12, 18}),
                         [](const auto& info) {
                           return fmt::format("From{}To{}", info.param.source, info.param.target);
                         });

}  // namespace
}  // namespace pgbaton::testing

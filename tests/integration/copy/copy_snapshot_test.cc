// `pgbaton copy` when its snapshot goes away, and when the source uses an extension the target
// lacks. The copy is frozen at a chosen point (--pause-at: it SIGSTOPs itself), sessions are
// terminated on the source with pg_terminate_backend, the copy continues (SIGCONT): a lost
// snapshot stops it with snapshot_lost (61) and "run the same command again", and running it
// again gives a target identical row for row, also after streaming the writes made meanwhile.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <random>
#include <thread>

#include "tests/support/copy_fixture.h"

namespace pgbaton::testing::copy {
namespace {

// Whether `pid` is stopped (state T in /proc/PID/stat).
bool Stopped(pid_t pid) {
  std::string stat = ReadFile(fmt::format("/proc/{}/stat", pid));
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'T';
}

// Runs the copy with --pause-at `point`; once it is frozen there, runs `action`, lets it go on
// and waits for it to end.
CommandResult RunPausedCopy(PgServer& src, const std::string& db, PgServer& dst,
                            const std::string& name, std::vector<std::string> flags,
                            const std::string& point, const std::function<void()>& action,
                            const std::string& queue_dir) {
  std::string log = queue_dir + ".paused.log";
  ProcessOptions po;
  po.stdout_path = log;
  std::vector<std::string> argv = {
      PgbatonBinary(), "--name",         name,          "copy",    "--source",   src.Conninfo(db),
      "--target",      dst.Conninfo(db), "--queue-dir", queue_dir, "--pause-at", point};
  argv.insert(argv.end(), flags.begin(), flags.end());
  ChildProcess copy(argv, po);
  bool paused = false;
  for (int i = 0; i < 1200 && !paused && copy.running(); ++i) {
    paused = Stopped(copy.pid());
    if (!paused) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CommandResult out;
  EXPECT_TRUE(paused) << "the copy never paused at " << point << ": " << ReadFile(log);
  if (paused) {
    action();
    copy.Signal(SIGCONT);
  }
  int code = copy.Wait(180000);
  if (code == -2) copy.Kill();
  out.exit_code = copy.exit_code();
  out.signal = copy.term_signal();
  out.output = ReadFile(log);
  return out;
}

// Terminates the source sessions matched by `where` (on pg_stat_activity) and waits until they
// are gone; returns how many there were.
int Terminate(PgServer& server, const std::string& where) {
  auto n =
      server.Query("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE " + where);
  EXPECT_TRUE(n.ok()) << n.status().ToString();
  for (int i = 0; i < 200; ++i) {
    auto left = server.Query("SELECT count(*) FROM pg_stat_activity WHERE " + where);
    if (left.ok() && *left == "0") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return n.ok() ? std::atoi(n->c_str()) : 0;
}

// The walsender that created the copy's slot and exported its snapshot: the only replication
// session on database `db` (the slot is not held active once created, so active_pid is null).
std::string Exporter(const std::string& db) {
  return "backend_type = 'walsender' AND datname = '" + db + "'";
}
// The copy's worker sessions on the source, each inside the imported snapshot.
constexpr const char* kWorkers = "application_name ~ '^pgbaton copy [0-9]+$'";

void ExpectSnapshotLost(const CommandResult& r) {
  EXPECT_EQ(r.exit_code, 61) << r.output;
  EXPECT_NE(r.output.find("snapshot \""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("is lost"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("hint: run the same command again"), std::string::npos) << r.output;
}

TEST(CopyErrorsTest, MissingExtensionOnTargetRefusedBeforeAnyChange) {
  auto src = StartServer(15);
  auto dst = StartServer(17);
  ASSERT_TRUE(src && dst);
  // adminpack ships with 15 and was removed from PostgreSQL in 17: the realistic case.
  ASSERT_EQ(*dst->Query("SELECT count(*) FROM pg_available_extensions WHERE name = 'adminpack'"),
            "0");
  ASSERT_TRUE(src->Exec("CREATE DATABASE app").ok());
  ASSERT_TRUE(src->Exec("CREATE EXTENSION adminpack; CREATE TABLE t (id int PRIMARY KEY); "
                        "INSERT INTO t SELECT generate_series(1, 100)",
                        "app")
                  .ok());
  ASSERT_TRUE(dst->Exec("CREATE DATABASE app").ok());
  QueueDir qdir;

  CommandResult r = RunCopy(*src, "app", *dst, "app", qdir, "pgbaton", {"--progress", "json"});
  EXPECT_EQ(r.exit_code, 80) << r.output;
  EXPECT_NE(r.output.find("extension \"adminpack\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("not available on target"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("hint: install the package that provides \"adminpack\" for "
                          "PostgreSQL 17"),
            std::string::npos)
      << r.output;
  // Nothing was touched: no slot or publication on the source, no table on the target, no
  // progress recorded.
  EXPECT_EQ(*src->Query("SELECT count(*) FROM pg_replication_slots", "app"), "0");
  EXPECT_EQ(*src->Query("SELECT count(*) FROM pg_publication", "app"), "0");
  EXPECT_TRUE(UserTables(*dst, "app").empty());
  EXPECT_TRUE(QueueMeta(qdir, "pgbaton", "copy/").empty());

  // Without the extension (the other way out when nothing uses it) the same command completes.
  ASSERT_TRUE(src->Exec("DROP EXTENSION adminpack", "app").ok());
  CommandResult again = RunCopy(*src, "app", *dst, "app", qdir, "pgbaton", {"--progress", "json"});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(TableDigest(*src, "app", "public.t"), TableDigest(*dst, "app", "public.t"));
}

TEST(CopySnapshotTest, ExporterEndsBeforeTheDataOrAWorkerSessionEndsMidData) {
  auto src = StartServer(15);
  auto dst = StartServer(17);
  ASSERT_TRUE(src && dst);
  const std::vector<std::string> flags = {"--jobs", "2",          "--chunk-bytes",
                                          "131072", "--progress", "json"};
  // The exporting session ends after the slot is made (before the schema is dumped), or after
  // the schema is restored (before any table is read).
  for (const std::string point : {"after-slot", "after-schema"}) {
    SCOPED_TRACE("the exporting session ends at " + point);
    std::string db = point == "after-slot" ? "slot_lost" : "schema_lost";
    CreateSourceSchema(*src, db);
    ASSERT_TRUE(dst->Exec("CREATE DATABASE " + db).ok());
    QueueDir qdir;
    int exporters = 0;
    CommandResult lost = RunPausedCopy(
        *src, db, *dst, db, flags, point, [&] { exporters = Terminate(*src, Exporter(db)); }, qdir);
    EXPECT_EQ(exporters, 1);
    ExpectSnapshotLost(lost);
    EXPECT_NE(lost.output.find("the source session that exported it ended"), std::string::npos)
        << lost.output;
    CommandResult again = RunCopy(*src, db, *dst, db, qdir, db, flags);
    ASSERT_EQ(again.exit_code, 0) << again.output;
    ExpectSameDatabase(*src, db, *dst, db);
  }
  {
    SCOPED_TRACE("worker sessions end mid-data while the exporter lives: chunks are retried");
    CreateSourceSchema(*src, "workers");
    ASSERT_TRUE(dst->Exec("CREATE DATABASE workers").ok());
    QueueDir qdir;
    int workers = 0;
    CommandResult r = RunPausedCopy(
        *src, "workers", *dst, "workers_copy", flags, "data:1",
        [&] { workers = Terminate(*src, kWorkers); }, qdir);
    EXPECT_GE(workers, 1);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ExpectSameDatabase(*src, "workers", *dst, "workers");
  }
}

constexpr const char* kWriteSchema = R"SQL(
CREATE TABLE acc (id int PRIMARY KEY, bal int NOT NULL, note text);
INSERT INTO acc SELECT i, 0, repeat('n', 50) FROM generate_series(1, 30000) i;
CREATE TABLE hist (id bigserial PRIMARY KEY, acc_id int, delta int);
INSERT INTO hist (acc_id, delta) SELECT i, 1 FROM generate_series(1, 5000) i;
CREATE TABLE sentinel (id int PRIMARY KEY);
)SQL";

// Sequences in use during the copy (nextval on the source all along) end on the target at or
// past every key the target holds; the snapshot lost mid-data (exporter and workers terminated)
// stops the copy; the same command again, then the stream, give the source row for row.
TEST(CopySnapshotTest, LostMidDataUnderWritesThenRunAgainAndStream) {
  std::unique_ptr<PgServer> src, dst;
  ASSERT_NO_FATAL_FAILURE(StartSourceAndTarget(kWriteSchema, &src, &dst));

  BackgroundWriter writer(src->Conninfo("app"), 7, [](std::mt19937& rng, int) {
    return fmt::format(
        "BEGIN; UPDATE acc SET bal = bal + 1 WHERE id = {0}; "
        "INSERT INTO hist (acc_id, delta) VALUES ({0}, 1); COMMIT",
        1 + static_cast<int>(rng() % 30000));
  });

  QueueDir qdir;
  const std::vector<std::string> flags = {"--jobs", "2",          "--chunk-bytes",
                                          "262144", "--progress", "json"};
  int exporters = 0, workers = 0;
  CommandResult lost = RunPausedCopy(
      *src, "app", *dst, "pgbaton", flags, "data:2",
      [&] {
        exporters = Terminate(*src, Exporter("app"));
        workers = Terminate(*src, kWorkers);
      },
      qdir);
  EXPECT_EQ(exporters, 1);
  EXPECT_GE(workers, 1);
  ExpectSnapshotLost(lost);
  EXPECT_NE(lost.output.find("the source session of copy worker"), std::string::npos)
      << lost.output;

  CommandResult again = RunCopy(*src, "app", *dst, "app", qdir, "pgbaton", flags);
  ASSERT_EQ(again.exit_code, 0) << again.output;
  int during = writer.committed();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  writer.Stop();
  ASSERT_EQ(writer.error(), "");
  EXPECT_GT(during, 20);

  // The copy alone: the target's sequence is at or past every key copied into hist.
  auto seq = dst->Query("SELECT last_value FROM hist_id_seq", "app");
  auto max_key = dst->Query("SELECT max(id) FROM hist", "app");
  ASSERT_TRUE(seq.ok() && max_key.ok());
  EXPECT_GE(std::stoll(*seq), std::stoll(*max_key));
  EXPECT_GT(std::stoll(*max_key), 5000) << "rows written during the copy should be in hist";

  // Then the stream: every write made meanwhile, applied once.
  ASSERT_NO_FATAL_FAILURE(StreamAndApplyToSentinel(*src, *dst, qdir));
  for (const char* t : {"public.acc", "public.hist", "public.sentinel"}) {
    EXPECT_EQ(TableDigest(*src, "app", t), TableDigest(*dst, "app", t)) << t;
  }
}

}  // namespace
}  // namespace pgbaton::testing::copy

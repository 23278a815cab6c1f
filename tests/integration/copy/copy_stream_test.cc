// The copy meets the stream: writes run on the source during `pgbaton copy` (killed once
// mid-data and resumed, so tables carry two different sync LSNs); then `pgbaton stream` fills the
// queue from the copy's slot and `pgbaton apply --stop-at` replays it. The target must equal the
// source row for row: a change already in a table's copied rows is skipped (its commit LSN is not
// past the table's sync LSN), every later one is applied once.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <random>
#include <set>
#include <thread>

#include "common/types.h"
#include "tests/support/copy_fixture.h"

namespace pgbaton::testing::copy {
namespace {

constexpr const char* kSchema = R"SQL(
CREATE TABLE acc (id int PRIMARY KEY, bal int NOT NULL, note text);
INSERT INTO acc SELECT i, 0, repeat('n', 50) FROM generate_series(1, 30000) i;
CREATE TABLE hist (id bigserial PRIMARY KEY, acc_id int, delta int, at timestamptz DEFAULT now());
CREATE TABLE small (k text PRIMARY KEY, v int);
CREATE TABLE sentinel (id int PRIMARY KEY);
)SQL";

TEST(CopyStreamTest, WritesDuringAResumedCopyAreStreamedAndAppliedExactlyOnce) {
  auto src = StartServer(15);
  auto dst = StartServer(17);
  ASSERT_TRUE(src && dst);
  ASSERT_TRUE(src->Exec("CREATE DATABASE app").ok());
  ASSERT_TRUE(src->Exec(kSchema, "app").ok());
  ASSERT_TRUE(dst->Exec("CREATE DATABASE app").ok());

  // The writer: small transactions of updates, inserts and deletes until told to stop.
  BackgroundWriter writer(src->Conninfo("app"), 42, [](std::mt19937& rng, int committed) {
    int id = 1 + static_cast<int>(rng() % 30000);
    int d = static_cast<int>(rng() % 100) - 50;
    std::string sql = fmt::format(
        "BEGIN; UPDATE acc SET bal = bal + {1} WHERE id = {0}; "
        "INSERT INTO hist (acc_id, delta) VALUES ({0}, {1}); "
        "INSERT INTO small VALUES ('k{2}', {1}) ON CONFLICT (k) DO UPDATE SET v = small.v + 1; ",
        id, d, rng() % 200);
    if (rng() % 10 == 0) sql += fmt::format("DELETE FROM acc WHERE id = {}; ", 1 + rng() % 30000);
    if (rng() % 10 == 1)
      sql += fmt::format("INSERT INTO acc VALUES ({}, 1, 'new') ON CONFLICT DO NOTHING; ",
                         30000 + committed);
    return sql + "COMMIT";
  });

  QueueDir qdir;
  // One job: chunks run biggest table first, so the crash below finds "acc" done and the small
  // tables not started.
  std::vector<std::string> flags = {"--jobs", "1", "--chunk-bytes", "262144", "--progress", "json"};
  std::vector<std::string> crash = flags;
  // Killed when the big table is done and the three small ones are not: those are copied
  // again at a later snapshot while the writer keeps writing to them.
  crash.insert(crash.end(), {"--crash-at", "table:public.acc"});
  CommandResult killed = RunCopy(*src, "app", *dst, "app", qdir, "pgbaton", crash);
  EXPECT_EQ(killed.signal, SIGKILL) << killed.output;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CommandResult resumed = RunCopy(*src, "app", *dst, "app", qdir, "pgbaton", flags);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  writer.Stop();
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  ASSERT_EQ(writer.error(), "");
  EXPECT_GT(writer.committed(), 20);

  auto meta = QueueMeta(qdir, "pgbaton", "sync_lsn/");
  ASSERT_EQ(meta.size(), 4u);
  std::set<std::string> sync_lsns;
  for (const auto& [k, v] : meta) sync_lsns.insert(v);
  EXPECT_EQ(sync_lsns.size(), 2u) << "tables should carry the first and the resumed snapshot\n"
                                  << killed.output << "\n"
                                  << resumed.output;

  // A sentinel transaction ends the run: every writer transaction ended before l1; the sentinel
  // commits after it and before l2.
  std::string l1 = *src->Query("SELECT pg_current_wal_insert_lsn()::text", "app");
  ASSERT_TRUE(src->Exec("INSERT INTO sentinel VALUES (1)", "app").ok());
  std::string l2 = *src->Query("SELECT pg_current_wal_lsn()::text", "app");

  ProcessOptions po;
  po.stdout_path = qdir.path() + ".stream.log";
  ChildProcess stream({PgbatonBinary(), "--name", "pgbaton", "stream", "--source",
                       src->Conninfo("app"), "--queue-dir", qdir},
                      po);
  bool caught_up = false;
  for (int i = 0; i < 600 && !caught_up; ++i) {
    auto r = src->Query("SELECT confirmed_flush_lsn > '" + l1 +
                            "'::pg_lsn FROM pg_replication_slots "
                            "WHERE slot_name = 'pgbaton'",
                        "app");
    caught_up = r.ok() && *r == "t";
    if (!caught_up) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stream.Signal(SIGTERM);
  if (stream.Wait(15000) == -2) stream.Kill();
  ASSERT_TRUE(caught_up) << "the stream did not reach " << l2 << ": "
                         << ReadFile(qdir.path() + ".stream.log");

  CommandResult apply = RunCommand({PgbatonBinary(), "--name", "pgbaton", "apply", "--target",
                                    dst->Conninfo("app"), "--queue-dir", qdir, "--stop-at", l2});
  ASSERT_EQ(apply.exit_code, 0) << apply.output;
  for (const char* t : {"public.acc", "public.hist", "public.small", "public.sentinel"}) {
    EXPECT_EQ(TableDigest(*src, "app", t), TableDigest(*dst, "app", t)) << t;
  }
}

}  // namespace
}  // namespace pgbaton::testing::copy

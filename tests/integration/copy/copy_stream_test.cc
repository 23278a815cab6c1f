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
  std::unique_ptr<PgServer> src, dst;
  ASSERT_NO_FATAL_FAILURE(StartSourceAndTarget(kSchema, &src, &dst));

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

  // A sentinel transaction ends the run: the stream, then apply up to it.
  ASSERT_NO_FATAL_FAILURE(StreamAndApplyToSentinel(*src, *dst, qdir));
  for (const char* t : {"public.acc", "public.hist", "public.small", "public.sentinel"}) {
    EXPECT_EQ(TableDigest(*src, "app", t), TableDigest(*dst, "app", t)) << t;
  }
}

}  // namespace
}  // namespace pgbaton::testing::copy

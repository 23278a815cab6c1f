// `pgbaton copy --include` of a partitioned table on a PostgreSQL 12 source, which cannot publish
// a partitioned table: the publication lists its partitions instead, and `pgbaton run` streams
// writes to every partition (a row moved across partitions too) onto a 17 target, identical row
// for row; the table left out is neither copied nor streamed.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "tests/support/copy_fixture.h"

namespace pgbaton::testing::copy {
namespace {

constexpr const char* kSchema = R"SQL(
CREATE TABLE events (id int, region text, v int, PRIMARY KEY (id, region))
  PARTITION BY LIST (region);
CREATE TABLE events_eu PARTITION OF events FOR VALUES IN ('eu');
CREATE TABLE events_us PARTITION OF events FOR VALUES IN ('us');
INSERT INTO events SELECT i, CASE WHEN i % 2 = 0 THEN 'eu' ELSE 'us' END, i FROM
  generate_series(1, 1000) i;
CREATE TABLE skipped (id int PRIMARY KEY);
INSERT INTO skipped SELECT generate_series(1, 10);
)SQL";

TEST(CopyPartitionTest, IncludedPartitionedTableOnATwelveSourceIsPublishedAsItsPartitions) {
  auto src = StartServer(12);
  auto dst = StartServer(17);
  ASSERT_TRUE(src && dst);
  ASSERT_TRUE(src->Exec("CREATE DATABASE app").ok());
  ASSERT_TRUE(src->Exec(kSchema, "app").ok());
  ASSERT_TRUE(dst->Exec("CREATE DATABASE app").ok());

  QueueDir qdir;
  CommandResult copied =
      RunCopy(*src, "app", *dst, "app", qdir, "part", {"--include", "public.events"});
  ASSERT_EQ(copied.exit_code, 0) << copied.output;
  EXPECT_EQ(*src->Query("SELECT string_agg(schemaname || '.' || tablename, ',' ORDER BY "
                        "tablename) FROM pg_publication_tables WHERE pubname = 'part'",
                        "app"),
            "public.events_eu,public.events_us");

  // Writes to both partitions, a row moved from one to the other, and to the table left out.
  ASSERT_TRUE(src->Exec("INSERT INTO events SELECT i, 'eu', i FROM generate_series(1001, 1100) i; "
                        "UPDATE events SET v = v + 1 WHERE id % 7 = 0; "
                        "DELETE FROM events WHERE id % 11 = 0; "
                        "UPDATE events SET region = 'eu' WHERE id = 1; "
                        "TRUNCATE events_us; "
                        "INSERT INTO events VALUES (5000, 'us', 1); "
                        "INSERT INTO skipped VALUES (11)",
                        "app")
                  .ok());
  ProcessOptions po;
  po.stdout_path = qdir.path() + ".run.log";
  ChildProcess run(
      StopAtNow({PgbatonBinary(), "--name", "part", "run", "--source", src->Conninfo("app"),
                 "--target", dst->Conninfo("app"), "--queue-dir", qdir},
                *src),
      po);
  int exit_code = run.Wait(120000);
  if (exit_code == -2) run.Kill();
  ASSERT_EQ(exit_code, 0) << ReadFile(po.stdout_path);

  for (const char* t : {"public.events", "public.events_eu", "public.events_us"}) {
    EXPECT_EQ(TableDigest(*src, "app", t), TableDigest(*dst, "app", t)) << t;
  }
  EXPECT_EQ(*dst->Query("SELECT count(*) FROM events WHERE id = 1 AND region = 'eu'", "app"), "1");
  EXPECT_EQ(*dst->Query("SELECT to_regclass('public.skipped') IS NULL", "app"), "t");
}

}  // namespace
}  // namespace pgbaton::testing::copy

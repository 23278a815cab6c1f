// `pgbaton copy` and large objects against real servers (15 -> 17, 13 -> 18): objects of several
// sizes with owners, ACLs and comments are copied at the copy's snapshot with their OIDs, over
// the copy's workers; kill -9 in the middle of them and running the same command again gives
// identical objects, none twice; one created after the snapshot waits for a re-sync, which
// `verify --large-objects` reports and `verify --sync-large-objects` brings over.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <thread>

#include "tests/support/copy_fixture.h"
#include "tests/support/large_objects.h"

namespace pgbaton::testing::copy {
namespace {

struct Majors {
  int source;
  int target;
};

// Source and target with the test schema and large objects in `db`, the roles on both.
void Prepare(PgServer& src, PgServer& dst, const std::string& db, int small = 200) {
  CreateSourceSchema(src, db);
  ASSERT_TRUE(dst.Exec("CREATE DATABASE " + db).ok());
  ASSERT_TRUE(dst.Exec(kLargeObjectRolesSql).ok());
  Status st = CreateLargeObjects(src, db, small);
  ASSERT_TRUE(st.ok()) << st.ToString();
}

void ExpectSameLargeObjects(PgServer& src, PgServer& dst, const std::string& db) {
  auto a = LargeObjectListing(src, db);
  auto b = LargeObjectListing(dst, db);
  ASSERT_TRUE(a.ok() && b.ok()) << (a.ok() ? b.status() : a.status()).ToString();
  EXPECT_FALSE(a->empty());
  EXPECT_EQ(*a, *b);
}

CommandResult Verify(PgServer& src, PgServer& dst, const std::string& db, const std::string& name,
                     const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {PgbatonBinary(), "--name",         name,       "verify",
                                   "--source",      src.Conninfo(db), "--target", dst.Conninfo(db)};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return RunCommand(argv);
}

class CopyLargeObjectsTest : public ::testing::TestWithParam<Majors> {};

TEST_P(CopyLargeObjectsTest, CopiedWithOwnersAclsAndCommentsInParallel) {
  auto src = StartServer(GetParam().source);
  auto dst = StartServer(GetParam().target);
  ASSERT_TRUE(src && dst);
  ASSERT_NO_FATAL_FAILURE(Prepare(*src, *dst, "app"));
  QueueDir qdir;
  CommandResult r =
      RunCopy(*src, "app", *dst, "app", qdir, "pgbaton", {"--jobs", "3", "--progress", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ExpectSameDatabase(*src, "app", *dst, "app");
  ExpectSameLargeObjects(*src, *dst, "app");
  auto meta = QueueMeta(qdir, "pgbaton", "copy/");
  EXPECT_EQ(meta["copy/phase/large_objects"], "done");
  EXPECT_EQ(meta["copy/large_objects"], "204");
  EXPECT_EQ(meta["copy/no_owner"], "false");
  EXPECT_NE(r.output.find("204 large objects on source, 0 on target: 204 created"),
            std::string::npos)
      << r.output;

  // Nothing differs: verify --large-objects agrees, and a sync has nothing to do.
  CommandResult v = Verify(*src, *dst, "app", "pgbaton", {"--large-objects"});
  EXPECT_EQ(v.exit_code, 0) << v.output;
  EXPECT_NE(v.output.find("0 missing on target, 0 differing, 0 only on target, 204 same"),
            std::string::npos)
      << v.output;

  // Changed on the source after the copy: reported by verify, brought over by the sync.
  ASSERT_TRUE(src->Exec("SELECT lo_put(50003, 4990, 'changed at the end'::bytea);"
                        "SELECT lo_unlink(50002);"
                        "SELECT lo_from_bytea(70001, 'new'::bytea);"
                        "GRANT SELECT ON LARGE OBJECT 60005 TO lo_reader;"
                        "COMMENT ON LARGE OBJECT 60006 IS 'now with a comment'",
                        "app")
                  .ok());
  v = Verify(*src, *dst, "app", "pgbaton", {"--large-objects", "--json"});
  EXPECT_EQ(v.exit_code, ExitCodeOf(ErrorCode::kVerifyMismatch)) << v.output;
  EXPECT_NE(v.output.find("\"missing\":1"), std::string::npos) << v.output;
  EXPECT_NE(v.output.find("\"differing\":3"), std::string::npos) << v.output;
  EXPECT_NE(v.output.find("\"extra\":1"), std::string::npos) << v.output;
  v = Verify(*src, *dst, "app", "pgbaton", {"--sync-large-objects"});
  EXPECT_EQ(v.exit_code, 0) << v.output;
  EXPECT_NE(v.output.find("1 created, 3 replaced, 1 unlinked"), std::string::npos) << v.output;
  ExpectSameLargeObjects(*src, *dst, "app");
}

INSTANTIATE_TEST_SUITE_P(Majors, CopyLargeObjectsTest,
                         ::testing::Values(Majors{15, 17}, Majors{13, 18}), [](const auto& info) {
                           return "From" + std::to_string(info.param.source) + "To" +
                                  std::to_string(info.param.target);
                         });

// kill -9 after some batches of large objects (and before any), then the same command.
TEST(CopyLargeObjectsCrashTest, KilledDuringLargeObjectsThenResumed) {
  auto src = StartServer(15);
  auto dst = StartServer(17);
  ASSERT_TRUE(src && dst);
  const std::vector<std::string> points = {"large-objects:2", "after-data", "after-large-objects"};
  for (size_t i = 0; i < points.size(); ++i) {
    SCOPED_TRACE("crash at " + points[i]);
    std::string db = "lo" + std::to_string(i);
    ASSERT_NO_FATAL_FAILURE(Prepare(*src, *dst, db, 600));
    QueueDir qdir;
    std::vector<std::string> flags = {"--jobs", "2", "--progress", "json"};
    std::vector<std::string> crash = flags;
    crash.insert(crash.end(), {"--crash-at", points[i]});
    CommandResult killed = RunCopy(*src, db, *dst, db, qdir, db, crash);
    ASSERT_EQ(killed.signal, SIGKILL) << killed.output;
    auto before = dst->Query("SELECT count(*) FROM pg_largeobject_metadata", db);
    ASSERT_TRUE(before.ok());
    if (points[i] == "large-objects:2") {
      // Two whole batches of 64 are on the target, not all of them.
      EXPECT_GE(std::stoi(*before), 128) << *before;
      EXPECT_LT(std::stoi(*before), 604) << *before;
    }
    CommandResult resumed = RunCopy(*src, db, *dst, db, qdir, db, flags);
    ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
    ExpectSameDatabase(*src, db, *dst, db);
    ExpectSameLargeObjects(*src, *dst, db);
    auto meta = QueueMeta(qdir, db, "copy/");
    EXPECT_EQ(meta["copy/phase/large_objects"], "done");
    EXPECT_EQ(meta["copy/large_objects"], "604");
  }
}

// --no-owner: the target's objects belong to the target user; ACLs and comments are kept.
TEST(CopyLargeObjectsTest, NoOwnerLeavesOwnersToTheTargetUser) {
  auto src = StartServer(15);
  auto dst = StartServer(17);
  ASSERT_TRUE(src && dst);
  ASSERT_NO_FATAL_FAILURE(Prepare(*src, *dst, "app", 20));
  QueueDir qdir;
  CommandResult r =
      RunCopy(*src, "app", *dst, "app", qdir, "pgbaton", {"--no-owner", "--progress", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(*dst->Query("SELECT count(*) FROM pg_largeobject_metadata m WHERE "
                        "pg_get_userbyid(m.lomowner) <> current_user",
                        "app"),
            "0");
  EXPECT_EQ(*dst->Query("SELECT count(*) FROM pg_largeobject_metadata", "app"), "24");
  EXPECT_EQ(*dst->Query("SELECT obj_description(50004, 'pg_largeobject')", "app"), "a few MB");
  EXPECT_EQ(*dst->Query("SELECT (lomacl::text LIKE '%lo_reader=r/%')::text FROM "
                        "pg_largeobject_metadata WHERE oid = 50003",
                        "app"),
            "true");
  CommandResult v = Verify(*src, *dst, "app", "pgbaton", {"--large-objects", "--no-owner"});
  EXPECT_EQ(v.exit_code, 0) << v.output;
}

// A target that already holds large objects is refused before anything is created.
TEST(CopyLargeObjectsTest, TargetWithLargeObjectsIsRefused) {
  auto pg = StartServer(15);
  ASSERT_TRUE(pg);
  CreateSourceSchema(*pg, "src");
  ASSERT_TRUE(pg->Exec("CREATE DATABASE dst").ok());
  ASSERT_TRUE(pg->Exec("SELECT lo_from_bytea(12345, 'x'::bytea)", "dst").ok());
  QueueDir qdir;
  CommandResult r = RunCopy(*pg, "src", *pg, "dst", qdir, "pgbaton", {"--progress", "json"});
  EXPECT_EQ(r.exit_code, ExitCodeOf(ErrorCode::kTargetNotEmpty)) << r.output;
  EXPECT_NE(r.output.find("already holds 1 large objects"), std::string::npos) << r.output;
  EXPECT_EQ(*pg->Query("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", "dst"), "0");
  EXPECT_EQ(*pg->Query("SELECT count(*) FROM pg_replication_slots"), "0");
}

}  // namespace
}  // namespace pgbaton::testing::copy

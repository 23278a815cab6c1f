// Large objects through a cutover (15 -> 17, 13 -> 18): logical decoding does not carry them, so
// the cutover re-syncs them, once before the fence (outside the write pause) and once inside it
// (after the drain, before the flip). Objects created, changed and unlinked on the source after
// the step before the fence (written here while the cutover is frozen just after fencing) are on
// the target identically after the flip. Prints what the step costs the write pause.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/support/cutover_fixture.h"
#include "tests/support/large_objects.h"

namespace pgbaton::testing::cutover {
namespace {

struct Majors {
  int source;
  int target;
};

nlohmann::json ParseReport(const CommandResult& r) {
  size_t brace = r.output.find('{');
  size_t end = r.output.find("\nstderr:");
  if (brace == std::string::npos) return {};
  auto j = nlohmann::json::parse(r.output.substr(brace, end - brace), nullptr, false);
  return j.is_discarded() ? nlohmann::json{} : j;
}

class CutoverLargeObjectsTest : public ::testing::TestWithParam<Majors> {};

TEST_P(CutoverLargeObjectsTest, ChangesSinceTheCopyAreResyncedInsideTheFence) {
  Migration m;
  {
    Status st = m.Start(GetParam().source, GetParam().target, false, kLargeObjectRolesSql);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  // 1004 large objects (1000 of 16 bytes) on the source, brought over before the cutover as a
  // DBA would (the copy does the same at its snapshot).
  {
    Status st = CreateLargeObjects(*m.source, "app", 1000);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  CommandResult sync = RunCommand({PgbatonBinary(), "verify", "--source", m.source->Conninfo("app"),
                                   "--target", m.target->Conninfo("app"), "--sync-large-objects"});
  ASSERT_EQ(sync.exit_code, 0) << sync.output;
  EXPECT_NE(sync.output.find("1004 created"), std::string::npos) << sync.output;
  ASSERT_EQ(*LargeObjectListing(*m.source, "app"), *LargeObjectListing(*m.target, "app"));

  // Ten changes made while the cutover is frozen right after fencing (a superuser session
  // overrides the read-only fence): the step before the fence has not seen them.
  auto change = [&] {
    // The read-only fence is a session default: set it off first, in a statement of its own (a
    // multi-statement string is one transaction, read-only from its start).
    auto c = m.source->Connect("app");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    ASSERT_TRUE(c->Run("SET default_transaction_read_only = off").ok());
    Status st = c->Run(
        "SELECT lo_put(50003, 10, 'changed'::bytea);"
        "SELECT lo_put(60001, 0, 'x'::bytea);"
        "SELECT lo_put(50004, 3000000, 'past the end of the last page'::bytea);"
        "SELECT lo_unlink(50002); SELECT lo_unlink(60003); SELECT lo_unlink(60004);"
        "SELECT lo_from_bytea(70001, 'created after the copy'::bytea);"
        "SELECT lo_from_bytea(70002, ''::bytea);"
        "GRANT SELECT ON LARGE OBJECT 60005 TO lo_reader;"
        "COMMENT ON LARGE OBJECT 60006 IS 'commented after the copy'");
    EXPECT_TRUE(st.ok()) << st.ToString();
  };
  bool paused = false;
  CommandResult r = m.CutoverPausedAt(
      {"--fence", "readonly", "--flip", "command:true", "--max-lag", "5s", "--json"}, "after-fence",
      change, &paused);
  ASSERT_TRUE(paused) << r.output;
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto report = ParseReport(r);
  ASSERT_TRUE(report.is_object()) << r.output;
  std::vector<std::string> names;
  int64_t presync_ms = -1, fence_ms = -1;
  std::string fence_detail;
  for (const auto& p : report["phases"]) {
    names.push_back(p["name"].get<std::string>());
    if (names.back() == "lo-presync") presync_ms = p["ms"].get<int64_t>();
    if (names.back() == "large-objects") {
      fence_ms = p["ms"].get<int64_t>();
      fence_detail = p["detail"].get<std::string>();
    }
  }
  std::vector<std::string> want = {"check", "lo-presync", "fence",         "bypass-check",
                                   "drain", "sequences",  "large-objects", "bypass-recheck",
                                   "flip",  "total"};
  EXPECT_EQ(names, want) << r.output;
  EXPECT_NE(fence_detail.find("1003 large objects on source, 1004 on target: 2 created, 5 "
                              "replaced, 3 unlinked, 996 unchanged"),
            std::string::npos)
      << fence_detail;
  EXPECT_EQ(report["large_objects"].get<int64_t>(), 1003);
  EXPECT_EQ(report["large_objects_synced"].get<int64_t>(), 10);
  EXPECT_EQ(*LargeObjectListing(*m.source, "app"), *LargeObjectListing(*m.target, "app"));
  std::printf(
      "large objects %d -> %d: before the fence (1004 unchanged) %lld ms; inside the fence "
      "(10 of 1004 changed) %lld ms; write pause %lld ms\n",
      GetParam().source, GetParam().target, static_cast<long long>(presync_ms),
      static_cast<long long>(fence_ms),
      static_cast<long long>(report["write_pause_ms"].get<int64_t>()));
}

INSTANTIATE_TEST_SUITE_P(Majors, CutoverLargeObjectsTest,
                         ::testing::Values(Majors{15, 17}, Majors{13, 18}), [](const auto& info) {
                           return "From" + std::to_string(info.param.source) + "To" +
                                  std::to_string(info.param.target);
                         });

}  // namespace
}  // namespace pgbaton::testing::cutover

// The cutover report's JSON against its documentation (docs/reference/commands.md, "pgbaton
// cutover"): the keys, when each optional one appears, and that numbers are JSON numbers.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "tools/cutover/cutover.h"

namespace pgbaton::tools::cutover {
namespace {

std::set<std::string> Keys(const nlohmann::json& j) {
  std::set<std::string> out;
  for (const auto& [k, v] : j.items()) out.insert(k);
  return out;
}

// The keys every report has, as documented.
const std::set<std::string> kAlways = {"id",
                                       "ok",
                                       "dry_run",
                                       "fence",
                                       "flip",
                                       "phases",
                                       "fence_undone",
                                       "write_pause_ms",
                                       "lag_ms",
                                       "lag_bytes",
                                       "sentinel_lsn",
                                       "sequences",
                                       "large_objects",
                                       "large_objects_synced"};

TEST(CutoverReportTest, SuccessfulCutoverHasTheDocumentedKeysAndTypes) {
  CutoverReport r;
  r.id = "20261204T191502Z-3fa9c1";
  r.ok = true;
  r.fence = "read-only default on database app";
  r.flip = "command true";
  r.phases = {{"check", 12, "lag 3 ms"}, {"fence", 40, ""}, {"total", 160, ""}};
  r.write_pause_ms = 120;
  r.lag_ms = 3;
  r.lag_bytes = 0;
  r.sentinel_lsn = Lsn(0x16B374D848ull);
  r.sequences = 2;
  r.stored_at = "queue \"/q\" metadata cutover/last";
  nlohmann::json j = r.ToJson();
  std::set<std::string> want = kAlways;
  want.insert("stored_at");
  EXPECT_EQ(Keys(j), want) << j.dump();
  EXPECT_TRUE(j["write_pause_ms"].is_number_integer());
  EXPECT_TRUE(j["lag_ms"].is_number_integer());
  EXPECT_TRUE(j["lag_bytes"].is_number_integer());
  EXPECT_TRUE(j["sequences"].is_number_integer());
  EXPECT_EQ(j["sentinel_lsn"], "16/B374D848");
  ASSERT_EQ(j["phases"].size(), 3u);
  EXPECT_EQ(j["phases"][2]["name"], "total");
  EXPECT_EQ(Keys(j["phases"][0]), (std::set<std::string>{"name", "ms", "detail"}));
  EXPECT_TRUE(j["phases"][0]["ms"].is_number_integer());
}

TEST(CutoverReportTest, OptionalKeysAppearOnlyWhenTheyApply) {
  CutoverReport dry;
  dry.dry_run = true;
  dry.ok = true;
  dry.plan = {"fence: ...", "flip: ..."};
  nlohmann::json d = dry.ToJson();
  std::set<std::string> want = kAlways;
  want.insert("plan");
  EXPECT_EQ(Keys(d), want) << d.dump();
  EXPECT_EQ(d["write_pause_ms"], -1);
  EXPECT_EQ(d["sentinel_lsn"], "");

  CutoverReport failed;
  failed.reverse_command = "pgbaton --name pgbaton_reverse run ...";
  failed.reverse_pid = 4242;
  failed.reverse_stopped = true;
  failed.fence_undone = true;
  failed.error = Status::Error(ErrorCode::kFlipFailed, "flip failed", "see the message");
  nlohmann::json f = failed.ToJson();
  want = kAlways;
  want.insert({"reverse", "error"});
  EXPECT_EQ(Keys(f), want) << f.dump();
  EXPECT_EQ(Keys(f["reverse"]), (std::set<std::string>{"command", "pid", "stopped"}));
  EXPECT_TRUE(f["reverse"]["pid"].is_number_integer());
  EXPECT_EQ(Keys(f["error"]), (std::set<std::string>{"code", "exit_code", "message", "hint"}));
  EXPECT_EQ(f["error"]["code"], "flip_failed");
  EXPECT_EQ(f["error"]["exit_code"], 73);
}

}  // namespace
}  // namespace pgbaton::tools::cutover

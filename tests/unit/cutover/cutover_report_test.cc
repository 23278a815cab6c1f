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

// A fleet's members and the fence verification's findings: in JSON as documented, and one line
// each in the text report.
TEST(CutoverReportTest, PoolersAndBypassingSessions) {
  CutoverReport r;
  r.fence_undone = true;
  PoolerMember a;
  a.name = "pgbouncer 1 (10.0.0.5:6432/pgbouncer)";
  a.database = "app";
  a.flip = "ini /etc/pgbouncer/a.ini";
  a.state = "resumed";
  a.flip_attempts = 1;
  PoolerMember b = a;
  b.name = "pgbouncer 2 (10.0.0.6:6432/pgbouncer)";
  b.state = "failed";
  b.points_at = "unknown";
  b.flip_attempts = 4;
  b.error = "flip command failed (exit code 7): ssh b";
  r.poolers = {a, b};
  BypassSession s;
  s.pid = 4711;
  s.user = "app";
  s.application = "cron-report";
  s.client = "10.0.3.9";
  s.state = "idle in transaction";
  r.bypassing = {s};
  r.error = Status::Error(ErrorCode::kFenceBypassed, "fence bypassed: ...", "...");
  nlohmann::json j = r.ToJson();
  std::set<std::string> want = kAlways;
  want.insert({"poolers", "bypassing", "error"});
  EXPECT_EQ(Keys(j), want) << j.dump();
  ASSERT_EQ(j["poolers"].size(), 2u);
  EXPECT_EQ(Keys(j["poolers"][1]), (std::set<std::string>{"name", "database", "flip", "state",
                                                          "points_at", "flip_attempts", "error"}));
  EXPECT_TRUE(j["poolers"][1]["flip_attempts"].is_number_integer());
  EXPECT_EQ(j["poolers"][1]["points_at"], "unknown");
  EXPECT_EQ(Keys(j["bypassing"][0]),
            (std::set<std::string>{"pid", "user", "application", "client", "state", "terminated"}));
  EXPECT_TRUE(j["bypassing"][0]["pid"].is_number_integer());
  EXPECT_EQ(j["error"]["code"], "fence_bypassed");
  EXPECT_EQ(j["error"]["exit_code"], 74);
  std::string text = r.ToText();
  EXPECT_NE(text.find("pgbouncer 1 (10.0.0.5:6432/pgbouncer): resumed, points at the old cluster"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("pgbouncer 2 (10.0.0.6:6432/pgbouncer): failed, points at unknown, 4 flip "
                      "attempts (flip command failed (exit code 7): ssh b)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("bypassing the fence: pid 4711 user \"app\" application \"cron-report\" "
                      "from 10.0.3.9 (idle in transaction)"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace pgbaton::tools::cutover

// The copy's protection flags as `copy` and `migrate` take them (tools/initial_copy/copy_flags.h):
// parsed from a command line into CopyOptions, bad values refused with kUsage naming the flag.
#include "tools/initial_copy/copy_flags.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pgbaton::tools::copy {
namespace {

// `args` parsed as a command's flags, then resolved.
Status Parse(CopyFlags* flags, std::vector<std::string> args) {
  CLI::App app;
  flags->Register(&app);
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes argv reversed
  app.parse(reversed);
  return flags->Resolve();
}

TEST(CopyFlagsTest, MaxCopyRateTakesSizesPerSecond) {
  struct Case {
    const char* text;
    uint64_t bytes;
  };
  for (const Case& c : std::vector<Case>{{"50MB", 50ull << 20},
                                         {"50MB/s", 50ull << 20},
                                         {"1GiB", 1ull << 30},
                                         {"1.5GB/s", 3ull << 29},
                                         {"4000000", 4000000},
                                         {"0", 0}}) {
    CopyFlags f;
    Status st = Parse(&f, {"--max-copy-rate", c.text});
    ASSERT_TRUE(st.ok()) << c.text << ": " << st.ToString();
    EXPECT_EQ(f.options.max_copy_rate, c.bytes) << c.text;
  }
  CopyFlags none;
  ASSERT_TRUE(Parse(&none, {}).ok());
  EXPECT_EQ(none.options.max_copy_rate, 0u);  // absent: no cap
  EXPECT_FALSE(none.options.source_load.any());
}

TEST(CopyFlagsTest, BadRateIsAUsageErrorNamingTheFlag) {
  for (const char* bad : {"fast", "-5MB", "5PB", "MB/s", "5MB/min", "5 MB/ s"}) {
    CopyFlags f;
    Status st = Parse(&f, {std::string("--max-copy-rate=") + bad});
    ASSERT_FALSE(st.ok()) << bad;
    EXPECT_EQ(st.code(), ErrorCode::kUsage);
    EXPECT_EQ(st.exit_code(), 2);
    EXPECT_NE(st.message().find("--max-copy-rate"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find(std::string("\"") + bad + "\""), std::string::npos) << st.message();
  }
}

TEST(CopyFlagsTest, SourceLoadLimitReachesTheOptions) {
  CopyFlags f;
  ASSERT_TRUE(Parse(&f, {"--source-load-limit", "active-sessions=32,standby-lag=10s",
                         "--max-copy-rate", "8MB"})
                  .ok());
  EXPECT_EQ(f.options.source_load.active_sessions, 32);
  EXPECT_EQ(f.options.source_load.standby_lag, std::chrono::milliseconds(10000));
  EXPECT_EQ(f.options.max_copy_rate, 8ull << 20);

  CopyFlags bad;
  Status st = Parse(&bad, {"--source-load-limit", "active-sessions=many"});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), ErrorCode::kUsage);
  EXPECT_NE(st.message().find("--source-load-limit"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace pgbaton::tools::copy

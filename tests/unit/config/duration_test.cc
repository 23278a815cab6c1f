// Durations on the command line (tools/config/duration.h).
#include "tools/config/duration.h"

#include <gtest/gtest.h>

namespace pgbaton::tools {
namespace {

using std::chrono::milliseconds;

TEST(DurationTest, Units) {
  EXPECT_EQ(ParseDuration("1s"), milliseconds(1000));
  EXPECT_EQ(ParseDuration("1.5"), milliseconds(1500));
  EXPECT_EQ(ParseDuration("500ms"), milliseconds(500));
  EXPECT_EQ(ParseDuration("2m"), milliseconds(120000));
  EXPECT_EQ(ParseDuration("1min"), milliseconds(60000));
  EXPECT_EQ(ParseDuration("0"), milliseconds(0));
}

TEST(DurationTest, NotADuration) {
  for (const char* bad : {"", "s", "fast", "1h", "1 s", "-1s", "2ms3"}) {
    EXPECT_EQ(ParseDuration(bad), std::nullopt) << bad;
  }
}

}  // namespace
}  // namespace pgbaton::tools

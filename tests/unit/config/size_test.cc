// Sizes on the command line (tools/config/size.h).
#include "tools/config/size.h"

#include <gtest/gtest.h>

namespace pgbaton::tools {
namespace {

TEST(SizeTest, UnitsArePowersOf1024AsInPostgresqlConf) {
  EXPECT_EQ(ParseSize("100"), 100u);
  EXPECT_EQ(ParseSize("100B"), 100u);
  EXPECT_EQ(ParseSize("512kB"), 512u << 10);
  EXPECT_EQ(ParseSize("50MB"), 50u << 20);
  EXPECT_EQ(ParseSize("50MiB"), 50u << 20);
  EXPECT_EQ(ParseSize("50mb"), 50u << 20);
  EXPECT_EQ(ParseSize("50M"), 50u << 20);
  EXPECT_EQ(ParseSize("50 MB"), 50u << 20);
  EXPECT_EQ(ParseSize("1GiB"), uint64_t{1} << 30);
  EXPECT_EQ(ParseSize("2TB"), uint64_t{2} << 40);
  EXPECT_EQ(ParseSize("0"), 0u);
}

TEST(SizeTest, FractionsRoundDown) {
  EXPECT_EQ(ParseSize("1.5GiB"), uint64_t{3} << 29);
  EXPECT_EQ(ParseSize("0.5kB"), 512u);
  EXPECT_EQ(ParseSize("1.0001"), 1u);
  EXPECT_EQ(ParseSize(".5MB"), 512u << 10);
}

TEST(SizeTest, NotASize) {
  for (const char* bad : {"", "MB", "fast", "-1MB", "1e6", "0x10", " 5MB", "5MB/s", "5 PB", "1.2.3",
                          "inf", "nan", "5XB", "99999999999999999999", "9000000TB"}) {
    EXPECT_EQ(ParseSize(bad), std::nullopt) << bad;
  }
}

}  // namespace
}  // namespace pgbaton::tools

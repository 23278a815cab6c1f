// migrate's ETA to caught up, from two backlog measurements.
#include <gtest/gtest.h>

#include "tools/migrate/catch_up.h"

namespace pgbaton::tools::migrate {
namespace {

TEST(CatchUpEtaTest, ABacklogShrinkingByHalfItsSizePerIntervalIsGoneInOneMore) {
  // 60 s behind, then 30 s behind 10 s later: 3 s of backlog gone per second, 30 s left.
  auto eta = CatchUpEtaSeconds(60, 30, 10);
  ASSERT_TRUE(eta.has_value());
  EXPECT_DOUBLE_EQ(*eta, 10.0);
}

TEST(CatchUpEtaTest, ABacklogThatDoesNotShrinkHasNoEstimate) {
  EXPECT_FALSE(CatchUpEtaSeconds(30, 30, 10).has_value());
  EXPECT_FALSE(CatchUpEtaSeconds(30, 45, 10).has_value());
  EXPECT_FALSE(CatchUpEtaSeconds(30, 20, 0).has_value());
}

TEST(CatchUpEtaTest, NoBacklogIsCaughtUpNow) {
  auto eta = CatchUpEtaSeconds(5, 0, 10);
  ASSERT_TRUE(eta.has_value());
  EXPECT_DOUBLE_EQ(*eta, 0.0);
}

}  // namespace
}  // namespace pgbaton::tools::migrate

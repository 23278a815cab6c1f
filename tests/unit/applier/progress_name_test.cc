// The origin and progress-row names of one migration: "<name>" and "<name>-<k>", never another
// migration's whose name starts the same way.
#include <gtest/gtest.h>

#include "applier/progress.h"

namespace pgbaton::applier {
namespace {

TEST(ProgressNameTest, OursAreTheNameAndItsNumberedConnections) {
  EXPECT_TRUE(IsProgressName("app", "app"));
  EXPECT_TRUE(IsProgressName("app", "app-1"));
  EXPECT_TRUE(IsProgressName("app", "app-12"));
  EXPECT_TRUE(IsProgressName("app-old", "app-old-3"));
}

TEST(ProgressNameTest, OtherMigrationsAreNotOurs) {
  EXPECT_FALSE(IsProgressName("app", "app-"));
  EXPECT_FALSE(IsProgressName("app", "app-old"));
  EXPECT_FALSE(IsProgressName("app", "app-1x"));
  EXPECT_FALSE(IsProgressName("app", "app1"));
  EXPECT_FALSE(IsProgressName("app", "ap"));
  EXPECT_FALSE(IsProgressName("app", "other-1"));
  EXPECT_FALSE(IsProgressName("app-old", "app"));
}

}  // namespace
}  // namespace pgbaton::applier

// TableFilter: --include/--exclude globs on schema.table.
#include <gtest/gtest.h>

#include "tools/initial_copy/catalog.h"

namespace pgbaton::tools::copy {
namespace {

TEST(TableFilterTest, NoPatternsSelectEverything) {
  TableFilter f({}, {});
  EXPECT_FALSE(f.filtering());
  EXPECT_TRUE(f.Selects("public", "a"));
  EXPECT_TRUE(f.Selects("sales", "order_1"));
}

TEST(TableFilterTest, IncludeThenExclude) {
  TableFilter f({"public.*", "sales.order_*"}, {"public.skip_*"});
  EXPECT_TRUE(f.filtering());
  EXPECT_TRUE(f.Selects("public", "a"));
  EXPECT_FALSE(f.Selects("public", "skip_me"));
  EXPECT_TRUE(f.Selects("sales", "order_2024"));
  EXPECT_FALSE(f.Selects("sales", "other"));
  EXPECT_FALSE(f.Selects("publicx", "a"));
}

TEST(TableFilterTest, PatternWithoutDotMatchesTheTableInAnySchema) {
  TableFilter f({}, {"audit_*"});
  EXPECT_FALSE(f.Selects("public", "audit_log"));
  EXPECT_FALSE(f.Selects("sales", "audit_2024"));
  EXPECT_TRUE(f.Selects("public", "orders"));
}

TEST(TableFilterTest, ClassesAndSingleCharacters) {
  TableFilter f({"s.t[0-9]", "s.x?"}, {});
  EXPECT_TRUE(f.Selects("s", "t7"));
  EXPECT_FALSE(f.Selects("s", "ta"));
  EXPECT_TRUE(f.Selects("s", "xy"));
  EXPECT_FALSE(f.Selects("s", "xyz"));
}

}  // namespace
}  // namespace pgbaton::tools::copy

// Cluster mode's names: each database's migration name is a valid slot name, distinct for
// distinct databases, and the same every time for the same database.
#include "tools/common/cluster.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>

namespace pgbaton::tools {
namespace {

TEST(ClusterMemberNameTest, PlainNamesAreKeptAndOthersGetAHashOfTheRealName) {
  EXPECT_EQ(ClusterMemberName("pgbaton", "app"), "pgbaton_app");
  EXPECT_EQ(ClusterMemberName("pgbaton", "select"), "pgbaton_select");
  const std::string shop = ClusterMemberName("pgbaton", "Shop Data");
  EXPECT_TRUE(std::regex_match(shop, std::regex("pgbaton_shop_data_[0-9a-f]{8}"))) << shop;
  EXPECT_EQ(shop, ClusterMemberName("pgbaton", "Shop Data"));  // stable
  // Spelled alike once lowercased, but different databases: different names.
  EXPECT_NE(ClusterMemberName("pgbaton", "shop_data"), shop);
  EXPECT_NE(ClusterMemberName("pgbaton", "Shop_Data"), ClusterMemberName("pgbaton", "SHOP_DATA"));
}

TEST(ClusterMemberNameTest, EveryNameIsAValidSlotNameOfAtMost63Bytes) {
  const std::regex slot("[a-z0-9_]{1,63}");
  std::set<std::string> seen;
  for (const std::string& db :
       {std::string("app"), std::string("Sales \"Q1\""), std::string("día"), std::string(100, 'a'),
        std::string(100, 'a') + "b", std::string("a-b.c"), std::string("x") + std::string(70, 'Z'),
        std::string("")}) {
    const std::string n = ClusterMemberName("pgbaton", db);
    EXPECT_TRUE(std::regex_match(n, slot)) << db << " -> " << n;
    EXPECT_TRUE(seen.insert(n).second) << db << " -> " << n << " twice";
  }
}

}  // namespace
}  // namespace pgbaton::tools

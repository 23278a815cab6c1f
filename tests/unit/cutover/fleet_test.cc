// The fleet's member list: --fence pgbouncer: repeated with --pgbouncer-ini / --pgbouncer-flip-cmd
// in the same order, and [[cutover.pgbouncer]] tables from the config file.
#include "tools/cutover/fleet.h"

#include <gtest/gtest.h>

namespace pgbaton::tools::cutover {
namespace {

TEST(FleetMembersTest, ListsPairUpInOrderAndConfigMembersFollow) {
  auto m = AssembleMembers({"host=a", "host=b", "host=c"}, {"/a.ini", "/b.ini", ""},
                           {"", "", "ssh c flip"}, {{"host=d", "/d.ini", ""}});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->size(), 4u);
  EXPECT_EQ((*m)[0].admin, "host=a");
  EXPECT_EQ((*m)[1].ini, "/b.ini");
  EXPECT_EQ((*m)[2].ini, "");
  EXPECT_EQ((*m)[2].flip_cmd, "ssh c flip");
  EXPECT_EQ((*m)[3].admin, "host=d");
  // One member, today's single PgBouncer: --pgbouncer-ini once.
  auto one = AssembleMembers({"host=a"}, {"/a.ini"}, {}, {});
  ASSERT_TRUE(one.ok());
  EXPECT_EQ((*one)[0].ini, "/a.ini");
}

TEST(FleetMembersTest, ListOfAnotherLengthIsAUsageErrorNamingTheCounts) {
  auto m = AssembleMembers({"host=a", "host=b"}, {"/a.ini"}, {}, {});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), ErrorCode::kUsage);
  EXPECT_NE(m.status().message().find("--pgbouncer-ini is given 1 times for 2"), std::string::npos)
      << m.status().message();
}

TEST(FleetMembersTest, EachMemberNeedsOneWayToFlip) {
  StrategyContext ctx;
  ctx.target_conninfo = "host=new port=5432 dbname=app";
  auto both = MakeFleet({{"host=a", "/a.ini", "ssh a"}}, "app", ctx);
  ASSERT_TRUE(both.ok());
  auto flip = MakeFleetFlip(both->get());
  ASSERT_FALSE(flip.ok());
  EXPECT_NE(flip.status().message().find("both an ini and a flip command"), std::string::npos);
  auto none = MakeFleet({{"host=a", "", ""}, {"host=b", "/b.ini", ""}}, "app", ctx);
  ASSERT_TRUE(none.ok());
  flip = MakeFleetFlip(none->get());
  ASSERT_FALSE(flip.ok());
  EXPECT_NE(flip.status().message().find("pgbouncer 1"), std::string::npos)
      << flip.status().message();
  auto fine = MakeFleet({{"host=a", "", "ssh a"}, {"host=b", "/b.ini", ""}}, "app", ctx);
  ASSERT_TRUE(fine.ok());
  EXPECT_TRUE(MakeFleetFlip(fine->get()).ok());
  EXPECT_EQ((*fine)->Members().size(), 2u);
  EXPECT_EQ((*fine)->Members()[1].flip, "ini /b.ini");
}

TEST(FleetMembersTest, ConfigTableKeys) {
  auto m = ParseMemberJson(R"({"admin": "host=a", "flip_cmd": "ssh a"})");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->admin, "host=a");
  EXPECT_EQ(m->flip_cmd, "ssh a");
  auto bad = ParseMemberJson(R"({"admin": "host=a", "inifile": "/x"})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("unknown key \"inifile\""), std::string::npos);
  EXPECT_FALSE(ParseMemberJson(R"({"admin": 5})").ok());
}

}  // namespace
}  // namespace pgbaton::tools::cutover

// AclStatements: the normalized ACL of a large object (tools/initial_copy/large_objects.h) back
// into the REVOKE and GRANT statements that rebuild it on a fresh object.
#include <gtest/gtest.h>

#include "tools/initial_copy/large_objects.h"

namespace pgbaton::tools::copy {
namespace {

std::vector<std::string> Statements(const std::string& acl, const std::string& owner = "alice") {
  auto r = AclStatements(42, acl, owner);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::vector<std::string>{};
}

TEST(LargeObjectAcl, DefaultNeedsNothing) { EXPECT_TRUE(Statements("=:SELECT,=:UPDATE").empty()); }

TEST(LargeObjectAcl, GrantsToRolesPublicAndTheOwner) {
  EXPECT_EQ(
      Statements("=:SELECT,=:UPDATE,PUBLIC:SELECT,reader:SELECT*"),
      (std::vector<std::string>{
          "REVOKE ALL ON LARGE OBJECT 42 FROM alice", "GRANT SELECT ON LARGE OBJECT 42 TO alice",
          "GRANT UPDATE ON LARGE OBJECT 42 TO alice", "GRANT SELECT ON LARGE OBJECT 42 TO PUBLIC",
          "GRANT SELECT ON LARGE OBJECT 42 TO reader WITH GRANT OPTION"}));
}

TEST(LargeObjectAcl, EverythingRevokedLeavesOnlyTheRevoke) {
  EXPECT_EQ(Statements("", "CURRENT_USER"),
            (std::vector<std::string>{"REVOKE ALL ON LARGE OBJECT 42 FROM CURRENT_USER"}));
}

TEST(LargeObjectAcl, QuotedNamesKeepCommasColonsAndQuotes) {
  EXPECT_EQ(Statements("\"a,b:c\"\"d\":UPDATE,=:SELECT", "\"Owner\""),
            (std::vector<std::string>{"REVOKE ALL ON LARGE OBJECT 42 FROM \"Owner\"",
                                      "GRANT UPDATE ON LARGE OBJECT 42 TO \"a,b:c\"\"d\"",
                                      "GRANT SELECT ON LARGE OBJECT 42 TO \"Owner\""}));
}

TEST(LargeObjectAcl, MalformedIsAnInternalError) {
  for (const char* bad : {"reader", "reader:DELETE", "\"open:SELECT", ":SELECT"}) {
    auto r = AclStatements(42, bad, "alice");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kInternal) << bad;
  }
}

}  // namespace
}  // namespace pgbaton::tools::copy

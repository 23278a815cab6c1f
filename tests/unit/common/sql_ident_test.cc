// The one identifier-quoting rule for code without a connection, checked against libpq's
// PQescapeIdentifier (what PgConn::QuoteIdent uses): both always quote and double `"`.
#include "common/sql_ident.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

namespace pgbaton {
namespace {

TEST(SqlIdentTest, AlwaysQuotesLikeLibpq) {
  // PQescapeIdentifier needs no live connection for UTF-8-free input when given a PGconn from
  // PQconnectStart of an unreachable address: it only reads the client encoding.
  PGconn* conn = PQconnectStart("host=/nonexistent-socket-dir dbname=x");
  ASSERT_NE(conn, nullptr);
  for (const char* id : {"id", "user", "Order", "Shop Data", "a.b", "a\"b", "it's", "back\\slash",
                         "", "x\"\"y", "select"}) {
    char* q = PQescapeIdentifier(conn, id, std::string_view(id).size());
    ASSERT_NE(q, nullptr) << id;
    EXPECT_EQ(QuoteIdent(id), q) << id;
    PQfreemem(q);
  }
  PQfinish(conn);
  EXPECT_EQ(QuoteIdent("user"), "\"user\"");
  EXPECT_EQ(QuoteIdent("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(QuoteQualified("Shop Data", "address"), "\"Shop Data\".\"address\"");
  EXPECT_EQ(QuoteQualified(QualifiedName{"a.b", "c"}), "\"a.b\".\"c\"");
}

TEST(SqlIdentTest, ParsesWhatOperatorsType) {
  auto p = ParseQualifiedName("public.accounts", "public", "--tables");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, (QualifiedName{"public", "accounts"}));
  p = ParseQualifiedName("accounts", "public", "--tables");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, (QualifiedName{"public", "accounts"}));
  p = ParseQualifiedName("\"Shop Data\".\"a.b\"\"c\"", "public", "--tables");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, (QualifiedName{"Shop Data", "a.b\"c"}));
  for (const char* bad : {"a.b.c", "\"open", ".x", "x.", ""}) {
    auto r = ParseQualifiedName(bad, "public", "--tables");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kUsage);
    EXPECT_NE(r.status().message().find("--tables"), std::string::npos);
  }
}

}  // namespace
}  // namespace pgbaton

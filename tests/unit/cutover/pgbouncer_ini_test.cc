// The pgbouncer.ini rewrite of the cutover flip: only the named entry's host/port/dbname change.
#include "tools/cutover/pgbouncer_ini.h"

#include <gtest/gtest.h>

namespace pgbaton::tools::cutover {
namespace {

const char* kIni =
    "; comment\n"
    "[databases]\n"
    "other = host=10.0.0.9 port=5432 dbname=other\n"
    "app = host=10.0.0.1 port=5432 dbname=app pool_size=40 user=app_rw\r\n"
    "\"quoted db\" = host=10.0.0.1 application_name='a b'\n"
    "* = host=10.0.0.7\n"
    "\n"
    "[pgbouncer]\n"
    "app = not a database\n";

TEST(PgBouncerIni, RewritesOnlyTheNamedEntry) {
  auto out = RewriteBouncerEntry(kIni, "app", {{"host", "10.0.0.2"}, {"port", "6543"}});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  std::string want = kIni;
  want.replace(want.find("app = host=10.0.0.1 port=5432"), 29, "app = host=10.0.0.2 port=6543");
  EXPECT_EQ(*out, want);
}

TEST(PgBouncerIni, KeepsQuotedValuesAndAppendsMissingKeys) {
  auto out = RewriteBouncerEntry(kIni, "quoted db", {{"port", "7000"}});
  ASSERT_TRUE(out.ok());
  EXPECT_NE(out->find("\"quoted db\" = host=10.0.0.1 application_name='a b' port=7000\n"),
            std::string::npos)
      << *out;
}

TEST(PgBouncerIni, MissingEntryIsNotFound) {
  auto out = RewriteBouncerEntry(kIni, "nope", {{"port", "1"}});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(out.status().message().find("\"nope\""), std::string::npos);
}

TEST(PgBouncerIni, ParsesAndFormatsEntries) {
  auto kv = ParseBouncerEntry("host=a port=1 password='it''s x'");
  ASSERT_TRUE(kv.ok());
  ASSERT_EQ(kv->size(), 3u);
  EXPECT_EQ((*kv)[2].second, "it's x");
  EXPECT_EQ(FormatBouncerEntry(*kv), "host=a port=1 password='it''s x'");
  EXPECT_FALSE(ParseBouncerEntry("host='a").ok());
}

}  // namespace
}  // namespace pgbaton::tools::cutover

// The SQL `globals --apply` runs, per target major: quoting of awkward names, role attributes,
// membership options (per-grant INHERIT/SET from 16 only), locale providers.
#include "tools/globals_sync/sql.h"

#include <gtest/gtest.h>

namespace pgbaton::tools::globals {
namespace {

TEST(GlobalsSql, LiteralDoublesQuotes) {
  EXPECT_EQ(Literal("it's"), "'it''s'");
  EXPECT_EQ(Literal(""), "''");
}

TEST(GlobalsSql, RoleAttributesAreAllSpelledOut) {
  Role r;
  r.name = "quo\"te";
  r.login = true;
  r.createdb = true;
  r.connection_limit = 5;
  r.valid_until = "2031-01-01 00:00:00+00";
  EXPECT_EQ(CreateRoleSql(r, false),
            "CREATE ROLE \"quo\"\"te\" WITH NOSUPERUSER INHERIT NOCREATEROLE CREATEDB LOGIN "
            "NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 5 VALID UNTIL '2031-01-01 00:00:00+00'");
  // Held: NOLOGIN whatever the source says.
  EXPECT_NE(CreateRoleSql(r, true).find(" NOLOGIN "), std::string::npos);
  r.valid_until.reset();
  EXPECT_NE(AlterRoleSql(r, false).find("VALID UNTIL 'infinity'"), std::string::npos);
}

TEST(GlobalsSql, PasswordVerifierIsStoredAsItIs) {
  EXPECT_EQ(RolePasswordSql("select", std::string("SCRAM-SHA-256$4096:abc$x:y")),
            "ALTER ROLE \"select\" PASSWORD 'SCRAM-SHA-256$4096:abc$x:y'");
  EXPECT_EQ(RolePasswordSql("a", std::nullopt), "ALTER ROLE \"a\" PASSWORD NULL");
}

TEST(GlobalsSql, Settings) {
  EXPECT_EQ(SetSql("team_01", {"", "statement_timeout", "1s"}),
            "ALTER ROLE \"team_01\" SET statement_timeout = '1s'");
  EXPECT_EQ(SetSql("with space", {"app one", "work_mem", "64MB"}),
            "ALTER ROLE \"with space\" IN DATABASE \"app one\" SET work_mem = '64MB'");
  // A list setting keeps its stored, already quoted form.
  EXPECT_EQ(DatabaseSetSql("app", {"", "search_path", "\"$user\", public"}),
            "ALTER DATABASE \"app\" SET search_path = \"$user\", public");
  EXPECT_EQ(ResetSql("r", {"", "myapp.tenant", "x"}), "ALTER ROLE \"r\" RESET myapp.tenant");
  EXPECT_EQ(DatabaseResetSql("Mixed Case", {"", "DateStyle", "x"}),
            "ALTER DATABASE \"Mixed Case\" RESET \"DateStyle\"");
}

TEST(GlobalsSql, MembershipOptionsFollowTheTargetMajor) {
  Membership m{"team", "team_01", "postgres", true, false, true};
  EXPECT_EQ(GrantSql(m, 17),
            "GRANT \"team\" TO \"team_01\" WITH ADMIN TRUE, INHERIT FALSE, SET TRUE");
  EXPECT_EQ(GrantSql(m, 15), "GRANT \"team\" TO \"team_01\" WITH ADMIN OPTION");
  m.admin = false;
  EXPECT_EQ(GrantSql(m, 13), "GRANT \"team\" TO \"team_01\"");
  EXPECT_EQ(RevokeSql(m, 16), "REVOKE \"team\" FROM \"team_01\" GRANTED BY \"postgres\"");
  EXPECT_EQ(RevokeSql(m, 15), "REVOKE \"team\" FROM \"team_01\"");
}

TEST(GlobalsSql, CreateDatabasePerProviderAndMajor) {
  Database d;
  d.name = "app";
  d.encoding = "UTF8";
  d.collate = d.ctype = "C.utf8";
  auto libc = CreateDatabaseSql(d, "", 17);
  ASSERT_TRUE(libc.ok());
  EXPECT_EQ(*libc,
            "CREATE DATABASE \"app\" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C.utf8' "
            "LC_CTYPE 'C.utf8' LOCALE_PROVIDER libc");
  auto old = CreateDatabaseSql(d, "fast", 13);
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->find("LOCALE_PROVIDER"), std::string::npos);
  EXPECT_NE(old->find(" TABLESPACE \"fast\""), std::string::npos);
  d.provider = 'i';
  d.locale = "und-u-kn";
  auto icu = CreateDatabaseSql(d, "", 15);
  ASSERT_TRUE(icu.ok());
  EXPECT_NE(icu->find("LOCALE_PROVIDER icu ICU_LOCALE 'und-u-kn'"), std::string::npos);
  EXPECT_EQ(CreateDatabaseSql(d, "", 13).status().code(), ErrorCode::kGlobalsUnsupported);
  d.provider = 'b';
  d.locale = "C.UTF-8";
  EXPECT_EQ(CreateDatabaseSql(d, "", 16).status().code(), ErrorCode::kGlobalsUnsupported);
  auto builtin = CreateDatabaseSql(d, "", 18);
  ASSERT_TRUE(builtin.ok());
  EXPECT_NE(builtin->find("LOCALE_PROVIDER builtin BUILTIN_LOCALE 'C.UTF-8'"), std::string::npos);
}

TEST(GlobalsSql, DatabaseAcl) {
  EXPECT_EQ(GrantDatabaseSql("with space", {"", "CONNECT", false}),
            "GRANT CONNECT ON DATABASE \"with space\" TO PUBLIC");
  EXPECT_EQ(GrantDatabaseSql("d", {"select", "CREATE", true}),
            "GRANT CREATE ON DATABASE \"d\" TO \"select\" WITH GRANT OPTION");
  EXPECT_EQ(RevokeDatabaseSql("d", {"", "TEMPORARY", false}),
            "REVOKE TEMPORARY ON DATABASE \"d\" FROM PUBLIC CASCADE");
}

}  // namespace
}  // namespace pgbaton::tools::globals

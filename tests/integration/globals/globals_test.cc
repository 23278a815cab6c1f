// `pgbaton globals` against real servers, 15 -> 17 and 13 -> 18: the issue's role scheme (a
// NOLOGIN group `team`, `team_01` LOGIN and `team_02` NOLOGIN in it, statement_timeout on each),
// every role attribute, names that need quotes, three databases with other owners, settings,
// ACLs and comments. After --apply the target's catalogues say what the source's say, a client
// logs in on the new cluster with the old password, and a second run finds nothing; drift on
// the source is reported and levelled; held logins, an unmapped tablespace, a source role that
// may not read pg_authid and a locale the target lacks each take their own path.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/support/pg_server.h"
#include "tests/support/pg_test.h"
#include "tests/support/process.h"

namespace pgbaton::testing {
namespace {

struct Pair {
  int source;
  int target;
};

// Roles first (CREATE DATABASE cannot share a multi-statement string), then each database, then
// what refers to the databases.
constexpr const char* kRoles = R"sql(
SET password_encryption = 'scram-sha-256';
CREATE ROLE team NOLOGIN;
CREATE ROLE team_01 LOGIN PASSWORD 'pw-team-01' IN ROLE team;
CREATE ROLE team_02 NOLOGIN IN ROLE team;
ALTER ROLE team_01 SET statement_timeout = '1s';
ALTER ROLE team_02 SET statement_timeout = '1s';
SET password_encryption = 'md5';
CREATE ROLE "Mixed Case" LOGIN SUPERUSER CREATEDB CREATEROLE REPLICATION BYPASSRLS
  CONNECTION LIMIT 3 VALID UNTIL '2031-06-01 12:00:00+00' PASSWORD 'pw mixed''s';
CREATE ROLE "with space" NOINHERIT LOGIN;
CREATE ROLE "quo""te" NOLOGIN;
CREATE ROLE "select" LOGIN CONNECTION LIMIT 0;
GRANT team TO "with space";
GRANT "quo""te" TO "select" WITH ADMIN OPTION;
GRANT pg_monitor TO "select";
ALTER ROLE "select" SET search_path = "$user", public;
COMMENT ON ROLE team IS 'the team''s group';
COMMENT ON ROLE "with space" IS 'spaced out';
)sql";

constexpr const char* kDatabases[] = {
    "CREATE DATABASE \"app one\" OWNER team",
    "CREATE DATABASE \"Billing\" OWNER \"Mixed Case\"",
    "CREATE DATABASE \"select\" OWNER \"select\"",
};

constexpr const char* kDatabaseProperties = R"sql(
ALTER DATABASE "app one" SET work_mem = '8MB';
ALTER DATABASE "Billing" SET search_path = "$user", public, billing;
ALTER DATABASE "select" CONNECTION LIMIT 20;
REVOKE ALL ON DATABASE "Billing" FROM PUBLIC;
GRANT CONNECT ON DATABASE "Billing" TO team;
GRANT CREATE ON DATABASE "app one" TO "with space" WITH GRANT OPTION;
COMMENT ON DATABASE "app one" IS 'app data';
COMMENT ON DATABASE "Billing" IS 'money';
ALTER ROLE "with space" IN DATABASE "app one" SET work_mem = '16MB';
)sql";

// What must be equal on both sides, as one text per catalogue.
constexpr const char* kRolesQuery = R"sql(
select string_agg(format('%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s', rolname, rolsuper, rolinherit,
  rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls, rolconnlimit,
  to_char(rolvaliduntil at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'), rolpassword,
  shobj_description(oid, 'pg_authid')), E'\n' order by rolname)
from pg_authid where oid >= 16384
)sql";
constexpr const char* kSettingsQuery = R"sql(
select string_agg(x, E'\n' order by x) from (
  select coalesce(r.rolname, '') || '@' || coalesce(d.datname, '') || ':' ||
         array_to_string(s.setconfig, ',') as x
  from pg_db_role_setting s left join pg_roles r on r.oid = s.setrole
  left join pg_database d on d.oid = s.setdatabase) s
)sql";
constexpr const char* kMembersQuery = R"sql(
select string_agg(r.rolname || '>' || m.rolname || ':' || am.admin_option, E'\n'
                  order by r.rolname, m.rolname)
from pg_auth_members am join pg_roles r on r.oid = am.roleid join pg_roles m on m.oid = am.member
where m.oid >= 16384
)sql";
constexpr const char* kDatabasesQuery = R"sql(
select string_agg(format('%s|%s|%s|%s|%s|%s|%s', d.datname, pg_get_userbyid(d.datdba),
  d.datconnlimit, pg_encoding_to_char(d.encoding), d.datcollate,
  shobj_description(d.oid, 'pg_database'),
  (select string_agg(coalesce(g.rolname, 'PUBLIC') || '=' || a.privilege_type || a.is_grantable,
                     ',' order by 1)
   from aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
   left join pg_roles g on g.oid = a.grantee)), E'\n' order by d.datname)
from pg_database d where d.datname not like 'template%'
)sql";

class GlobalsTest : public ::testing::TestWithParam<Pair> {
 protected:
  // Source and target of the pair; `target_hba` goes in front of the target's pg_hba.conf.
  void Start(const std::string& target_hba = "") {
    source_ = StartServer(GetParam().source);
    target_ = StartServer(GetParam().target, {.hba_prefix = target_hba});
    ASSERT_TRUE(source_ && target_);
  }

  void MakeScheme() {
    Status s = source_->Exec(kRoles);
    ASSERT_TRUE(s.ok()) << s.ToString();
    for (const char* db : kDatabases) {
      s = source_->Exec(db);
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
    s = source_->Exec(kDatabaseProperties);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  CommandResult Globals(std::vector<std::string> extra = {},
                        const std::string& source_user = "postgres") {
    std::vector<std::string> argv = {PgbatonBinary(), "globals",
                                     "--source",      source_->Conninfo("postgres", source_user),
                                     "--target",      target_->Conninfo()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunCommand(argv);
  }

  std::string Q(PgServer& s, const char* sql, const std::string& db = "postgres") {
    Result<std::string> r = s.Query(sql, db);
    return r.ok() ? *r : "error: " + r.status().ToString();
  }

  void ExpectSameCatalogues() {
    EXPECT_EQ(Q(*target_, kRolesQuery), Q(*source_, kRolesQuery));
    EXPECT_EQ(Q(*target_, kSettingsQuery), Q(*source_, kSettingsQuery));
    EXPECT_EQ(Q(*target_, kMembersQuery), Q(*source_, kMembersQuery));
    EXPECT_EQ(Q(*target_, kDatabasesQuery), Q(*source_, kDatabasesQuery));
  }

  std::unique_ptr<PgServer> source_, target_;
};

constexpr int kDriftExit = 83;
constexpr int kUnsupportedExit = 84;

TEST_P(GlobalsTest, CarriesRolesDatabasesAndPasswords) {
  // Password logins for the carried roles; everyone else is trusted as before.
  ASSERT_NO_FATAL_FAILURE(
      Start("host all team_01 127.0.0.1/32 scram-sha-256\n"
            "host all \"Mixed Case\" 127.0.0.1/32 md5\n"));
  ASSERT_NO_FATAL_FAILURE(MakeScheme());

  CommandResult plan = Globals();
  EXPECT_EQ(plan.exit_code, kDriftExit) << plan.output;
  EXPECT_NE(plan.output.find("create role \"team_01\""), std::string::npos) << plan.output;
  EXPECT_NE(plan.output.find("create database \"app one\""), std::string::npos) << plan.output;
  EXPECT_EQ(Q(*target_, "select count(*) from pg_roles where rolname = 'team'"), "0");

  CommandResult apply = Globals({"--apply"});
  ASSERT_EQ(apply.exit_code, 0) << apply.output;
  for (const char* secret : {"pw-team-01", "SCRAM-SHA-256$", "md5", "pw mixed"})
    EXPECT_EQ(apply.output.find(secret), std::string::npos) << secret << "\n" << apply.output;
  ExpectSameCatalogues();
  if (GetParam().target >= 16) {
    // A NOINHERIT member before 16 is a grant without INHERIT from 16.
    EXPECT_EQ(Q(*target_,
                "select inherit_option::text || set_option::text from pg_auth_members "
                "where member = '\"with space\"'::regrole"),
              "falsetrue");
  }

  // The old passwords open the new cluster (SCRAM and md5 verifiers), a wrong one does not.
  auto login = [&](const std::string& user, const std::string& password) {
    return PgConn::Connect(fmt::format("host=127.0.0.1 port={} dbname=postgres user='{}' "
                                       "password='{}'",
                                       target_->port(), user, password),
                           {.label = "client"})
        .status();
  };
  Status ok = login("team_01", "pw-team-01");
  EXPECT_TRUE(ok.ok()) << ok.ToString();
  ok = login("Mixed Case", "pw mixed\\'s");
  EXPECT_TRUE(ok.ok()) << ok.ToString();
  EXPECT_FALSE(login("team_01", "wrong").ok());

  CommandResult again = Globals();
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("level"), std::string::npos) << again.output;
  CommandResult json = Globals({"--json"});
  EXPECT_EQ(json.exit_code, 0) << json.output;
  auto doc = nlohmann::json::parse(json.output, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << json.output;
  EXPECT_EQ(doc["level"], true);
}

TEST_P(GlobalsTest, DriftIsReportedAndLevelled) {
  ASSERT_NO_FATAL_FAILURE(Start());
  ASSERT_NO_FATAL_FAILURE(MakeScheme());
  CommandResult apply = Globals({"--apply"});
  ASSERT_EQ(apply.exit_code, 0) << apply.output;
  // A role only the target has is never touched.
  ASSERT_TRUE(target_->Exec("CREATE ROLE local_admin LOGIN").ok());

  ASSERT_TRUE(source_
                  ->Exec("CREATE ROLE newbie LOGIN IN ROLE team; "
                         "ALTER ROLE team_01 SET statement_timeout = '2s'; "
                         "DROP ROLE team_02")
                  .ok());
  CommandResult plan = Globals({"--json"});
  EXPECT_EQ(plan.exit_code, kDriftExit) << plan.output;
  auto doc =
      nlohmann::json::parse(plan.output.substr(0, plan.output.rfind('}') + 1), nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << plan.output;
  std::string changes = doc["changes"].dump();
  EXPECT_NE(changes.find("role \\\"newbie\\\""), std::string::npos) << changes;
  EXPECT_NE(changes.find("statement_timeout = 2s"), std::string::npos) << changes;
  EXPECT_NE(changes.find("\"drop\""), std::string::npos) << changes;
  EXPECT_EQ(changes.find("local_admin"), std::string::npos) << changes;

  apply = Globals({"--apply"});
  ASSERT_EQ(apply.exit_code, 0) << apply.output;
  EXPECT_EQ(Q(*target_, "select count(*) from pg_roles where rolname in ('newbie', 'local_admin')"),
            "2");
  EXPECT_EQ(Q(*target_, "select count(*) from pg_roles where rolname = 'team_02'"), "0");
  EXPECT_EQ(Globals().exit_code, 0);
}

TEST_P(GlobalsTest, HeldLoginsStayNologinAndAreRecorded) {
  ASSERT_NO_FATAL_FAILURE(Start());
  ASSERT_NO_FATAL_FAILURE(MakeScheme());
  CommandResult apply = Globals({"--apply", "--hold-logins", "team_0*,with space"});
  ASSERT_EQ(apply.exit_code, 0) << apply.output;
  EXPECT_EQ(Q(*target_, "select rolcanlogin from pg_roles where rolname = 'team_01'"), "f");
  EXPECT_EQ(Q(*target_, "select rolcanlogin from pg_roles where rolname = 'select'"), "t");
  EXPECT_EQ(Q(*target_,
              "select string_agg(role_name || '=' || login, ',' order by role_name) "
              "from pgbaton.held_logins"),
            "team_01=true,team_02=false,with space=true");
  // A held role's NOLOGIN is not drift, with or without the flag.
  CommandResult again = Globals();
  EXPECT_EQ(again.exit_code, 0) << again.output;
}

TEST_P(GlobalsTest, UnmappedTablespaceIsRefusedWithNothingChanged) {
  ASSERT_NO_FATAL_FAILURE(Start());
  ASSERT_NO_FATAL_FAILURE(MakeScheme());
  std::string dir = MakeTempDir("pgbaton-ts");
  GiveToTestUser(dir);
  ASSERT_TRUE(source_->Exec(fmt::format("CREATE TABLESPACE fast LOCATION '{}'", dir)).ok());
  ASSERT_TRUE(source_->Exec("CREATE DATABASE tsdb TABLESPACE fast").ok());

  CommandResult refused = Globals({"--apply"});
  EXPECT_EQ(refused.exit_code, kUnsupportedExit) << refused.output;
  EXPECT_NE(refused.output.find("tablespace \"fast\""), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("--tablespace-map"), std::string::npos) << refused.output;
  EXPECT_EQ(Q(*target_, "select count(*) from pg_roles where rolname like 'team%'"), "0");
  EXPECT_EQ(Q(*target_,
              "select count(*) from pg_database where datname <> 'postgres' and "
              "not datistemplate"),
            "0");

  CommandResult mapped = Globals({"--apply", "--tablespace-map", "fast=pg_default"});
  EXPECT_EQ(mapped.exit_code, 0) << mapped.output;
  EXPECT_EQ(Q(*target_, "select count(*) from pg_database where datname = 'tsdb'"), "1");
  RemoveTree(dir);
}

TEST_P(GlobalsTest, SourceRoleWithoutPgAuthidGetsTheWarning) {
  ASSERT_NO_FATAL_FAILURE(Start());
  ASSERT_NO_FATAL_FAILURE(MakeScheme());
  ASSERT_TRUE(source_->Exec("CREATE ROLE reader LOGIN").ok());
  CommandResult apply = Globals({"--apply"}, "reader");
  ASSERT_EQ(apply.exit_code, 0) << apply.output;
  std::string warning = LastLineWith(apply.output, "could not be carried");
  EXPECT_NE(warning.find("\"team_01\""), std::string::npos) << apply.output;
  EXPECT_NE(warning.find("pg_authid"), std::string::npos) << warning;
  EXPECT_NE(warning.find("\"reader\""), std::string::npos) << warning;
  // The roles are there, without the passwords that could not be read.
  EXPECT_EQ(Q(*target_,
              "select rolcanlogin::text || (rolpassword is null)::text from pg_authid "
              "where rolname = 'team_01'"),
            "truetrue");
}

// A database whose libc locale exists only where the source runs: the source's server gets a
// locale directory of its own (LOCPATH), the target's does not.
TEST_P(GlobalsTest, LocaleTheTargetLacksIsRefusedWithNothingCreated) {
  std::string locales = MakeTempDir("pgbaton-locale");
  CommandResult def =
      RunCommand({"localedef", "-i", "en_US", "-f", "UTF-8", locales + "/en_US.UTF-8"});
  if (!std::filesystem::exists(locales + "/en_US.UTF-8/LC_COLLATE"))
    GTEST_SKIP() << "localedef could not build en_US.UTF-8: " << def.output;
  GiveToTestUser(locales);
  setenv("LOCPATH", locales.c_str(), 1);
  source_ = StartServer(GetParam().source);
  unsetenv("LOCPATH");
  target_ = StartServer(GetParam().target);
  ASSERT_TRUE(source_ && target_);
  ASSERT_TRUE(source_->Exec("CREATE ROLE team NOLOGIN").ok());
  Status s = source_->Exec(
      "CREATE DATABASE \"loc db\" TEMPLATE template0 ENCODING 'UTF8' "
      "LC_COLLATE 'en_US.UTF-8' LC_CTYPE 'en_US.UTF-8' OWNER team");
  ASSERT_TRUE(s.ok()) << s.ToString();

  CommandResult refused = Globals({"--apply"});
  EXPECT_EQ(refused.exit_code, kUnsupportedExit) << refused.output;
  EXPECT_NE(refused.output.find("database \"loc db\""), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("en_US.UTF-8"), std::string::npos) << refused.output;
  EXPECT_EQ(Q(*target_, "select count(*) from pg_database where datname = 'loc db'"), "0");
  EXPECT_EQ(Q(*target_, "select count(*) from pg_roles where rolname = 'team'"), "0");
  RemoveTree(locales);
}

INSTANTIATE_TEST_SUITE_P(Majors, GlobalsTest, ::testing::Values(Pair{15, 17}, Pair{13, 18}),
                         [](const auto& info) {
                           return fmt::format("From{}To{}", info.param.source, info.param.target);
                         });

}  // namespace
}  // namespace pgbaton::testing

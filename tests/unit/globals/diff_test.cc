// Diff between two clusters' globals, without servers: what is created, changed, revoked,
// dropped or left alone, held logins, tablespace and provider blockers, and the translation of
// membership options between majors.
#include "tools/globals_sync/diff.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace pgbaton::tools::globals {
namespace {

Role MakeRole(const std::string& name, bool login = false) {
  Role r;
  r.name = name;
  r.login = login;
  return r;
}

Globals Cluster(int major) {
  Globals g;
  g.major = major;
  g.current_user = "postgres";
  g.passwords_readable = true;
  g.superuser = true;
  Role boot = MakeRole("postgres", true);
  boot.superuser = true;
  boot.bootstrap = true;
  Role monitor = MakeRole("pg_monitor");
  monitor.predefined = true;
  g.roles = {boot, monitor};
  Database pg;
  pg.name = "postgres";
  pg.owner = "postgres";
  pg.encoding = "UTF8";
  pg.collate = pg.ctype = "C.utf8";
  pg.tablespace = "pg_default";
  pg.acl = {{"", "CONNECT", false},
            {"", "TEMPORARY", false},
            {"postgres", "CONNECT", false},
            {"postgres", "CREATE", false},
            {"postgres", "TEMPORARY", false}};
  std::sort(pg.acl.begin(), pg.acl.end());
  g.databases = {pg};
  return g;
}

// The scheme: a NOLOGIN group, two members, a per-role setting on the LOGIN one.
Globals Source(int major) {
  Globals g = Cluster(major);
  Role team = MakeRole("team");
  Role t1 = MakeRole("team_01", true);
  t1.password = "SCRAM-SHA-256$4096:salt$a:b";
  t1.settings = {{"", "statement_timeout", "1s"}};
  t1.comment = "rotating credential";
  Role t2 = MakeRole("team_02");
  g.roles.push_back(team);
  g.roles.push_back(t1);
  g.roles.push_back(t2);
  g.memberships = {{"team", "team_01", "postgres", false, true, true},
                   {"team", "team_02", "postgres", true, true, true}};
  Database app = g.databases[0];
  app.name = "app";
  app.owner = "team";
  app.settings = {{"", "work_mem", "64MB"}};
  app.acl = {{"", "TEMPORARY", false},
             {"team", "CONNECT", false},
             {"team", "CREATE", false},
             {"team", "TEMPORARY", false},
             {"team_01", "CONNECT", false}};
  std::sort(app.acl.begin(), app.acl.end());
  app.comment = "the app";
  g.databases.push_back(app);
  return g;
}

std::vector<std::string> Lines(const Drift& d) {
  std::vector<std::string> out;
  for (const Action& a : d.actions) out.push_back(a.change + " " + a.object + ": " + a.detail);
  return out;
}

bool Has(const Drift& d, const std::string& change, const std::string& object) {
  return std::any_of(d.actions.begin(), d.actions.end(),
                     [&](const Action& a) { return a.change == change && a.object == object; });
}

TEST(GlobalsDiff, EmptyTargetGetsEverythingDatabasesFirst) {
  Drift d = Diff(Source(15), Cluster(17), {});
  ASSERT_TRUE(d.blockers.empty());
  ASSERT_FALSE(d.actions.empty());
  EXPECT_EQ(d.actions[0].phase, Action::Phase::kCreateDatabase);
  EXPECT_EQ(d.actions[0].database, "app");
  EXPECT_TRUE(Has(d, "create", "role \"team\""));
  EXPECT_TRUE(Has(d, "create", "role \"team_01\""));
  EXPECT_TRUE(Has(d, "set", "role \"team_01\""));
  EXPECT_TRUE(Has(d, "grant", "membership of \"team_02\" in \"team\""));
  EXPECT_TRUE(Has(d, "alter", "database \"app\""));  // owner
  EXPECT_TRUE(Has(d, "comment", "database \"app\""));
  // Never the bootstrap superuser or a predefined role.
  EXPECT_FALSE(Has(d, "create", "role \"postgres\""));
  EXPECT_FALSE(Has(d, "create", "role \"pg_monitor\""));
  // The password travels in the SQL, never in what is printed.
  for (const Action& a : d.actions) {
    EXPECT_EQ(a.detail.find("SCRAM"), std::string::npos) << a.detail;
    EXPECT_EQ(a.object.find("SCRAM"), std::string::npos);
  }
  EXPECT_EQ(d.synced_roles.size(), 3u);
  // Membership options as 16+ spells them.
  for (const Action& a : d.actions) {
    if (a.change == "grant" && a.object == "membership of \"team_02\" in \"team\"") {
      EXPECT_EQ(a.sql[0], "GRANT \"team\" TO \"team_02\" WITH ADMIN TRUE, INHERIT TRUE, SET TRUE");
    }
  }
}

// Applying the plan to a model of the target gives a level one: a target equal to the source.
TEST(GlobalsDiff, IdenticalClustersAreLevel) {
  Globals s = Source(15);
  Globals t = Source(17);
  Drift d = Diff(s, t, {});
  EXPECT_TRUE(d.level()) << ::testing::PrintToString(Lines(d));
}

TEST(GlobalsDiff, ChangedAttributesSettingsAndMemberships) {
  Globals s = Source(15);
  Globals t = Source(17);
  s.roles[3].connection_limit = 7;  // team_01
  s.roles[3].settings[0].value = "2s";
  s.roles[4].settings.push_back({"app", "work_mem", "8MB"});  // team_02 in app
  s.memberships[0].admin = true;
  t.roles[4].settings.push_back({"", "search_path", "x"});  // only on the target
  Drift d = Diff(s, t, {});
  std::vector<std::string> lines = Lines(d);
  EXPECT_TRUE(Has(d, "alter", "role \"team_01\"")) << ::testing::PrintToString(lines);
  EXPECT_TRUE(Has(d, "set", "role \"team_02\""));
  EXPECT_TRUE(Has(d, "reset", "role \"team_02\""));
  EXPECT_TRUE(Has(d, "alter", "membership of \"team_01\" in \"team\""));
}

TEST(GlobalsDiff, HeldLoginIsNotDrift) {
  Globals s = Source(15);
  Globals t = Source(17);
  DiffOptions o;
  o.hold_logins = {"team_0*"};
  Drift d = Diff(s, t, o);
  // team_01 is LOGIN on the target: holding it means NOLOGIN there.
  EXPECT_TRUE(Has(d, "alter", "role \"team_01\""));
  EXPECT_EQ(d.held_logins.at("team_01"), true);
  t.roles[3].login = false;
  t.held_logins["team_01"] = true;
  // Held on the target already, no --hold-logins this time: level.
  Drift again = Diff(s, t, {});
  EXPECT_TRUE(again.level()) << ::testing::PrintToString(Lines(again));
}

TEST(GlobalsDiff, DropsOnlyWhatPgbatonSyncedAndOwnsNothing) {
  Globals s = Source(15);
  Globals t = Source(17);
  t.roles.push_back(MakeRole("gone"));
  t.roles.push_back(MakeRole("owner_gone"));
  t.roles.push_back(MakeRole("target_only"));
  t.synced_roles = {"team", "team_01", "team_02", "gone", "owner_gone"};
  t.dependents["owner_gone"] = "2 object(s) or privilege(s) in app";
  Drift d = Diff(s, t, {});
  EXPECT_TRUE(Has(d, "drop", "role \"gone\""));
  EXPECT_FALSE(Has(d, "drop", "role \"owner_gone\""));
  EXPECT_FALSE(Has(d, "drop", "role \"target_only\""));
  bool warned = std::any_of(d.warnings.begin(), d.warnings.end(), [](const std::string& w) {
    return w.find("\"owner_gone\"") != std::string::npos &&
           w.find("REASSIGN OWNED") != std::string::npos;
  });
  EXPECT_TRUE(warned);
  EXPECT_EQ(d.actions.back().change, "drop");
}

TEST(GlobalsDiff, TablespaceWithoutMappingIsABlocker) {
  Globals s = Source(15);
  s.tablespaces = {{"fast", {"app"}}};
  Drift d = Diff(s, Cluster(17), {});
  ASSERT_EQ(d.blockers.size(), 1u);
  EXPECT_EQ(d.blockers[0].code(), ErrorCode::kGlobalsUnsupported);
  EXPECT_NE(d.blockers[0].message().find("\"fast\""), std::string::npos);
  DiffOptions mapped;
  mapped.tablespace_map = {{"fast", "pg_default"}};
  EXPECT_TRUE(Diff(s, Cluster(17), mapped).blockers.empty());
  DiffOptions none;
  none.no_tablespaces = true;
  EXPECT_TRUE(Diff(s, Cluster(17), none).blockers.empty());
  DiffOptions missing;
  missing.tablespace_map = {{"fast", "nowhere"}};
  EXPECT_FALSE(Diff(s, Cluster(17), missing).blockers.empty());
  // Not in --databases: not in the way.
  DiffOptions other;
  other.databases = std::vector<std::string>{"postgres"};
  EXPECT_TRUE(Diff(s, Cluster(17), other).blockers.empty());
}

TEST(GlobalsDiff, UnreadablePasswordsAreAWarningNamingTheRoles) {
  Globals s = Source(15);
  s.passwords_readable = false;
  s.current_user = "reader";
  for (Role& r : s.roles) r.password.reset();
  Drift d = Diff(s, Cluster(17), {});
  EXPECT_TRUE(d.blockers.empty());
  ASSERT_EQ(d.passwords_not_carried, std::vector<std::string>{"team_01"});
  bool warned = std::any_of(d.warnings.begin(), d.warnings.end(), [](const std::string& w) {
    return w.find("\"team_01\"") != std::string::npos && w.find("pg_authid") != std::string::npos;
  });
  EXPECT_TRUE(warned);
  // No password change is planned when the source's verifiers are unknown.
  Globals t = Source(17);
  EXPECT_TRUE(Diff(s, t, {}).level());
}

TEST(GlobalsDiff, PredefinedRoleMissingOnTargetIsReportedNotGranted) {
  Globals s = Source(15);
  Role pr = MakeRole("pg_brand_new");
  pr.predefined = true;
  s.roles.push_back(pr);
  s.memberships.push_back({"pg_brand_new", "team_01", "postgres", false, true, true});
  Drift d = Diff(s, Cluster(17), {});
  EXPECT_FALSE(Has(d, "grant", "membership of \"team_01\" in \"pg_brand_new\""));
  bool warned = std::any_of(d.warnings.begin(), d.warnings.end(), [](const std::string& w) {
    return w.find("pg_brand_new") != std::string::npos;
  });
  EXPECT_TRUE(warned);
}

TEST(GlobalsDiff, OlderTargetComparesOnlyAdmin) {
  Globals s = Source(13);
  Globals t = Source(15);
  t.memberships[0].set = false;  // not expressible before 16: not drift
  EXPECT_TRUE(Diff(s, t, {}).level());
}

TEST(GlobalsDiff, MatchesAny) {
  EXPECT_TRUE(MatchesAny("team_01", {"x", "team_01"}));
  EXPECT_TRUE(MatchesAny("team_01", {"team_*"}));
  EXPECT_FALSE(MatchesAny("team", {"team_*"}));
  EXPECT_TRUE(ParseTablespaceMapping("a=b").ok());
  EXPECT_FALSE(ParseTablespaceMapping("a").ok());
  EXPECT_FALSE(ParseTablespaceMapping("=b").ok());
}

}  // namespace
}  // namespace pgbaton::tools::globals

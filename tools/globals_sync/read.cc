// Reading the globals from the catalogues. Every query works on PostgreSQL 12 to 18; the columns
// that came later (per-grant INHERIT/SET in 16, locale providers in 15, datlocale in 17) are
// read only where the server has them, and filled the way older servers behave otherwise.
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "tools/globals_sync/globals.h"

namespace pgbaton::tools::globals {

const Role* Globals::FindRole(const std::string& name) const {
  for (const Role& r : roles)
    if (r.name == name) return &r;
  return nullptr;
}

const Database* Globals::FindDatabase(const std::string& name) const {
  for (const Database& d : databases)
    if (d.name == name) return &d;
  return nullptr;
}

namespace {

constexpr int64_t kFirstNormalObjectId = 16384;
constexpr int64_t kBootstrapSuperuserId = 10;

// "name=value" as setconfig holds it.
Setting SplitSetting(const std::string& database, const std::string& config) {
  Setting s;
  s.database = database;
  size_t eq = config.find('=');
  s.name = config.substr(0, eq);
  if (eq != std::string::npos) s.value = config.substr(eq + 1);
  return s;
}

Status ReadRoles(PgConn& conn, Globals* g) {
  std::string from = g->passwords_readable ? "pg_catalog.pg_authid" : "pg_catalog.pg_roles";
  std::string password = g->passwords_readable ? "r.rolpassword" : "null::text";
  PGB_ASSIGN_OR_RETURN(
      PgResult res,
      conn.Exec(fmt::format(
          "select r.oid::int8, r.rolname, r.rolsuper, r.rolinherit, r.rolcreaterole, "
          "r.rolcreatedb, r.rolcanlogin, r.rolreplication, r.rolbypassrls, r.rolconnlimit, "
          "r.rolvaliduntil::text, {}, d.description "
          "from {} r left join pg_catalog.pg_shdescription d on d.objoid = r.oid and "
          "d.classoid = 'pg_catalog.pg_authid'::regclass order by r.rolname",
          password, from)));
  std::map<int64_t, size_t> by_oid;
  for (int i = 0; i < res.rows(); ++i) {
    Role r;
    int64_t oid = res.GetInt(i, 0);
    r.name = res.GetString(i, 1);
    r.superuser = res.GetBool(i, 2);
    r.inherit = res.GetBool(i, 3);
    r.createrole = res.GetBool(i, 4);
    r.createdb = res.GetBool(i, 5);
    r.login = res.GetBool(i, 6);
    r.replication = res.GetBool(i, 7);
    r.bypassrls = res.GetBool(i, 8);
    r.connection_limit = static_cast<int>(res.GetInt(i, 9));
    r.valid_until = res.GetOptional(i, 10);
    // No expiry either way: 'infinity' is what ALTER ROLE can store for "never".
    if (r.valid_until == "infinity") r.valid_until.reset();
    r.password = res.GetOptional(i, 11);
    r.comment = res.GetOptional(i, 12);
    r.bootstrap = oid == kBootstrapSuperuserId;
    r.predefined = !r.bootstrap && oid < kFirstNormalObjectId;
    g->roles.push_back(std::move(r));
  }
  // Per-role settings, in every database or in one.
  PGB_ASSIGN_OR_RETURN(
      PgResult set, conn.Exec("select r.rolname, coalesce(d.datname, ''), c.cfg "
                              "from pg_catalog.pg_db_role_setting s "
                              "join pg_catalog.pg_roles r on r.oid = s.setrole "
                              "left join pg_catalog.pg_database d on d.oid = s.setdatabase "
                              "cross join lateral unnest(s.setconfig) as c(cfg) "
                              "where s.setrole <> 0 and (s.setdatabase = 0 or d.oid is not null)"));
  for (int i = 0; i < set.rows(); ++i) {
    std::string name = set.GetString(i, 0);
    for (Role& r : g->roles)
      if (r.name == name)
        r.settings.push_back(SplitSetting(set.GetString(i, 1), set.GetString(i, 2)));
  }
  for (Role& r : g->roles) std::sort(r.settings.begin(), r.settings.end());
  return Status::Ok();
}

Status ReadMemberships(PgConn& conn, Globals* g) {
  std::string options = g->major >= 16 ? "am.inherit_option, am.set_option" : "m.rolinherit, true";
  PGB_ASSIGN_OR_RETURN(
      PgResult res,
      conn.Exec(
          fmt::format("select r.rolname, m.rolname, coalesce(gr.rolname, ''), am.admin_option, {} "
                      "from pg_catalog.pg_auth_members am "
                      "join pg_catalog.pg_roles r on r.oid = am.roleid "
                      "join pg_catalog.pg_roles m on m.oid = am.member "
                      "left join pg_catalog.pg_roles gr on gr.oid = am.grantor "
                      "order by 1, 2, 3",
                      options)));
  for (int i = 0; i < res.rows(); ++i) {
    Membership m;
    m.role = res.GetString(i, 0);
    m.member = res.GetString(i, 1);
    m.grantor = res.GetString(i, 2);
    m.admin = res.GetBool(i, 3);
    m.inherit = res.GetBool(i, 4);
    m.set = res.GetBool(i, 5);
    g->memberships.push_back(std::move(m));
  }
  return Status::Ok();
}

Status ReadDatabases(PgConn& conn, Globals* g) {
  std::string provider = g->major >= 15 ? "d.datlocprovider::text" : "'c'";
  std::string locale = g->major >= 17   ? "coalesce(d.datlocale, '')"
                       : g->major >= 15 ? "coalesce(d.daticulocale, '')"
                                        : "''";
  std::string rules = g->major >= 16 ? "coalesce(d.daticurules, '')" : "''";
  PGB_ASSIGN_OR_RETURN(
      PgResult res,
      conn.Exec(fmt::format(
          "select d.datname, pg_catalog.pg_get_userbyid(d.datdba), "
          "pg_catalog.pg_encoding_to_char(d.encoding), d.datcollate, d.datctype, {}, {}, {}, "
          "d.datconnlimit, t.spcname, sd.description "
          "from pg_catalog.pg_database d "
          "join pg_catalog.pg_tablespace t on t.oid = d.dattablespace "
          "left join pg_catalog.pg_shdescription sd on sd.objoid = d.oid and "
          "sd.classoid = 'pg_catalog.pg_database'::regclass "
          "where not d.datistemplate and d.datname not in ('template0', 'template1') "
          "order by d.datname",
          provider, locale, rules)));
  for (int i = 0; i < res.rows(); ++i) {
    Database d;
    d.name = res.GetString(i, 0);
    d.owner = res.GetString(i, 1);
    d.encoding = res.GetString(i, 2);
    d.collate = res.GetString(i, 3);
    d.ctype = res.GetString(i, 4);
    std::string p = res.GetString(i, 5);
    d.provider = p.empty() ? 'c' : p[0];
    d.locale = res.GetString(i, 6);
    d.icu_rules = res.GetString(i, 7);
    d.connection_limit = static_cast<int>(res.GetInt(i, 8));
    d.tablespace = res.GetString(i, 9);
    d.comment = res.GetOptional(i, 10);
    g->databases.push_back(std::move(d));
  }
  // ACLs as single privileges; a NULL datacl is the default one, so both compare alike.
  PGB_ASSIGN_OR_RETURN(
      PgResult acl,
      conn.Exec("select d.datname, coalesce(gr.rolname, ''), a.privilege_type, a.is_grantable "
                "from pg_catalog.pg_database d "
                "cross join lateral aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a "
                "left join pg_catalog.pg_roles gr on gr.oid = a.grantee"));
  for (int i = 0; i < acl.rows(); ++i) {
    for (Database& d : g->databases) {
      if (d.name != acl.GetString(i, 0)) continue;
      d.acl.push_back({acl.GetString(i, 1), acl.GetString(i, 2), acl.GetBool(i, 3)});
    }
  }
  PGB_ASSIGN_OR_RETURN(PgResult set,
                       conn.Exec("select d.datname, c.cfg from pg_catalog.pg_db_role_setting s "
                                 "join pg_catalog.pg_database d on d.oid = s.setdatabase "
                                 "cross join lateral unnest(s.setconfig) as c(cfg) "
                                 "where s.setrole = 0"));
  for (int i = 0; i < set.rows(); ++i) {
    for (Database& d : g->databases)
      if (d.name == set.GetString(i, 0))
        d.settings.push_back(SplitSetting("", set.GetString(i, 1)));
  }
  for (Database& d : g->databases) {
    std::sort(d.acl.begin(), d.acl.end());
    std::sort(d.settings.begin(), d.settings.end());
  }
  return Status::Ok();
}

Status ReadTablespaces(PgConn& conn, Globals* g) {
  PGB_ASSIGN_OR_RETURN(
      PgResult res,
      conn.Exec("select t.spcname, d.datname from pg_catalog.pg_tablespace t "
                "left join lateral pg_catalog.pg_tablespace_databases(t.oid) as x(dboid) on true "
                "left join pg_catalog.pg_database d on d.oid = x.dboid "
                "where t.spcname not in ('pg_default', 'pg_global') order by 1, 2"));
  for (int i = 0; i < res.rows(); ++i) {
    std::string name = res.GetString(i, 0);
    if (g->tablespaces.empty() || g->tablespaces.back().name != name)
      g->tablespaces.push_back({name, {}});
    if (!res.IsNull(i, 1)) g->tablespaces.back().used_by.push_back(res.GetString(i, 1));
  }
  return Status::Ok();
}

Status ReadState(PgConn& conn, Globals* g) {
  PGB_ASSIGN_OR_RETURN(
      std::string synced,
      conn.QueryValue(fmt::format("select to_regclass('{}') is not null", kSyncedRolesTable)));
  g->records = synced == "t";
  if (synced == "t") {
    PGB_ASSIGN_OR_RETURN(PgResult res,
                         conn.Exec(fmt::format("select role_name from {}", kSyncedRolesTable)));
    for (int i = 0; i < res.rows(); ++i) g->synced_roles.insert(res.GetString(i, 0));
  }
  PGB_ASSIGN_OR_RETURN(
      std::string held,
      conn.QueryValue(fmt::format("select to_regclass('{}') is not null", kHeldLoginsTable)));
  if (held == "t") {
    PGB_ASSIGN_OR_RETURN(
        PgResult res, conn.Exec(fmt::format("select role_name, login from {}", kHeldLoginsTable)));
    for (int i = 0; i < res.rows(); ++i) g->held_logins[res.GetString(i, 0)] = res.GetBool(i, 1);
  }
  PGB_ASSIGN_OR_RETURN(
      PgResult deps,
      conn.Exec("select r.rolname, count(*), string_agg(distinct coalesce(d.datname, "
                "'(cluster-wide)'), ', ') from pg_catalog.pg_shdepend s "
                "join pg_catalog.pg_roles r on r.oid = s.refobjid "
                "left join pg_catalog.pg_database d on d.oid = s.dbid "
                "where s.refclassid = 'pg_catalog.pg_authid'::regclass and s.deptype <> 'p' "
                "group by r.rolname"));
  for (int i = 0; i < deps.rows(); ++i) {
    g->dependents[deps.GetString(i, 0)] = fmt::format("{} object(s) or privilege(s) in {}",
                                                      deps.GetString(i, 1), deps.GetString(i, 2));
  }
  return Status::Ok();
}

}  // namespace

Result<Globals> ReadGlobals(PgConn& conn) {
  Globals g;
  g.major = conn.ServerMajor();
  PGB_RETURN_IF_ERROR(conn.Run("set timezone = 'UTC'"));
  PGB_ASSIGN_OR_RETURN(
      PgResult who,
      conn.Exec("select current_user, "
                "has_table_privilege('pg_catalog.pg_authid', 'SELECT'), "
                "(select rolsuper from pg_catalog.pg_roles where rolname = current_user)"));
  g.current_user = who.GetString(0, 0);
  g.passwords_readable = who.GetBool(0, 1);
  g.superuser = who.GetBool(0, 2);
  Status s = ReadRoles(conn, &g);
  if (s.ok()) s = ReadMemberships(conn, &g);
  if (s.ok()) s = ReadDatabases(conn, &g);
  if (s.ok()) s = ReadTablespaces(conn, &g);
  if (s.ok()) s = ReadState(conn, &g);
  if (!s.ok()) return s.WithContext(fmt::format("reading roles and databases on {}", conn.label()));
  return g;
}

}  // namespace pgbaton::tools::globals

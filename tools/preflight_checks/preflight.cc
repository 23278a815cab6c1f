#include "tools/preflight_checks/preflight.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "catalog/source_catalog.h"
#include "common/pg.h"

namespace pgbaton::tools::preflight {

namespace {

// The oldest source we stream from: pgoutput with protocol version 1 and TRUNCATE decoding.
constexpr int kOldestSourceMajor = 12;
constexpr int kNewestKnownMajor = 18;

class Checker {
 public:
  explicit Checker(PreflightReport* report) : report_(report) {}

  void Add(std::string check, Severity sev, std::string message, std::string fix = {},
           std::string object = {}) {
    report_->findings.push_back(
        {std::move(check), sev, std::move(message), std::move(fix), std::move(object)});
  }
  void Ok(std::string check, std::string message) {
    Add(std::move(check), Severity::kOk, std::move(message));
  }

  // A failed catalogue query is itself a finding: preflight must not stop half way.
  bool Query(PgConn& conn, std::string_view check, std::string_view sql, PgResult* out,
             const std::vector<std::optional<std::string>>& params = {}) {
    Result<PgResult> r = params.empty() ? conn.Exec(sql) : conn.ExecParams(sql, params);
    if (!r.ok()) {
      CouldNotRun(check, r.status());
      return false;
    }
    *out = std::move(r).value();
    return true;
  }

  // The user tables of `conn` (catalog::ListUserTables); a failure is a finding of each check
  // in `checks`.
  bool Tables(PgConn& conn, std::initializer_list<std::string_view> checks,
              std::vector<catalog::UserTable>* out) {
    Result<std::vector<catalog::UserTable>> r = catalog::ListUserTables(conn);
    if (!r.ok()) {
      for (std::string_view check : checks) CouldNotRun(check, r.status());
      return false;
    }
    *out = std::move(r).value();
    return true;
  }

 private:
  void CouldNotRun(std::string_view check, const Status& status) {
    Add(std::string(check), Severity::kError,
        fmt::format("could not run the check: {}", status.message()),
        "grant the role read access to the system catalogs, or run preflight as a superuser");
  }

  PreflightReport* report_;
};

std::string VersionText(int num) {
  return num >= 100000 ? fmt::format("{}.{}", num / 10000, num % 10000)
                       : fmt::format("{}.{}.{}", num / 10000, (num / 100) % 100, num % 100);
}

ServerInfo Describe(const PgConn& conn) {
  ServerInfo info;
  info.reachable = true;
  info.description = conn.description();
  info.version_num = conn.ServerVersionNum();
  info.version = VersionText(info.version_num);
  return info;
}

void CheckSourceSettings(PgConn& src, Checker& c, bool ddl_replicate) {
  int major = src.ServerMajor();
  if (major < kOldestSourceMajor) {
    c.Add("source.version", Severity::kError,
          fmt::format("source runs PostgreSQL {}, older than the oldest supported source ({})",
                      major, kOldestSourceMajor),
          "upgrade the source to PostgreSQL 12 or newer first (pg_upgrade), then migrate", "");
  } else if (major > kNewestKnownMajor) {
    c.Add("source.version", Severity::kWarning,
          fmt::format("source runs PostgreSQL {}, newer than any major pgbaton was tested with "
                      "({})",
                      major, kNewestKnownMajor));
  } else {
    c.Ok("source.version",
         fmt::format("source runs PostgreSQL {}", VersionText(src.ServerVersionNum())));
  }
  if (major == 12) {
    c.Add("source.version_limits", Severity::kInfo,
          "source runs PostgreSQL 12, past its end of life (November 2024), which pgbaton streams "
          "from with pgoutput protocol 1 and these limits: (1) no streaming of a transaction in "
          "progress: the source decodes each transaction only at its commit and spills one of "
          "more than 4096 changes to pg_replslot/ on its own disk (12 has no "
          "logical_decoding_work_mem), so a large transaction costs the source disk and reaches "
          "the queue only once committed; (2) no publication of a partitioned table: --include "
          "publishes its partitions of today, and one attached later is not streamed; (3) no "
          "max_slot_wal_keep_size: the source keeps WAL for the slot without limit while "
          "pgbaton is stopped",
          "keep free disk on the source for large transactions' spill files and for WAL while "
          "pgbaton is stopped; attach no partition to an --include'd table during the migration");
  }

  PgResult r;
  // What the slot keeps while pgbaton streams: about a second of WAL where the source can be
  // asked for running-transactions records (16+, and the role may), else 15-30 s of it.
  if (major < 16) {
    c.Add("source.slot_wal_hold", Severity::kInfo,
          fmt::format("source runs PostgreSQL {}: the slot keeps the last 15-30 s of WAL while "
                      "pgbaton streams (the server logs the running-transactions records at "
                      "which it frees a slot's WAL every 15 s; 16+ can be asked every second)",
                      major));
  } else if (c.Query(src, "source.slot_wal_hold",
                     "select has_function_privilege('pg_catalog.pg_log_standby_snapshot()', "
                     "'execute')",
                     &r)) {
    if (r.GetBool(0, 0)) {
      c.Ok("source.slot_wal_hold",
           "the slot keeps about a second of WAL while pgbaton streams (pgbaton asks for a "
           "running-transactions record every second)");
    } else {
      c.Add("source.slot_wal_hold", Severity::kWarning,
            "the role may not call pg_log_standby_snapshot(): the slot keeps the last 15-30 s "
            "of WAL while pgbaton streams instead of about a second",
            "GRANT EXECUTE ON FUNCTION pg_catalog.pg_log_standby_snapshot() TO the migrating "
            "role (as a superuser)",
            "pg_log_standby_snapshot");
    }
  }
  if (!c.Query(src, "source.settings",
               "select name, setting from pg_settings where name in ('wal_level', "
               "'max_replication_slots', 'max_wal_senders', 'output_plugin_libraries')",
               &r)) {
    return;
  }
  std::string wal_level;
  int64_t max_slots = -1, max_senders = -1;
  std::optional<std::string> plugin_libraries;
  for (int i = 0; i < r.rows(); ++i) {
    std::string name = r.GetString(i, 0);
    if (name == "wal_level") wal_level = r.GetString(i, 1);
    if (name == "max_replication_slots") max_slots = r.GetInt(i, 1);
    if (name == "max_wal_senders") max_senders = r.GetInt(i, 1);
    if (name == "output_plugin_libraries") plugin_libraries = r.GetString(i, 1);
  }
  if (wal_level != "logical") {
    c.Add("source.wal_level", Severity::kError,
          fmt::format("source wal_level is \"{}\"; logical decoding needs \"logical\"", wal_level),
          "ALTER SYSTEM SET wal_level = logical; then restart the source server", "wal_level");
  } else {
    c.Ok("source.wal_level", "source wal_level is logical");
  }

  PgResult used;
  if (c.Query(src, "source.replication_slots",
              "select (select count(*) from pg_replication_slots), "
              "(select count(*) from pg_stat_replication)",
              &used)) {
    int64_t slots_used = used.GetInt(0, 0);
    int64_t senders_used = used.GetInt(0, 1);
    // copy needs one slot for the stream (and briefly a second one to resume at a new snapshot).
    if (max_slots >= 0 && max_slots - slots_used < 1) {
      c.Add(
          "source.replication_slots", Severity::kError,
          fmt::format("source has no free replication slot ({} of max_replication_slots={} in "
                      "use)",
                      slots_used, max_slots),
          "raise max_replication_slots (ALTER SYSTEM SET max_replication_slots = ...; restart) or "
          "drop unused slots (pg_drop_replication_slot)",
          "max_replication_slots");
    } else {
      c.Ok("source.replication_slots",
           fmt::format("source has {} free replication slots", max_slots - slots_used));
    }
    if (max_senders >= 0 && max_senders - senders_used < 1) {
      c.Add("source.wal_senders", Severity::kError,
            fmt::format("source has no free WAL sender ({} of max_wal_senders={} in use)",
                        senders_used, max_senders),
            "raise max_wal_senders (ALTER SYSTEM SET max_wal_senders = ...; restart)",
            "max_wal_senders");
    } else {
      c.Ok("source.wal_senders",
           fmt::format("source has {} free WAL senders", max_senders - senders_used));
    }
  }

  if (plugin_libraries.has_value()) {
    if (plugin_libraries->find("pgoutput") == std::string::npos) {
      c.Add("source.output_plugin_libraries", Severity::kError,
            fmt::format("source output_plugin_libraries (\"{}\") does not admit pgoutput",
                        *plugin_libraries),
            "add pgoutput to output_plugin_libraries and reload the source",
            "output_plugin_libraries");
    } else {
      c.Ok("source.output_plugin_libraries", "source admits the pgoutput plugin");
    }
  }

  PgResult role;
  if (c.Query(
          src, "source.replication_privilege",
          "select current_user, rolsuper, rolreplication, quote_ident(current_user) from pg_roles "
          "where rolname = current_user",
          &role) &&
      role.rows() == 1) {
    std::string user = role.GetString(0, 0);
    if (!role.GetBool(0, 1) && !role.GetBool(0, 2)) {
      c.Add("source.replication_privilege", Severity::kError,
            fmt::format("source role \"{}\" has neither REPLICATION nor SUPERUSER", user),
            fmt::format("ALTER ROLE {} REPLICATION; (as a superuser on the source)",
                        role.GetString(0, 3)),
            user);
    } else {
      c.Ok("source.replication_privilege",
           fmt::format("source role \"{}\" may use replication", user));
    }
    // DDL capture (--ddl replicate) is an event trigger, which only a superuser may create.
    if (role.GetBool(0, 1)) {
      c.Ok("source.ddl_capture",
           fmt::format("source role \"{}\" may install the DDL capture (--ddl replicate)", user));
    } else {
      c.Add("source.ddl_capture", ddl_replicate ? Severity::kError : Severity::kInfo,
            fmt::format("source role \"{}\" is not a superuser: it cannot create the event "
                        "trigger that --ddl replicate captures DDL with",
                        user),
            "connect as a superuser for the copy (on a managed service, the role its "
            "documentation names for event triggers), or keep --ddl stop and run each schema "
            "change on the target by hand when the applier stops with schema_changed",
            user);
    }
  }
}

// Tables that logical replication cannot stream, and objects it does not carry.
void CheckSourceObjects(PgConn& src, Checker& c, std::vector<std::string>* extensions) {
  PgResult r;
  // Leaf tables in user schemas. A partitioned parent needs no identity of its own (changes are
  // published per partition), its partitions do.
  std::vector<catalog::UserTable> tables;
  if (c.Tables(src, {"source.replica_identity", "source.unlogged_tables"}, &tables)) {
    std::vector<std::string> no_identity, unlogged;
    for (const auto& t : tables) {
      if (t.Streamed() && !t.HasIdentity()) no_identity.push_back(t.display);
      if (t.persistence == 'u') unlogged.push_back(t.display);
    }
    if (no_identity.empty()) {
      c.Ok("source.replica_identity", "every source table has a primary key or replica identity");
    }
    for (const std::string& table : no_identity) {
      c.Add("source.replica_identity", Severity::kError,
            fmt::format("table {} has no primary key and no replica identity: its UPDATEs and "
                        "DELETEs cannot be replicated",
                        table),
            fmt::format("add a primary key, or ALTER TABLE {} REPLICA IDENTITY FULL; (or USING "
                        "INDEX on a unique index of NOT NULL columns)",
                        table),
            table);
    }
    if (unlogged.empty()) c.Ok("source.unlogged_tables", "no unlogged tables");
    for (const std::string& table : unlogged) {
      c.Add("source.unlogged_tables", Severity::kError,
            fmt::format("table {} is unlogged: its changes never reach the WAL, so they cannot be "
                        "streamed",
                        table),
            fmt::format("ALTER TABLE {} SET LOGGED; or leave it out of the migration with "
                        "--exclude {}",
                        table, table),
            table);
    }
  }

  if (c.Query(src, "source.large_objects", "select count(*) from pg_largeobject_metadata", &r)) {
    int64_t n = r.GetInt(0, 0);
    if (n > 0) {
      c.Add("source.large_objects", Severity::kInfo,
            fmt::format("source database holds {} large objects; logical decoding does not carry "
                        "them, so pgbaton copies them with the data (at the copy's snapshot, "
                        "owners, ACLs and comments included) and re-syncs those created, changed "
                        "or unlinked since inside the cutover fence",
                        n),
            "nothing to do; the fence's large-object step reads every object's md5 on both "
            "sides, so many large objects lengthen the write pause: run `pgbaton verify "
            "--sync-large-objects` shortly before cutover to see and bring over the difference",
            "pg_largeobject");
    } else {
      c.Ok("source.large_objects", "no large objects");
    }
  }

  if (c.Query(src, "source.extensions",
              "select extname, extversion from pg_extension where extname <> 'plpgsql' order by 1",
              &r)) {
    std::string list;
    for (int i = 0; i < r.rows(); ++i) {
      extensions->push_back(r.GetString(i, 0));
      list += (i ? ", " : "") + r.GetString(i, 0) + " " + r.GetString(i, 1);
    }
    c.Add("source.extensions", Severity::kInfo,
          r.rows() == 0 ? "source uses no extensions" : "source uses extensions: " + list);
  }
}

// Roles the restored schema names: owners of tables, sequences, views, schemas, functions and
// types (ALTER ... OWNER TO, unless copy runs --no-owner), grantees of their privileges and of
// default privileges (GRANT ... TO, always). Objects of extensions are left out: pg_dump does not
// dump them, nor the public schema's owner; an owner's own entry in its object's ACL is the
// default pg_dump does not GRANT. One row per role and reason ("owner", "grantee", or "default"
// for ALTER DEFAULT PRIVILEGES): name, reason, one object, how many objects.
constexpr const char* kSchemaRoles = R"SQL(
with ns as (
  select oid, nspname, nspowner, nspacl from pg_catalog.pg_namespace
  where nspname not in ('pg_catalog', 'information_schema', 'pgbaton')
    and nspname not like 'pg\_toast%' and nspname not like 'pg\_temp%'
), ext as (
  select classid, objid from pg_catalog.pg_depend where deptype = 'e'
), objs as (
  select c.relowner as owner, c.relacl as acl,
         format('%s %I.%I', case c.relkind when 'S' then 'sequence' when 'v' then 'view'
                when 'm' then 'materialized view' when 'f' then 'foreign table' else 'table' end,
                ns.nspname, c.relname) as what
  from pg_catalog.pg_class c join ns on ns.oid = c.relnamespace
  where c.relkind in ('r', 'p', 'S', 'v', 'm', 'f')
    and not exists (select 1 from ext where classid = 'pg_catalog.pg_class'::regclass
                                      and objid = c.oid)
  union all
  select case when ns.nspname = 'public' then null else ns.nspowner end, ns.nspacl,
         format('schema %I', ns.nspname) from ns
  where not exists (select 1 from ext where classid = 'pg_catalog.pg_namespace'::regclass
                                      and objid = ns.oid)
  union all
  select p.proowner, p.proacl, format('function %s', p.oid::regprocedure)
  from pg_catalog.pg_proc p join ns on ns.oid = p.pronamespace
  where not exists (select 1 from ext where classid = 'pg_catalog.pg_proc'::regclass
                                      and objid = p.oid)
  union all
  select t.typowner, t.typacl, format('type %s', t.oid::regtype)
  from pg_catalog.pg_type t join ns on ns.oid = t.typnamespace
  where (t.typtype in ('e', 'd', 'r') or (t.typtype = 'c' and exists (
          select 1 from pg_catalog.pg_class c where c.oid = t.typrelid and c.relkind = 'c')))
    and not exists (select 1 from ext where classid = 'pg_catalog.pg_type'::regclass
                                        and objid = t.oid)
), need as (
  select owner as role, 'owner' as why, what from objs
  union all
  select a.grantee, 'grantee', what from objs cross join lateral pg_catalog.aclexplode(objs.acl) a
  where a.grantee <> 0 and a.grantee is distinct from objs.owner
    and not (what = 'schema public' and a.grantee = 10)
  union all
  select d.defaclrole, 'default', 'ALTER DEFAULT PRIVILEGES' from pg_catalog.pg_default_acl d
  union all
  select a.grantee, 'default', 'ALTER DEFAULT PRIVILEGES'
  from pg_catalog.pg_default_acl d cross join lateral pg_catalog.aclexplode(d.defaclacl) a
  where a.grantee <> 0
)
select r.rolname, need.why, min(need.what), count(distinct need.what)
from need join pg_catalog.pg_roles r on r.oid = need.role
group by 1, 2 order by 1, 2
)SQL";

void CheckRoles(PgConn& src, PgConn& tgt, bool no_owner, Checker& c) {
  PgResult need, have;
  if (!c.Query(src, "target.roles", kSchemaRoles, &need)) return;
  if (!c.Query(tgt, "target.roles", "select rolname from pg_catalog.pg_roles", &have)) return;
  std::set<std::string> existing;
  for (int i = 0; i < have.rows(); ++i) existing.insert(have.GetString(i, 0));
  // role -> what needs it, e.g. "owner of table public.t and 3 more"
  std::map<std::string, std::vector<std::string>> missing;
  for (int i = 0; i < need.rows(); ++i) {
    std::string role = need.GetString(i, 0), why = need.GetString(i, 1);
    if (existing.count(role) != 0 || (no_owner && why == "owner")) continue;
    int64_t n = need.GetInt(i, 3);
    std::string what = need.GetString(i, 2);
    std::string more = n > 1 ? fmt::format(" and {} more", n - 1) : "";
    if (why == "owner") {
      missing[role].push_back(fmt::format("owner of {}{}", what, more));
    } else if (why == "default") {
      missing[role].push_back("named in ALTER DEFAULT PRIVILEGES");
    } else {
      missing[role].push_back(fmt::format("granted privileges on {}{}", what, more));
    }
  }
  if (missing.empty()) {
    c.Ok("target.roles", no_owner ? "every role granted privileges in the schema exists on "
                                    "the target (owners not needed: --no-owner)"
                                  : "every role the schema names (owners, grantees) exists on "
                                    "the target");
    return;
  }
  std::string names, detail;
  for (const auto& [role, why] : missing) {
    names += (names.empty() ? "" : ", ") + role;
    std::string reasons;
    for (const auto& w : why) reasons += (reasons.empty() ? "" : "; ") + w;
    detail += fmt::format("{}{} ({})", detail.empty() ? "" : ", ", role, reasons);
  }
  c.Add("target.roles", Severity::kError,
        fmt::format("{} role(s) the copied schema needs do not exist on the target: {}",
                    missing.size(), detail),
        fmt::format("create them on the target before the copy: pg_dumpall --roles-only on the "
                    "source piped to psql on the target (or, later, pgbaton globals), or "
                    "CREATE ROLE {} ...; {}",
                    names,
                    no_owner ? "--no-owner leaves out owners, but grants still name roles"
                             : "copy --no-owner (preflight --no-owner) needs only the grantees"),
        names);
}

void CheckTarget(PgConn& src, PgConn& tgt, const std::vector<std::string>& extensions, Checker& c) {
  if (tgt.ServerMajor() < src.ServerMajor()) {
    c.Add("target.version", Severity::kError,
          fmt::format("target runs PostgreSQL {}, older than the source's {}: a downgrade is not "
                      "supported",
                      tgt.ServerMajor(), src.ServerMajor()),
          "point --target at a cluster of the same or a newer major version");
  } else {
    c.Ok("target.version", fmt::format("target major {} is the same as or newer than the "
                                       "source's {}",
                                       tgt.ServerMajor(), src.ServerMajor()));
  }

  PgResult r;
  if (!extensions.empty() &&
      c.Query(tgt, "target.extensions", "select name from pg_available_extensions", &r)) {
    std::set<std::string> available;
    for (int i = 0; i < r.rows(); ++i) available.insert(r.GetString(i, 0));
    bool all = true;
    for (const auto& e : extensions) {
      if (available.count(e) == 0) {
        all = false;
        c.Add("target.extensions", Severity::kError,
              fmt::format("extension \"{}\" used on the source is not available on the target", e),
              fmt::format("install the package that provides \"{}\" on the target's server", e), e);
      }
    }
    if (all) c.Ok("target.extensions", "every source extension is available on the target");
  }

  // Empty, or already holding the schema (a resumed copy, or a schema loaded by hand). pgbaton's
  // own schema (the cutover sentinel) is not part of it.
  auto names = [](const std::vector<catalog::UserTable>& tables) {
    std::set<std::string> out;
    for (const auto& t : tables) {
      if (t.name.schema != "pgbaton") out.insert(t.display);
    }
    return out;
  };
  std::vector<catalog::UserTable> src_tables, tgt_tables;
  if (c.Tables(src, {"target.schema"}, &src_tables) &&
      c.Tables(tgt, {"target.schema"}, &tgt_tables)) {
    std::set<std::string> s = names(src_tables), t = names(tgt_tables);
    if (t.empty()) {
      c.Ok("target.schema", "target database is empty");
    } else {
      std::vector<std::string> missing, extra;
      std::set_difference(s.begin(), s.end(), t.begin(), t.end(), std::back_inserter(missing));
      std::set_difference(t.begin(), t.end(), s.begin(), s.end(), std::back_inserter(extra));
      if (missing.empty() && extra.empty()) {
        c.Add("target.schema", Severity::kInfo,
              fmt::format("target already holds the source's {} tables; copy resumes or keeps "
                          "them",
                          t.size()));
      } else {
        auto join = [](const std::vector<std::string>& v) {
          std::string out;
          for (size_t i = 0; i < v.size() && i < 10; ++i) out += (i ? ", " : "") + v[i];
          if (v.size() > 10) out += fmt::format(" and {} more", v.size() - 10);
          return out;
        };
        std::string detail = !extra.empty() ? "tables not on the source: " + join(extra)
                                            : "tables missing on the target: " + join(missing);
        c.Add("target.schema", Severity::kError,
              fmt::format("target database is neither empty nor a copy of the source's schema "
                          "({})",
                          detail),
              "point --target at an empty database (CREATE DATABASE ...), or drop the tables "
              "that do not belong there");
      }
    }
  }

  if (c.Query(tgt, "target.privileges",
              "select rolsuper, has_database_privilege(current_database(), 'CREATE') "
              "from pg_roles where rolname = current_user",
              &r) &&
      r.rows() == 1) {
    if (!r.GetBool(0, 0) && !r.GetBool(0, 1)) {
      c.Add("target.privileges", Severity::kError,
            "target role may not create schemas in the target database",
            "GRANT CREATE ON DATABASE ... TO the target role, or connect as the database owner");
    } else {
      c.Ok("target.privileges", "target role may create the schema");
    }
  }
}

}  // namespace

int PreflightReport::CountOf(Severity s) const {
  return static_cast<int>(std::count_if(findings.begin(), findings.end(),
                                        [s](const Finding& f) { return f.severity == s; }));
}

std::string_view SeverityName(Severity s) {
  switch (s) {
    case Severity::kOk:
      return "ok";
    case Severity::kInfo:
      return "info";
    case Severity::kWarning:
      return "warning";
    case Severity::kError:
      return "error";
  }
  return "error";
}

PreflightReport RunPreflight(const PreflightOptions& options) {
  PreflightReport report;
  Checker c(&report);

  ConnectOptions so;
  so.label = "source";
  so.application_name = "pgbaton preflight";
  Result<PgConn> src = PgConn::Connect(options.source, so);
  if (!src.ok()) {
    report.connection_error = src.status();
    c.Add("source.connect", Severity::kError, src.status().message(), src.status().hint());
  } else {
    report.source = Describe(*src);
    c.Ok("source.connect", fmt::format("connected to source {}", src->description()));
  }

  ConnectOptions to;
  to.label = "target";
  to.application_name = "pgbaton preflight";
  Result<PgConn> tgt = PgConn::Connect(options.target, to);
  if (!tgt.ok()) {
    if (report.connection_error.ok()) report.connection_error = tgt.status();
    c.Add("target.connect", Severity::kError, tgt.status().message(), tgt.status().hint());
  } else {
    report.target = Describe(*tgt);
    c.Ok("target.connect", fmt::format("connected to target {}", tgt->description()));
  }

  std::vector<std::string> extensions;
  if (src.ok()) {
    CheckSourceSettings(*src, c, options.ddl_replicate);
    CheckSourceObjects(*src, c, &extensions);
  }
  if (src.ok() && tgt.ok()) {
    CheckTarget(*src, *tgt, extensions, c);
    CheckRoles(*src, *tgt, options.no_owner, c);
  }
  return report;
}

}  // namespace pgbaton::tools::preflight

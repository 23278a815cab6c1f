#include "tools/globals_sync/apply.h"

#include <fmt/format.h>

#include "tools/globals_sync/sql.h"

namespace pgbaton::tools::globals {
namespace {

// The server's reason alone: PgConn's message quotes the statement's start, which for a
// password statement would show part of the verifier.
std::string Reason(const Status& s) {
  const std::string& m = s.message();
  size_t at = m.find(" failed: ");
  return at == std::string::npos ? m : m.substr(at + 9);
}

// Whether the target can load the locale of `db`: CREATE COLLATION loads it, in a transaction
// that is rolled back. Returns the server's reason when it cannot.
Result<std::optional<std::string>> TryLocale(PgConn& target, const Database& db) {
  std::string def;
  if (db.provider == 'i') {
    def = "provider = icu, locale = " + Literal(db.locale);
  } else if (db.provider == 'b') {
    return std::optional<std::string>();  // builtin: CreateDatabaseSql checked the major
  } else {
    def = "lc_collate = " + Literal(db.collate) + ", lc_ctype = " + Literal(db.ctype);
  }
  PGB_RETURN_IF_ERROR(target.Run("begin"));
  Status s = target.Run("create collation pg_temp.pgbaton_locale_check (" + def + ")");
  PGB_RETURN_IF_ERROR(target.Run("rollback"));
  if (s.ok()) return std::optional<std::string>();
  if (s.code() == ErrorCode::kConnection) return s;
  return std::optional<std::string>(Reason(s));
}

}  // namespace

Status CheckCreatable(PgConn& target, const Globals& source, Drift* drift) {
  for (const Action& a : drift->actions) {
    if (a.phase != Action::Phase::kCreateDatabase) continue;
    const Database* db = source.FindDatabase(a.database);
    if (!db) continue;
    PGB_ASSIGN_OR_RETURN(std::optional<std::string> why, TryLocale(target, *db));
    if (!why) continue;
    std::string locale = db->provider == 'i' ? "ICU locale \"" + db->locale + "\""
                                             : fmt::format(
                                                   "locale LC_COLLATE \"{}\", LC_CTYPE "
                                                   "\"{}\"",
                                                   db->collate, db->ctype);
    drift->blockers.push_back(Status::Error(
        ErrorCode::kGlobalsUnsupported,
        fmt::format("database \"{}\" cannot be created on target: it has the {}, which the "
                    "target cannot load ({})",
                    db->name, locale, *why),
        db->provider == 'i'
            ? "use a target built with ICU, or create the database there by hand"
            : "install the locale on the target's machine (locale-gen, then restart the server), "
              "or create the database there by hand with a locale it has"));
  }
  return Status::Ok();
}

Status ApplyDrift(PgConn& target, const Drift& drift,
                  const std::function<void(const Action&)>& on_done) {
  PGB_RETURN_IF_ERROR(target.Run("set standard_conforming_strings = on"));
  // Databases first, outside any transaction; one that exists already (an earlier run that
  // stopped later) is skipped.
  for (const Action& a : drift.actions) {
    if (a.phase != Action::Phase::kCreateDatabase) continue;
    PGB_ASSIGN_OR_RETURN(
        PgResult exists,
        target.ExecParams("select 1 from pg_catalog.pg_database where datname = $1", {a.database}));
    if (exists.rows() == 0) {
      for (const std::string& sql : a.sql) {
        Status s = target.Run(sql);
        if (!s.ok()) {
          return Status::Error(s.code(),
                               fmt::format("{}: create on target: {}", a.object, Reason(s)),
                               "the databases created before it stay (empty, owned by the "
                               "applying role); fix the cause and run the same command again: "
                               "it carries on from there");
        }
      }
    }
    if (on_done) on_done(a);
  }
  PGB_RETURN_IF_ERROR(target.Run("begin"));
  auto fail = [&](const Status& s, const std::string& what) {
    (void)target.Run("rollback");
    return Status::Error(s.code() == ErrorCode::kOk ? ErrorCode::kInternal : s.code(),
                         fmt::format("{} on target: {}", what, Reason(s)),
                         "nothing of the roles, memberships and settings was changed (one "
                         "transaction, rolled back); fix the cause and run again");
  };
  std::vector<const Action*> done;
  for (const Action& a : drift.actions) {
    if (a.phase != Action::Phase::kTransaction) continue;
    for (const std::string& sql : a.sql) {
      Status s = target.Run(sql);
      if (!s.ok()) return fail(s, a.object + ": " + a.change);
    }
    done.push_back(&a);
  }
  // pgbaton's records, in the same transaction: what it synced (and so may drop later) and the
  // held logins that cutover --flip roles restores.
  Status s = target.Run(fmt::format(
      "create schema if not exists pgbaton; "
      "create table if not exists {} (role_name text primary key, "
      "synced_at timestamptz not null default now()); "
      "create table if not exists {} (role_name text primary key, login boolean not null, "
      "held_at timestamptz not null default now())",
      kSyncedRolesTable, kHeldLoginsTable));
  if (!s.ok()) return fail(s, "recording the synced roles in schema pgbaton");
  for (const std::string& role : drift.synced_roles) {
    Status r = target
                   .ExecParams(fmt::format("insert into {} (role_name) values ($1) on conflict "
                                           "(role_name) do update set synced_at = now()",
                                           kSyncedRolesTable),
                               {role})
                   .status();
    if (!r.ok()) return fail(r, "recording role \"" + role + "\" in " + kSyncedRolesTable);
  }
  for (const auto& [role, login] : drift.held_logins) {
    Status r =
        target
            .ExecParams(fmt::format("insert into {} (role_name, login) values ($1, $2) on "
                                    "conflict (role_name) do update set login = excluded.login",
                                    kHeldLoginsTable),
                        {role, login ? "true" : "false"})
            .status();
    if (!r.ok()) return fail(r, "recording held role \"" + role + "\" in " + kHeldLoginsTable);
  }
  for (const std::string& role : drift.forget_roles) {
    for (const char* table : {kSyncedRolesTable, kHeldLoginsTable}) {
      Status r =
          target.ExecParams(fmt::format("delete from {} where role_name = $1", table), {role})
              .status();
      if (!r.ok()) return fail(r, "forgetting role \"" + role + "\"");
    }
  }
  Status c = target.Run("commit");
  if (!c.ok()) return fail(c, "committing the roles and settings");
  if (on_done)
    for (const Action* a : done) on_done(*a);
  return Status::Ok();
}

}  // namespace pgbaton::tools::globals

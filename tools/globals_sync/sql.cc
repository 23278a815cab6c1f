#include "tools/globals_sync/sql.h"

#include <fmt/format.h>

#include <array>

#include "common/sql_ident.h"

namespace pgbaton::tools::globals {
namespace {

// Settings whose stored value is a list in SQL syntax already ("$user", public): put back as
// written, as pg_dumpall does, since quoting the whole would make one element of it.
bool IsListSetting(std::string_view name) {
  static constexpr std::array<std::string_view, 5> kList = {
      "search_path", "temp_tablespaces", "session_preload_libraries", "shared_preload_libraries",
      "local_preload_libraries"};
  for (std::string_view n : kList)
    if (n == name) return true;
  return false;
}

std::string SettingValue(const Setting& s) {
  if (IsListSetting(s.name) && !s.value.empty()) return s.value;
  return Literal(s.value);
}

// A setting's name as SET takes it: custom names hold a dot (myapp.tenant), which a quoted
// identifier would swallow into one part.
std::string GucName(const std::string& name) {
  for (char c : name) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
    if (!plain) return QuoteIdent(name);
  }
  return name;
}

std::string Grantee(const std::string& name) { return name.empty() ? "PUBLIC" : QuoteIdent(name); }

}  // namespace

std::string Literal(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  out += '\'';
  return out;
}

std::string RoleAttributes(const Role& r, bool hold_login) {
  std::string out;
  out += r.superuser ? " SUPERUSER" : " NOSUPERUSER";
  out += r.inherit ? " INHERIT" : " NOINHERIT";
  out += r.createrole ? " CREATEROLE" : " NOCREATEROLE";
  out += r.createdb ? " CREATEDB" : " NOCREATEDB";
  out += (r.login && !hold_login) ? " LOGIN" : " NOLOGIN";
  out += r.replication ? " REPLICATION" : " NOREPLICATION";
  out += r.bypassrls ? " BYPASSRLS" : " NOBYPASSRLS";
  out += fmt::format(" CONNECTION LIMIT {}", r.connection_limit);
  if (r.valid_until) out += " VALID UNTIL " + Literal(*r.valid_until);
  return out;
}

std::string CreateRoleSql(const Role& r, bool hold_login) {
  return "CREATE ROLE " + QuoteIdent(r.name) + " WITH" + RoleAttributes(r, hold_login);
}

std::string AlterRoleSql(const Role& r, bool hold_login) {
  // No expiry on the source: lift the target's ('infinity' is the only way to say it).
  return "ALTER ROLE " + QuoteIdent(r.name) + " WITH" + RoleAttributes(r, hold_login) +
         (r.valid_until ? "" : " VALID UNTIL 'infinity'");
}

std::string RolePasswordSql(const std::string& role, const std::optional<std::string>& verifier) {
  return "ALTER ROLE " + QuoteIdent(role) + " PASSWORD " +
         (verifier ? Literal(*verifier) : std::string("NULL"));
}

std::string CommentSql(std::string_view kind, const std::string& name,
                       const std::optional<std::string>& comment) {
  return fmt::format("COMMENT ON {} {} IS {}", kind, QuoteIdent(name),
                     comment ? Literal(*comment) : std::string("NULL"));
}

std::string SetSql(const std::string& role, const Setting& s) {
  std::string in = s.database.empty() ? "" : " IN DATABASE " + QuoteIdent(s.database);
  return fmt::format("ALTER ROLE {}{} SET {} = {}", QuoteIdent(role), in, GucName(s.name),
                     SettingValue(s));
}

std::string ResetSql(const std::string& role, const Setting& s) {
  std::string in = s.database.empty() ? "" : " IN DATABASE " + QuoteIdent(s.database);
  return fmt::format("ALTER ROLE {}{} RESET {}", QuoteIdent(role), in, GucName(s.name));
}

std::string DatabaseSetSql(const std::string& database, const Setting& s) {
  return fmt::format("ALTER DATABASE {} SET {} = {}", QuoteIdent(database), GucName(s.name),
                     SettingValue(s));
}

std::string DatabaseResetSql(const std::string& database, const Setting& s) {
  return fmt::format("ALTER DATABASE {} RESET {}", QuoteIdent(database), GucName(s.name));
}

std::string GrantSql(const Membership& m, int target_major) {
  std::string sql = fmt::format("GRANT {} TO {}", QuoteIdent(m.role), QuoteIdent(m.member));
  if (target_major >= 16) {
    sql += fmt::format(" WITH ADMIN {}, INHERIT {}, SET {}", m.admin ? "TRUE" : "FALSE",
                       m.inherit ? "TRUE" : "FALSE", m.set ? "TRUE" : "FALSE");
  } else if (m.admin) {
    sql += " WITH ADMIN OPTION";
  }
  return sql;
}

std::string RevokeSql(const Membership& m, int target_major) {
  std::string sql = fmt::format("REVOKE {} FROM {}", QuoteIdent(m.role), QuoteIdent(m.member));
  if (target_major >= 16 && !m.grantor.empty()) sql += " GRANTED BY " + QuoteIdent(m.grantor);
  return sql;
}

Result<std::string> CreateDatabaseSql(const Database& db, const std::string& tablespace,
                                      int target_major) {
  std::string sql = fmt::format("CREATE DATABASE {} TEMPLATE template0 ENCODING {}",
                                QuoteIdent(db.name), Literal(db.encoding));
  sql += fmt::format(" LC_COLLATE {} LC_CTYPE {}", Literal(db.collate), Literal(db.ctype));
  if (db.provider == 'i') {
    if (target_major < 15) {
      return Status::Error(ErrorCode::kGlobalsUnsupported,
                           fmt::format("database \"{}\" uses the ICU locale provider, which "
                                       "PostgreSQL {} cannot create databases with",
                                       db.name, target_major),
                           "use a target of PostgreSQL 15 or later");
    }
    sql += " LOCALE_PROVIDER icu ICU_LOCALE " + Literal(db.locale);
    if (!db.icu_rules.empty()) {
      if (target_major < 16) {
        return Status::Error(ErrorCode::kGlobalsUnsupported,
                             fmt::format("database \"{}\" has ICU rules, which PostgreSQL {} "
                                         "does not have",
                                         db.name, target_major),
                             "use a target of PostgreSQL 16 or later");
      }
      sql += " ICU_RULES " + Literal(db.icu_rules);
    }
  } else if (db.provider == 'b') {
    if (target_major < 17) {
      return Status::Error(ErrorCode::kGlobalsUnsupported,
                           fmt::format("database \"{}\" uses the builtin locale provider, which "
                                       "PostgreSQL {} does not have",
                                       db.name, target_major),
                           "use a target of PostgreSQL 17 or later");
    }
    sql += " LOCALE_PROVIDER builtin BUILTIN_LOCALE " + Literal(db.locale);
  } else if (target_major >= 15) {
    sql += " LOCALE_PROVIDER libc";
  }
  if (!tablespace.empty() && tablespace != "pg_default")
    sql += " TABLESPACE " + QuoteIdent(tablespace);
  return sql;
}

std::string GrantDatabaseSql(const std::string& database, const AclItem& item) {
  return fmt::format("GRANT {} ON DATABASE {} TO {}{}", item.privilege, QuoteIdent(database),
                     Grantee(item.grantee), item.grantable ? " WITH GRANT OPTION" : "");
}

std::string RevokeDatabaseSql(const std::string& database, const AclItem& item) {
  return fmt::format("REVOKE {} ON DATABASE {} FROM {} CASCADE", item.privilege,
                     QuoteIdent(database), Grantee(item.grantee));
}

}  // namespace pgbaton::tools::globals

// The globals of a cluster: what logical decoding never carries. Roles with their attributes,
// password verifiers, memberships, per-role and per-role-per-database settings and comments;
// databases with their owner, encoding, locale, settings, ACLs and comments; the tablespaces in
// use. ReadGlobals reads them from one server as plain values (no SQL leaves this model); diff.h
// compares two of them, apply.h brings a target level. Shared by `pgbaton globals` and, later,
// by cutover's drift check and `status`.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/pg.h"
#include "common/status.h"

namespace pgbaton::tools::globals {

// A setting as ALTER ROLE/DATABASE ... SET stores it (pg_db_role_setting.setconfig).
struct Setting {
  std::string database;  // for a role: "" = every database, else ALTER ROLE .. IN DATABASE
  std::string name;      // e.g. statement_timeout
  std::string value;     // as stored, e.g. 1s or "$user", public
  bool operator==(const Setting&) const = default;
  auto operator<=>(const Setting&) const = default;
};

struct Role {
  std::string name;
  bool superuser = false;
  bool inherit = true;
  bool createrole = false;
  bool createdb = false;
  bool login = false;
  bool replication = false;
  bool bypassrls = false;
  int connection_limit = -1;               // -1: no limit
  std::optional<std::string> valid_until;  // timestamptz text in UTC; nullopt: no expiry
  // The verifier (SCRAM-SHA-256$..., md5...) when read from pg_authid; nullopt when the role
  // has none, or when passwords could not be read (Globals::passwords_readable).
  std::optional<std::string> password;
  std::optional<std::string> comment;  // pg_shdescription
  std::vector<Setting> settings;       // sorted
  bool predefined = false;             // pg_* roles (OID below 16384, not the bootstrap one)
  bool bootstrap = false;              // the bootstrap superuser (OID 10)
};

// `member` is a member of `role`. Before 16, inherit is the member's rolinherit and set is true
// (what the grant behaves as); from 16 both are the grant's own options.
struct Membership {
  std::string role;
  std::string member;
  std::string grantor;
  bool admin = false;
  bool inherit = true;
  bool set = true;
};

// One privilege of a database ACL (aclexplode of datacl, or of acldefault when it is NULL).
struct AclItem {
  std::string grantee;    // "" for PUBLIC
  std::string privilege;  // CONNECT, CREATE, TEMPORARY
  bool grantable = false;
  bool operator==(const AclItem&) const = default;
  auto operator<=>(const AclItem&) const = default;
};

struct Database {
  std::string name;
  std::string owner;
  std::string encoding;  // UTF8
  std::string collate;   // LC_COLLATE
  std::string ctype;     // LC_CTYPE
  char provider = 'c';   // 'c' libc, 'i' ICU (15+), 'b' builtin (17+)
  std::string locale;    // ICU or builtin locale ("" for libc)
  std::string icu_rules;
  int connection_limit = -1;
  std::string tablespace;    // pg_default unless placed elsewhere
  std::vector<AclItem> acl;  // sorted
  std::optional<std::string> comment;
  std::vector<Setting> settings;  // ALTER DATABASE .. SET, sorted (database field empty)
};

// A tablespace other than pg_default/pg_global, and the databases with objects in it.
struct Tablespace {
  std::string name;
  std::vector<std::string> used_by;  // database names
};

struct Globals {
  int major = 0;                    // server major
  std::string current_user;         // the role that read them
  bool passwords_readable = false;  // pg_authid readable: Role::password is meaningful
  bool superuser = false;           // current_user is a superuser
  std::vector<Role> roles;          // sorted by name; predefined and bootstrap included
  std::vector<Membership> memberships;
  std::vector<Database> databases;  // sorted; template0/template1 left out
  std::vector<Tablespace> tablespaces;
  // pgbaton's own records on this server (in the database connected to): the roles a previous
  // `globals --apply` created or synced, and the held logins (role -> intended LOGIN).
  std::set<std::string> synced_roles;
  std::map<std::string, bool> held_logins;
  bool records = false;  // pgbaton's record tables exist: a `globals --apply` ran here
  // Role -> what depends on it here (pg_shdepend: owned objects and privileges, in any
  // database), e.g. "3 objects in databases app, postgres"; roles without any are absent.
  std::map<std::string, std::string> dependents;

  const Role* FindRole(const std::string& name) const;
  const Database* FindDatabase(const std::string& name) const;
};

// Reads the globals `conn` can see. Sets the session's TimeZone to UTC (VALID UNTIL is compared
// as text). Errors: the connection's; a role that may not read pg_authid is not an error
// (passwords_readable is false).
Result<Globals> ReadGlobals(PgConn& conn);

// pgbaton's bookkeeping tables on the target (schema pgbaton of the database connected to).
inline constexpr const char* kSyncedRolesTable = "pgbaton.globals_roles";
inline constexpr const char* kHeldLoginsTable = "pgbaton.held_logins";

}  // namespace pgbaton::tools::globals

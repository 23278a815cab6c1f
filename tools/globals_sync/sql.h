// The SQL that brings a target's globals level, as the target's major expresses it: role
// attributes, membership options (per-grant INHERIT/SET from 16, only ADMIN before), locale
// providers (15+, builtin 17+). Every name goes through QuoteIdent, every value through Literal.
// Pure functions, no connection; the statements may hold a password verifier: never print them.
#pragma once

#include <string>
#include <string_view>

#include "tools/globals_sync/globals.h"

namespace pgbaton::tools::globals {

// 'text' with every quote doubled, for a session with standard_conforming_strings on (the apply
// session sets it).
std::string Literal(std::string_view text);

// " SUPERUSER NOINHERIT ... CONNECTION LIMIT n [VALID UNTIL '...']": every attribute of `role`
// (LOGIN replaced by NOLOGIN when `hold_login`), no password.
std::string RoleAttributes(const Role& role, bool hold_login);
// CREATE ROLE "name" WITH <attributes>.
std::string CreateRoleSql(const Role& role, bool hold_login);
// ALTER ROLE "name" WITH <attributes>, VALID UNTIL 'infinity' when the role has no expiry.
std::string AlterRoleSql(const Role& role, bool hold_login);
// ALTER ROLE "name" PASSWORD '<verifier>' (stored as it is), or PASSWORD NULL.
std::string RolePasswordSql(const std::string& role, const std::optional<std::string>& verifier);
// COMMENT ON ROLE / DATABASE "name" IS '...' (or NULL).
std::string CommentSql(std::string_view kind, const std::string& name,
                       const std::optional<std::string>& comment);

// ALTER ROLE "r" [IN DATABASE "d"] SET name = value, or ALTER DATABASE "d" SET ... when
// `role` is empty. List settings (search_path ...) keep their stored, already quoted form.
std::string SetSql(const std::string& role, const Setting& setting);
std::string ResetSql(const std::string& role, const Setting& setting);
std::string DatabaseSetSql(const std::string& database, const Setting& setting);
std::string DatabaseResetSql(const std::string& database, const Setting& setting);

// GRANT "role" TO "member" with the options `target_major` has: WITH ADMIN x, INHERIT y, SET z
// from 16; before 16 only WITH ADMIN OPTION (inherit belongs to the member role there).
std::string GrantSql(const Membership& m, int target_major);
// REVOKE "role" FROM "member" (GRANTED BY the grantor from 16, where grants are per grantor).
std::string RevokeSql(const Membership& m, int target_major);

// CREATE DATABASE "name" TEMPLATE template0 with the encoding, locale and provider of `db`, in
// `tablespace` ("" for the default), as `target_major` spells them. No owner: it is set with the
// roles, in their transaction. Errors: kGlobalsUnsupported when `target_major` has no way to
// express the provider (ICU before 15, builtin before 17).
Result<std::string> CreateDatabaseSql(const Database& db, const std::string& tablespace,
                                      int target_major);
// GRANT/REVOKE <privilege> ON DATABASE "d" TO/FROM "grantee"|PUBLIC.
std::string GrantDatabaseSql(const std::string& database, const AclItem& item);
std::string RevokeDatabaseSql(const std::string& database, const AclItem& item);

}  // namespace pgbaton::tools::globals

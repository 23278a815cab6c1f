// The cutover's part of the globals (roles, memberships, role settings: not in the WAL): the check
// that they have not drifted since pgbaton synced them, the sync inside the fence with
// --sync-globals, and the held logins that a `--fence roles` / `--flip roles` without a list use.
// Internal to tools/cutover/.
#pragma once

#include <string>
#include <vector>

#include "common/pg.h"
#include "common/status.h"

namespace pgbaton::tools::cutover {

struct GlobalsCheck {
  size_t to_apply = 0;  // with sync: the differences the fence applies
  std::string note;     // for the check phase's detail ("; globals level", ...)
};

// When pgbaton synced the globals (`globals --apply`, a cluster copy), a role created or a setting
// changed on the source since then would be missing on the new cluster after the flip: refused
// (kGlobalsDrift naming the first differences), or with `sync` counted for the fence. A migration
// whose globals pgbaton never synced, and a cut back (`target` the older major), are not checked.
// Only the roles, their memberships and settings are compared: the databases' own properties
// were carried when the migration was made. Errors: kGlobalsDrift, SyncGlobals'.
Result<GlobalsCheck> CheckGlobals(PgConn& source, PgConn& target,
                                  const std::string& source_conninfo,
                                  const std::string& target_conninfo, bool sync);

// Brings the roles, memberships and role settings level (inside the fence). Returns how many
// differences it applied. Errors: SyncGlobals'.
Result<size_t> ApplyGlobals(const std::string& source_conninfo, const std::string& target_conninfo);

// The roles the target holds NOLOGIN until the flip (`globals --hold-logins`, recorded in
// pgbaton.held_logins with their intended LOGIN), for `flag` (`--fence roles`, `--flip roles`)
// naming none. Errors: kNotFound when none is recorded, the connection's.
Result<std::vector<std::string>> HeldLogins(const std::string& target_conninfo,
                                            const std::string& flag);

}  // namespace pgbaton::tools::cutover

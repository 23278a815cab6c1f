// PgBouncer as the cutover's fence and flip, for one PgBouncer process or a fleet of them (several
// processes behind HAProxy, several hosts), all or nothing:
//  - fence: PAUSE the database on every member in parallel; complete only when every member has
//    reported it paused; if one fails, the others' PAUSEs are cancelled and every member resumed;
//  - flip: point every member at the new cluster (rewrite its pgbouncer.ini entry and RELOAD, or
//    run its flip command, then RELOAD), check with SHOW DATABASES where it points, and RESUME
//    only when every member points at the new cluster. A member that fails is retried until the
//    flip timeout; then every member is pointed back at the old cluster and resumed there. A
//    member is never resumed while another points elsewhere: never some writers on each side.
// The database is one name today; member operations take it as a parameter so that a per-database
// loop can be added. Fence and flip are driven from one thread; they use one thread per member.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tools/cutover/strategies.h"

namespace pgbaton::tools::cutover {

// Checks the members (which need an admin conninfo and, for --flip pgbouncer, an ini or a flip
// command, not both) and makes the fleet's fence for PgBouncer database `db`. Errors: kUsage
// naming the member.
Result<std::unique_ptr<Fence>> MakeFleet(const std::vector<PgBouncerMember>& members,
                                         const std::string& db, const StrategyContext& ctx);

// --flip pgbouncer: the flip of `fence` (a fleet from MakeFleet, which must outlive it). Errors:
// kUsage when `fence` is not a PgBouncer fleet, or a member has no ini and no flip command.
Result<std::unique_ptr<Flip>> MakeFleetFlip(Fence* fence);

// The members of --fence pgbouncer:ADMIN (repeated), with --pgbouncer-ini and
// --pgbouncer-flip-cmd each given once per member in the same order or not at all (an empty value
// skips a member), followed by `config_members` ([[cutover.pgbouncer]]). Errors: kUsage when a
// list has another length than the members, naming the counts.
Result<std::vector<PgBouncerMember>> AssembleMembers(
    const std::vector<std::string>& admins, const std::vector<std::string>& inis,
    const std::vector<std::string>& flip_cmds, const std::vector<PgBouncerMember>& config_members);

// One [[cutover.pgbouncer]] table as the config layer hands it over (a JSON object with "admin",
// "ini", "flip_cmd"). Errors: kUsage naming an unknown key or a value that is not a string.
Result<PgBouncerMember> ParseMemberJson(const std::string& json);

}  // namespace pgbaton::tools::cutover

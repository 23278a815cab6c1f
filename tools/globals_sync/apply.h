// Bringing a target level: the checks that need the target (can it create each missing
// database's locale?) and the apply itself. CREATE DATABASE cannot run in a transaction, so the
// missing databases are created first, one by one and idempotently; everything else (roles,
// passwords, settings, memberships, database properties, drops, pgbaton's records of synced
// roles and held logins) runs in one transaction: a failure there leaves the target as it was.
#pragma once

#include <functional>

#include "common/pg.h"
#include "common/status.h"
#include "tools/globals_sync/diff.h"
#include "tools/globals_sync/globals.h"

namespace pgbaton::tools::globals {

// Adds a blocker to `drift` for each database it creates whose locale the target cannot load
// (a libc locale not installed there, ICU not built in), naming the database and the locale.
// Each check runs in a transaction that is rolled back: nothing is left on the target.
// Errors: the connection's.
Status CheckCreatable(PgConn& target, const Globals& source, Drift* drift);

// Runs `drift`'s actions on `target`, calling `on_done` after each. Errors: kServerError (or
// the statement's SQLSTATE code) naming the object; on a failure in the transaction phase
// nothing of it stays, databases created before it do (they are skipped on the next run).
Status ApplyDrift(PgConn& target, const Drift& drift,
                  const std::function<void(const Action&)>& on_done = {});

}  // namespace pgbaton::tools::globals

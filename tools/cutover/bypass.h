// Fence verification: after the fence is up, client sessions on the source that could still
// write without going through the fence (a client connected straight to the old cluster,
// bypassing the poolers). A session counts when it is a client backend of a fenced database, not
// pgbaton's own (application_name "pgbaton..."), and either is inside a transaction (active or
// idle in transaction) or ran a statement after the fence was complete (its last state change is
// later: nothing that waits behind a paused pooler can do that). PgBouncer's own server
// connections are idle since before the fence was complete (PAUSE waits for them to be
// released), so they do not count; neither does a direct session that stays idle.
#pragma once

#include <string>
#include <vector>

#include "common/pg.h"
#include "common/status.h"
#include "tools/cutover/cutover.h"

namespace pgbaton::tools::cutover {

// The source's clock now (clock_timestamp() as text): the fence's completion time for
// FindBypassing. Errors: the query's.
Result<std::string> SourceClock(PgConn& source);

// The sessions of `databases` on `source` that can still write (see above), `since` being the
// source time the fence was complete. Errors: the query's.
Result<std::vector<BypassSession>> FindBypassing(PgConn& source,
                                                 const std::vector<std::string>& databases,
                                                 const std::string& since);

// pg_terminate_backend for each of `sessions` (marking them terminated), then waits up to
// `timeout` until they are gone. Errors: kPermission when one may not be terminated, kTimeout
// naming those still there.
Status TerminateBypassing(PgConn& source, std::vector<BypassSession>* sessions,
                          std::chrono::milliseconds timeout);

// kFenceBypassed naming each session (pid, user, application, client address, state) and what to
// do.
Status BypassError(const std::vector<BypassSession>& sessions, const std::string& when);

// "pid 123 user \"app\" application \"psql\" from 10.0.0.5 (idle in transaction)".
std::string DescribeSession(const BypassSession& s);

}  // namespace pgbaton::tools::cutover

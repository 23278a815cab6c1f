// DDL capture on the source for `--ddl replicate` (see docs/guide/dba.md, "Schema changes during
// the migration"): an event trigger (ddl_command_end, and sql_drop for what a statement drops) in
// pgbaton's schema records each DDL statement inside the statement's own transaction, as a
// transactional logical message (sources 14+) or a row of pgbaton.ddl_log, a table of the
// migration's publication (12 and 13, whose pgoutput cannot stream messages). The applier
// replays the records (applier/ddl_record.h). Installed by copy and migrate (before the slot, so
// that no statement after the copy's snapshot goes unrecorded), removed by cleanup.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/pg.h"
#include "common/status.h"
#include "queue/work_queue.h"

namespace pgbaton::tools::copy {

// Installs (or refreshes) the trigger, its functions and, before 14, pgbaton.ddl_log, which is
// added to `publication` unless that publication is FOR ALL TABLES. Idempotent.
// Errors: kPermission (event triggers need a superuser; hint: what to do), the connection's.
Status InstallDdlCapture(PgConn& source, const std::string& publication);

// InstallDdlCapture on a connection of its own to `source_conninfo` (stream and run).
Status EnsureDdlCapture(const std::string& source_conninfo, const std::string& publication);

// Drops the event triggers, their functions and pgbaton.ddl_log if present; a line saying what
// was done, for cleanup's report. Errors: the connection's.
Result<std::string> RemoveDdlCapture(PgConn& source);

// Records the copy's --include/--exclude in the queue's metadata ("ddl/filter"), so that the
// applier of any later verb replays DDL only on the tables the migration moves.
Status RecordDdlFilter(queue::WorkQueue* queue, const std::vector<std::string>& include,
                       const std::vector<std::string>& exclude);
// The filter RecordDdlFilter recorded, as ApplierOptions::ddl_table_selected wants it (unset when
// none was recorded). Errors: the queue's.
Result<std::function<bool(const std::string&, const std::string&)>> LoadDdlFilter(
    queue::WorkQueue* queue);

}  // namespace pgbaton::tools::copy

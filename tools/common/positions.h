// Where each stage of a migration stands, read from the places that hold the truth: the source's
// slot and walsender (pg_replication_slots, pg_stat_replication), the work queue, and the target's
// replication origins (or pgbaton.progress table). Shared by `pgbaton status` and the metrics
// sampler that long-running verbs start with --metrics-addr.
#pragma once

#include <optional>
#include <string>

#include "common/pg.h"
#include "common/status.h"
#include "common/types.h"
#include "queue/work_queue.h"

namespace pgbaton::tools {

// The source side of the slot named like the migration.
struct SourcePositions {
  Lsn current_lsn;  // pg_current_wal_lsn()
  Lsn flush_lsn;    // pg_current_wal_flush_lsn(): what a walsender may send
  bool slot_exists = false;
  bool slot_active = false;     // a walsender (the decoder) is attached
  Lsn restart_lsn;              // oldest WAL the slot keeps
  Lsn confirmed_flush_lsn;      // what the decoder confirmed (durable in the queue)
  Lsn sent_lsn;                 // the walsender's read position (Invalid when not active)
  uint64_t wal_held_bytes = 0;  // current_lsn - restart_lsn
};

// Reads the source's positions for slot `slot`. A missing slot is not an error (slot_exists is
// false). Errors: the connection's (kConnection, kPermission...).
Result<SourcePositions> ReadSourcePositions(PgConn& conn, const std::string& slot);

// The target's applied position is applier::ReadTargetPosition (applier/progress.h): the
// applier's own reader of the origins and progress rows it writes.

// The oldest committed transaction in `queue` with commit_lsn > `applied` (nullopt when the
// target has applied everything the queue holds). Errors: the queue's.
Result<std::optional<queue::CommitRecord>> OldestUnapplied(queue::WorkQueue* queue, Lsn applied);

// Bytes of source WAL whose transactions are not on the target yet: the WAL the decoder has not
// read (flush_lsn - sent_lsn while the slot is active, else flush_lsn - confirmed_flush_lsn) plus,
// when the queue holds unapplied transactions, queue_end - applied. 0 when caught up. Any input
// may be Invalid/absent (the part it measures then counts 0).
uint64_t LagBytes(const std::optional<SourcePositions>& source, Lsn queue_end, Lsn applied,
                  bool queue_has_unapplied);

// Seconds between `now` and the commit time of `oldest_unapplied` (0 when none or in the future).
double LagSeconds(const std::optional<queue::CommitRecord>& oldest_unapplied, PgTimestamp now);

}  // namespace pgbaton::tools

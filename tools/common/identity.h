// What a migration belongs to, checked in one place. The first verb that meets a fresh queue
// records the source (system identifier, database name and OID), the target (system identifier,
// database name and OID) and the slot (name, consistent point) in the queue's metadata, and the
// same on the target in pgbaton.migration; every verb that opens the queue or connects checks the
// live servers against those records before it changes anything, and checks that the positions
// chain (slot <= what the queue received, target within what the queue still holds). The records
// and the rules are described in docs/reference/queue-format.md ("identity").
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/pg.h"
#include "common/status.h"
#include "common/types.h"
#include "queue/work_queue.h"

namespace pgbaton::tools {

// One side of a migration as the server reports it.
struct DatabaseIdentity {
  std::string system_identifier;  // pg_control_system(); "" when the role may not read it
  std::string database;           // current_database()
  std::string database_oid;       // its pg_database OID, as text
  std::string description;        // "source (host:port/db)", password-free, for messages
};

// Reads `conn`'s identity. Errors: the connection's.
Result<DatabaseIdentity> ReadDatabaseIdentity(PgConn& conn);

// kSourceIsTarget when both name the same database of the same cluster (equal system identifier
// and database OID; with no system identifier readable, equal host, port and database OID).
Status CheckDistinct(const DatabaseIdentity& source, const DatabaseIdentity& target);

// What a verb asks of the check.
struct MigrationCheck {
  std::string name = "pgbaton";    // --name: the slot, publication, origin and queue
  std::string source_conninfo;     // "" when the verb does not connect to the source
  std::string target_conninfo;     // "" when the verb does not connect to the target
  std::string queue_label;         // for messages: `queue "/path"` or `kafka topic "t"`
  std::string queue_dir;           // RocksDB directory, removed on refusal if the open created it
  bool bind = false;               // record what is not recorded yet (copy, run, stream, apply)
  bool slot_must_be_idle = false;  // run, stream: kSlotInUse at once if the slot is active
  bool check_positions = false;    // run, stream, apply: the positions must chain
  // With bind: write pgbaton.migration on the target now (copy writes it after restoring the
  // schema instead, with RecordOnTarget, so that its schema "pgbaton" is not in the way).
  bool record_on_target = true;
  // Which verb runs, for hints ("copy", "run", ...).
  std::string verb;
};

// A check for the queue `qo` opens (name, label and directory filled in), for `verb`.
MigrationCheck QueueCheck(const queue::QueueOptions& qo, std::string verb);

// The live sides, read before the queue is opened.
struct LiveSides {
  std::optional<DatabaseIdentity> source;
  std::optional<DatabaseIdentity> target;
};

// Connects to each side the check names, reads its identity, refuses source == target
// (kSourceIsTarget) and, with slot_must_be_idle, a slot active in another process (kSlotInUse
// naming the pid; a slot that stays active for a few seconds, not the back-off of a retry loop).
// Changes nothing. Errors: the connections', kSourceIsTarget, kSlotInUse.
Result<LiveSides> CheckSides(const MigrationCheck& check);

// Checks the queue's (null: the verb has no queue) and the target's records against `live` and
// (with check_positions) the positions; with check.bind records what is missing (in the queue
// unless it is read-only, and in pgbaton.migration on the target). Errors: kIdentityMismatch naming
// the side and what changed, kQueueMissing, kSlotMissing (the slot is ahead of everything the queue
// received: re-created), the servers' and the queue's.
Status CheckQueue(const MigrationCheck& check, const LiveSides& live, queue::WorkQueue* queue,
                  bool queue_read_only = false);

// CheckSides, then `open` (which opens the verb's queue), then CheckQueue. On any refusal the
// queue is closed again and a RocksDB directory that did not exist before is removed, so a
// refused command leaves nothing behind.
using QueueOpener = std::function<Result<std::unique_ptr<queue::WorkQueue>>()>;
// `live`, when given, receives the live sides.
Result<std::unique_ptr<queue::WorkQueue>> OpenCheckedQueue(const MigrationCheck& check,
                                                           const QueueOpener& open,
                                                           bool queue_read_only = false,
                                                           LiveSides* live = nullptr);

// Writes the migration's row in pgbaton.migration on the target unless it is there (both sides
// must be in `live`). Errors: the target's (a role without CREATE only gets a warning).
Status RecordOnTarget(const MigrationCheck& check, const LiveSides& live);

// --- the records, for the verbs that create or drop what they describe ---

// Queue metadata keys.
inline constexpr const char* kIdentitySourceKey = "identity/source";
inline constexpr const char* kIdentityTargetKey = "identity/target";
inline constexpr const char* kIdentitySlotKey = "identity/slot";

// Records that `slot` was created for this queue at `start` (its consistent point).
Status RecordSlot(queue::WorkQueue* queue, const std::string& slot, Lsn start);
// Whether a slot was ever created for this queue, or the queue ever held a transaction: then a
// missing slot means changes were lost (kSlotMissing), never "create a new one".
Result<bool> QueueHasStreamed(queue::WorkQueue* queue);
// The highest end LSN the queue ever held durably (also after trims); Invalid when none.
Result<Lsn> QueueHighWater(queue::WorkQueue* queue);
// For cleanup, which drops what carries the migration's name (slot, publication, origins) on the
// servers it is given: checks the live sides against the identities recorded in `queue` (null:
// none given) and in pgbaton.migration on `target_conn` (null: no target given). A side that is
// another cluster or another database than recorded is refused with kIdentityMismatch (its
// objects of that name may be another migration's) unless `force`; a database re-created under
// the recorded name is accepted (what it holds of that name can only be this migration's
// leftovers). Returns lines saying what was checked, for cleanup's output. Changes nothing.
Result<std::vector<std::string>> CheckCleanupSides(const std::string& name,
                                                   const std::string& queue_label,
                                                   queue::WorkQueue* queue,
                                                   const std::optional<DatabaseIdentity>& source,
                                                   const std::optional<DatabaseIdentity>& target,
                                                   PgConn* target_conn, bool force);
// Removes the migration's row from pgbaton.migration on the target (and the table when it is
// empty): for cleanup. Returns a line saying what was done.
Result<std::string> ForgetMigration(PgConn& target, const std::string& name);

}  // namespace pgbaton::tools

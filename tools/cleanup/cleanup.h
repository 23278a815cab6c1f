// The steps of `pgbaton cleanup`, usable on their own (tests, cutover's final step). Each returns
// a line for the operator ("slot \"pgbaton\" on source: dropped" or "...: already gone").
#pragma once

#include <string>

#include "common/pg.h"
#include "common/status.h"

namespace pgbaton::tools::cleanup {

// Makes `conn` fit for cleanup's writes: SET default_transaction_read_only = off (the old database
// keeps that default after a read-only fence), then checks the session can write. Errors:
// kServerConfig when the server is a standby (read-only whatever the session says).
Status PrepareCleanupSession(PgConn* conn);
// Errors: kSlotInUse when the slot is active (naming the pid), and server errors.
Status CheckSlotNotActive(PgConn* source, const std::string& name);
Result<std::string> DropSlot(PgConn* source, const std::string& name);
Result<std::string> DropPublication(PgConn* source, const std::string& name);
// Drops the origins "<name>" and "<name>-<k>". Errors: kSlotInUse when an apply session holds one.
Result<std::string> DropOrigins(PgConn* target, const std::string& name);
// Deletes the migration's row from pgbaton.pause_request (verify --at-lsn's); drops the table
// when no other migration's row is left.
Result<std::string> DropPauseRequests(PgConn* target, const std::string& name);
// Deletes the migration's rows from pgbaton.progress; drops the table and the schema pgbaton
// when nothing else is left in them.
Result<std::string> DropProgress(PgConn* target, const std::string& name);
// Drops pgbaton.cutover_sentinel (the table cutover writes its sentinel rows to) and then the
// schema pgbaton if empty: on the source once no publication includes the table any more, on the
// target once no replication origin and no pgbaton.progress table is left (no other migration).
Result<std::string> DropSentinel(PgConn* conn, bool is_source);
// Errors: kQueueMismatch when `dir` does not look like a pgbaton queue (no RocksDB CURRENT or
// QUEUE_FORMAT file), kQueueLocked when a writer holds it, kIo.
Status CheckQueueRemovable(const std::string& dir);
// Whether `dir` holds a RocksDB queue (its CURRENT or QUEUE_FORMAT file).
bool LooksLikeQueue(const std::string& dir);
Result<std::string> RemoveQueueDir(const std::string& dir);

}  // namespace pgbaton::tools::cleanup

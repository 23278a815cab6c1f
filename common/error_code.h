// The one catalogue of error codes. Every failure pgbaton reports carries one of these; each has a
// stable process exit code that scripts may rely on (docs/reference/errors.md lists them all).
// Codes are never renumbered: add new ones, retire old ones by leaving a gap.
#pragma once

#include <string_view>
#include <vector>

namespace pgbaton {

enum class ErrorCode : int {
  kOk = 0,
  kInternal = 1,         // a bug in pgbaton: report it
  kUsage = 2,            // bad flags, config file or arguments
  kPreflightFailed = 3,  // preflight found blockers
  kInterrupted = 4,      // stopped by a signal before finishing
  kConnection = 10,      // a server could not be reached or the connection broke (retryable)
  kAuthentication = 11,  // wrong password or no pg_hba.conf entry
  kPermission = 12,      // the role lacks a privilege (REPLICATION, SELECT, ...)
  kServerConfig = 13,  // a server setting prevents the migration (wal_level, max_wal_senders, ...)
  kVersion = 14,       // an unsupported major version, or a target older than the source
  kSlotMissing = 20,   // the replication slot does not exist or was dropped
  kPublicationMissing = 21,  // the publication does not exist or was altered
  kSlotInUse = 22,  // the slot is active in another process or belongs to another migration
  kIdentityMismatch =
      23,                // the queue or target records another source or target (cluster, database)
  kSourceIsTarget = 24,  // --source and --target name the same database of the same cluster
  kQueueMissing = 25,    // the queue was lost or replaced, or no longer holds what the target needs
  kNoReplicaIdentity = 30,  // a table has no primary key and no replica identity
  kUnsupportedType = 31,    // a value or type the target cannot take
  kSchemaChanged = 32,      // DDL on the source mid-stream; the target schema no longer matches
  kApplyConflict = 33,      // a missing row for UPDATE/DELETE or a duplicate key on INSERT
  kServerError = 34,        // a server rejected a statement for another reason
  kQueueCorrupt = 40,       // a queue record failed its checksum or could not be decoded
  kQueueFormat = 41,        // the queue was written by a newer format version
  kQueueLocked = 42,        // another process holds the queue open for writing
  kDiskFull = 43,           // no space left for the queue or a temporary file
  kQueueMismatch = 44,      // the queue belongs to another migration or source
  kKafka = 45,              // the Kafka broker is unreachable or refused a request
  kIo = 46,                 // another I/O error on the queue or a local file
  kProtocol = 50,           // a malformed or unexpected replication protocol message
  kTargetNotEmpty = 60,     // copy found data already in a target table
  kSnapshotLost = 61,       // the exported snapshot is gone (its session ended)
  kLagTooHigh = 70,         // cutover refused: the applier is too far behind
  kApplierNotRunning = 71,  // cutover refused: nothing is applying
  kFenceFailed = 72,        // cutover could not fence writers (the fence was undone)
  kFlipFailed = 73,         // cutover could not flip writers (the fence was undone)
  kFenceBypassed = 74,      // cutover aborted: a client writes to the source around the fence
  kNotFound = 80,           // a named object (table, file, key) does not exist
  kVerifyMismatch = 81,     // verify found rows that differ
  kTimeout = 82,            // a wait ran out of time
  kGlobalsDrift = 83,       // globals (roles, memberships, settings, databases) differ (no --apply)
  kGlobalsUnsupported = 84,  // a global the target cannot take as it is (tablespace, locale)
};

// The process exit code for `code`: the enum's value, stable across releases.
constexpr int ExitCodeOf(ErrorCode code) { return static_cast<int>(code); }

// A short stable name for `code`, e.g. "slot_missing"; used in JSON output and logs.
std::string_view ErrorCodeName(ErrorCode code);

// Every code of the catalogue, in order (for documentation checks and --help output).
const std::vector<ErrorCode>& AllErrorCodes();

}  // namespace pgbaton

// The snapshot the initial copy reads from: a logical replication slot created with an exported
// snapshot, so that every table copied from it and the change stream that starts at the slot's
// consistent point meet exactly. The replication connection that created the slot stays open as
// long as the holder lives: the snapshot is valid only while that session is idle.
#pragma once

#include <memory>
#include <string>

#include "common/pg.h"
#include "common/status.h"
#include "common/types.h"
#include "decoder/replication.h"

namespace pgbaton::tools::copy {

// What the copy engine needs from a snapshot: its name (for SET TRANSACTION SNAPSHOT and
// pg_dump --snapshot) and the LSN it is consistent at (each table's sync LSN).
struct SnapshotRef {
  std::string name;  // e.g. "00000003-00000002-1"
  Lsn lsn;           // commits at or before it are visible in the snapshot, later ones are not
};

class SlotSnapshot {
 public:
  // Opens a replication connection to `conninfo` and creates the logical pgoutput slot `slot`
  // exporting a snapshot: a permanent one through the decoder's ReplicationConnection, or a
  // TEMPORARY one (dropped by the server when the holder dies, even by kill -9).
  // Errors: kConnection, kPermission (no REPLICATION), kSlotInUse (the slot already exists),
  // kServerConfig (max_replication_slots or wal_level), kServerError.
  static Result<std::unique_ptr<SlotSnapshot>> Create(const std::string& conninfo,
                                                      const std::string& slot, bool temporary);
  ~SlotSnapshot() = default;

  const SnapshotRef& snapshot() const { return snapshot_; }
  const std::string& slot() const { return slot_; }
  bool temporary() const { return temporary_; }
  // Ok while the exporting session is still connected. Errors: kSnapshotLost.
  Status CheckAlive();

 private:
  SlotSnapshot() = default;
  std::unique_ptr<decoder::ReplicationConnection> repl_;  // the permanent slot's session
  PgConn conn_;                                           // the temporary slot's session
  std::string slot_;
  bool temporary_ = false;
  SnapshotRef snapshot_;
};

// Whether a replication slot named `slot` exists on the server of `conn`.
Result<bool> SlotExists(PgConn& conn, const std::string& slot);

}  // namespace pgbaton::tools::copy

// The replication connection to the source: a libpq connection with replication=database that
// creates and drops logical slots (optionally exporting a snapshot), starts pgoutput streaming
// (COPY BOTH) with the options each major supports, receives XLogData and keepalives, and sends
// standby status updates. Also the framing of those CopyData messages, as pure functions.
// Not thread-safe: one thread per connection.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/pg.h"
#include "common/status.h"
#include "common/types.h"

namespace pgbaton::decoder {

// One CopyData message from the walsender.
struct XLogData {  // 'w'
  Lsn wal_start;
  Lsn wal_end;
  PgTimestamp send_time;
  std::string_view payload;  // the pgoutput message; points into the received buffer
};
struct Keepalive {  // 'k'
  Lsn wal_end;
  PgTimestamp send_time;
  bool reply_requested = false;
};

// Parses the framing of a CopyData message. Errors: kProtocol naming the type and length.
Result<XLogData> ParseXLogData(std::string_view bytes);
Result<Keepalive> ParseKeepalive(std::string_view bytes);
// A standby status update ('r') with write, flush and apply positions.
std::string EncodeStandbyStatus(Lsn write, Lsn flush, Lsn apply, PgTimestamp now,
                                bool reply_requested);

// The pgoutput protocol version and options a server major supports.
struct PgOutputOptions {
  int proto_version = 1;     // 1 up to 13, 2 on 14, 3 on 15, 4 on 16+
  bool messages = false;     // 14+: logical decoding messages
  bool streaming = false;    // 14+: stream large in-progress transactions ('on')
  bool origin_none = false;  // 16+: skip changes that carry a replication origin
  bool two_phase = false;    // 15+: only for captures; the decoder does not use it
  bool binary = false;       // 14+: binary values (opt-in)
  std::vector<std::string> publications;
};
// The defaults pgbaton uses for a server of `major`, publishing `publication`.
PgOutputOptions DefaultPgOutputOptions(int major, const std::string& publication);
// The START_REPLICATION option list, e.g. `(proto_version '4', publication_names '"p"', ...)`.
std::string FormatPgOutputOptions(const PgOutputOptions& options);

// The result of creating a slot that exports a snapshot.
struct ExportedSnapshot {
  std::string slot_name;
  Lsn consistent_point;
  std::string snapshot_name;  // for SET TRANSACTION SNAPSHOT '...'; empty if none was exported
};

class ReplicationConnection {
 public:
  // Connects with replication=database. `label` names the server in messages ("source").
  // Errors: as PgConn::Connect; kServerConfig when wal_level is not logical.
  static Result<std::unique_ptr<ReplicationConnection>> Connect(std::string_view conninfo,
                                                                std::string label = "source");
  ~ReplicationConnection();

  int server_major() const { return conn_.ServerMajor(); }
  // "source (host:port/db)", for messages.
  std::string Describe() const;
  PgConn& conn() { return conn_; }

  // Creates a logical pgoutput slot. With `export_snapshot` the snapshot stays valid while this
  // connection is open and idle (run no other command on it until the copy is done).
  // Errors: kServerConfig (wal_level), kSlotInUse (exists), kPermission.
  Result<ExportedSnapshot> CreateSlot(const std::string& slot, bool export_snapshot,
                                      bool two_phase = false);
  // Drops the slot (WAIT: until it is not active). kSlotMissing when it does not exist.
  Status DropSlot(const std::string& slot);
  Result<bool> SlotExists(const std::string& slot);

  // START_REPLICATION SLOT ... LOGICAL start (options). Errors: kSlotMissing, kSlotInUse,
  // kPublicationMissing, kServerConfig.
  Status StartReplication(const std::string& slot, Lsn start, const PgOutputOptions& options);

  // Waits up to `wait` for the next CopyData message; nullopt on timeout. The returned bytes
  // stay valid until the next call. Errors: kConnection (retryable) when the connection broke,
  // the server's error otherwise (kSlotMissing, kPublicationMissing, ...).
  Result<std::optional<std::string_view>> Receive(std::chrono::milliseconds wait);
  // Sends a standby status update and flushes it.
  Status SendStatus(Lsn write, Lsn flush, Lsn apply, bool reply_requested = false);

 private:
  ReplicationConnection() = default;
  Status ErrorFromCopy(PGresult* res, std::string_view what);
  Status TranslateError(Status s, const std::string& slot) const;

  PgConn conn_;
  std::string slot_;
  std::vector<std::string> publications_;
  char* buffer_ = nullptr;  // the last PQgetCopyData buffer
};

// Holds the connection that exported a snapshot: the snapshot stays usable until this object is
// destroyed. Used by `copy`: create it, copy every table under `info().snapshot_name`, drop it.
class SnapshotHolder {
 public:
  // Connects, creates `slot` exporting a snapshot. Errors: as Connect and CreateSlot.
  static Result<std::unique_ptr<SnapshotHolder>> Create(std::string_view conninfo,
                                                        const std::string& slot);
  const ExportedSnapshot& info() const { return info_; }

 private:
  std::unique_ptr<ReplicationConnection> conn_;
  ExportedSnapshot info_;
};

// Checks wal_level = logical. Errors: kServerConfig with a hint.
Status CheckLogicalDecoding(PgConn& conn);

}  // namespace pgbaton::decoder

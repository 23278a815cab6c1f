#include "decoder/replication.h"

#include <fmt/format.h>
#include <poll.h>

#include <cerrno>

#include "common/conninfo.h"
#include "common/sql_ident.h"

namespace pgbaton::decoder {
namespace {

uint64_t ReadBE(std::string_view b, size_t at, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(b[at + i]);
  return v;
}
void PutBE(std::string* out, uint64_t v, size_t n) {
  for (size_t i = n; i-- > 0;) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

bool Contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

Result<XLogData> ParseXLogData(std::string_view b) {
  if (b.size() < 25 || b[0] != 'w') {
    return Status::Error(
        ErrorCode::kProtocol,
        fmt::format("replication: malformed XLogData message of {} bytes", b.size()));
  }
  XLogData d;
  d.wal_start = Lsn(ReadBE(b, 1, 8));
  d.wal_end = Lsn(ReadBE(b, 9, 8));
  d.send_time = PgTimestamp{static_cast<int64_t>(ReadBE(b, 17, 8))};
  d.payload = b.substr(25);
  return d;
}

Result<Keepalive> ParseKeepalive(std::string_view b) {
  if (b.size() != 18 || b[0] != 'k') {
    return Status::Error(
        ErrorCode::kProtocol,
        fmt::format("replication: malformed keepalive message of {} bytes", b.size()));
  }
  Keepalive k;
  k.wal_end = Lsn(ReadBE(b, 1, 8));
  k.send_time = PgTimestamp{static_cast<int64_t>(ReadBE(b, 9, 8))};
  k.reply_requested = b[17] != 0;
  return k;
}

std::string EncodeStandbyStatus(Lsn write, Lsn flush, Lsn apply, PgTimestamp now,
                                bool reply_requested) {
  std::string out;
  out.reserve(34);
  out.push_back('r');
  PutBE(&out, write.value(), 8);
  PutBE(&out, flush.value(), 8);
  PutBE(&out, apply.value(), 8);
  PutBE(&out, static_cast<uint64_t>(now.micros), 8);
  out.push_back(reply_requested ? 1 : 0);
  return out;
}

PgOutputOptions DefaultPgOutputOptions(int major, const std::string& publication) {
  PgOutputOptions o;
  o.proto_version = major >= 16 ? 4 : major == 15 ? 3 : major == 14 ? 2 : 1;
  o.messages = major >= 14;
  o.streaming = major >= 14;
  o.origin_none = major >= 16;
  o.publications = {publication};
  return o;
}

std::string FormatPgOutputOptions(const PgOutputOptions& o) {
  // publication_names is a comma-separated list of identifiers, quoted as in SQL; the whole
  // value is a string literal, so double any single quote.
  std::string names;
  for (const auto& p : o.publications) {
    if (!names.empty()) names += ',';
    std::string ident = QuoteIdent(p);
    for (char c : ident) {
      if (c == '\'') names += '\'';
      names += c;
    }
  }
  std::string s = fmt::format("proto_version '{}', publication_names '{}'", o.proto_version, names);
  if (o.messages) s += ", messages 'true'";
  if (o.streaming) s += ", streaming 'on'";
  if (o.two_phase) s += ", two_phase 'on'";
  if (o.binary) s += ", binary 'true'";
  if (o.origin_none) s += ", origin 'none'";
  return "(" + s + ")";
}

Result<std::unique_ptr<ReplicationConnection>> ReplicationConnection::Connect(
    std::string_view conninfo, std::string label) {
  ConnectOptions opts;
  opts.label = std::move(label);
  opts.replication = true;
  PGB_ASSIGN_OR_RETURN(PgConn conn, PgConn::Connect(conninfo, opts));
  std::unique_ptr<ReplicationConnection> rc(new ReplicationConnection());
  rc->conn_ = std::move(conn);
  PGB_RETURN_IF_ERROR(CheckLogicalDecoding(rc->conn_));
  return rc;
}

ReplicationConnection::~ReplicationConnection() {
  if (buffer_ != nullptr) PQfreemem(buffer_);
}

std::string ReplicationConnection::Describe() const {
  return fmt::format("{} ({})", conn_.label(), conn_.description());
}

Status ReplicationConnection::TranslateError(Status s, const std::string& slot) const {
  if (s.ok()) return s;
  const std::string& m = s.message();
  if (Contains(m, "replication slot") && Contains(m, "does not exist")) {
    return Status::Error(
        ErrorCode::kSlotMissing, fmt::format("slot \"{}\" on {} does not exist", slot, Describe()),
        "the slot was dropped or never created: changes made since it went missing are lost; "
        "drop the queue and the target data and start the migration again with `pgbaton copy`");
  }
  if (Contains(m, "publication") && Contains(m, "does not exist")) {
    return Status::Error(
        ErrorCode::kPublicationMissing,
        fmt::format("publication on {} for slot \"{}\" does not exist: {}", Describe(), slot, m),
        "create it again (CREATE PUBLICATION ... FOR ALL TABLES) with the same "
        "name, or run `pgbaton stream`, which creates it when missing");
  }
  if (Contains(m, "wal_level")) {
    return Status::Error(ErrorCode::kServerConfig, m,
                         "set wal_level = logical in postgresql.conf and restart the server");
  }
  if (Contains(m, "is active for PID")) {
    // Retryable: after a crash the server may not have noticed yet that the previous walsender's
    // client is gone; the loop's backoff outlasts that, and gives up if the slot stays busy.
    return Status::Error(ErrorCode::kSlotInUse, m,
                         "another process uses the slot: stop it, or choose another --name",
                         /*retryable=*/true);
  }
  if (Contains(m, "already exists")) {
    return Status::Error(ErrorCode::kSlotInUse, m,
                         "another process uses the slot: stop it, or choose another --name");
  }
  return s;
}

Result<ExportedSnapshot> ReplicationConnection::CreateSlot(const std::string& slot,
                                                           bool export_snapshot, bool two_phase) {
  std::string ident = QuoteIdent(slot);
  std::string sql;
  if (server_major() >= 15) {
    std::string opts = fmt::format("SNAPSHOT '{}'", export_snapshot ? "export" : "nothing");
    if (two_phase) opts += ", TWO_PHASE";
    sql = fmt::format("CREATE_REPLICATION_SLOT {} LOGICAL pgoutput ({})", ident, opts);
  } else {
    sql = fmt::format("CREATE_REPLICATION_SLOT {} LOGICAL pgoutput {}{}", ident,
                      two_phase ? "TWO_PHASE " : "",
                      export_snapshot ? "EXPORT_SNAPSHOT" : "NOEXPORT_SNAPSHOT");
  }
  auto res = conn_.Exec(sql);
  if (!res.ok()) return TranslateError(res.status(), slot);
  // Columns: slot_name, consistent_point, snapshot_name, output_plugin.
  ExportedSnapshot out;
  out.slot_name = res->GetString(0, 0);
  PGB_ASSIGN_OR_RETURN(out.consistent_point, Lsn::Parse(res->Get(0, 1)));
  if (!res->IsNull(0, 2)) out.snapshot_name = res->GetString(0, 2);
  return out;
}

Status ReplicationConnection::DropSlot(const std::string& slot) {
  auto res = conn_.Exec(fmt::format("DROP_REPLICATION_SLOT {} WAIT", QuoteIdent(slot)));
  return TranslateError(res.status(), slot);
}

Result<bool> ReplicationConnection::SlotExists(const std::string& slot) {
  // A replication connection takes only the simple query protocol.
  PGB_ASSIGN_OR_RETURN(PgResult res,
                       conn_.Exec("select 1 from pg_replication_slots where slot_name = " +
                                  conn_.QuoteLiteral(slot)));
  return res.rows() > 0;
}

Status ReplicationConnection::StartReplication(const std::string& slot, Lsn start,
                                               const PgOutputOptions& options) {
  slot_ = slot;
  std::string sql = fmt::format("START_REPLICATION SLOT {} LOGICAL {} {}", QuoteIdent(slot),
                                start.ToString(), FormatPgOutputOptions(options));
  PgResult res(PQexec(conn_.raw(), sql.c_str()));
  if (res.raw() != nullptr && PQresultStatus(res.raw()) == PGRES_COPY_BOTH) return Status::Ok();
  return TranslateError(conn_.ErrorFrom(res.raw(), "START_REPLICATION"), slot);
}

Status ReplicationConnection::ErrorFromCopy(PGresult* first, std::string_view what) {
  // After the copy ends, libpq hands the server's error as the next result.
  PgResult res(first != nullptr ? first : PQgetResult(conn_.raw()));
  while (PGresult* more = PQgetResult(conn_.raw())) PQclear(more);
  if (res.raw() != nullptr && PQresultStatus(res.raw()) == PGRES_COMMAND_OK) {
    return Status::Error(ErrorCode::kConnection,
                         fmt::format("{}: the server ended replication", Describe()),
                         "the server may be shutting down; pgbaton reconnects", true);
  }
  return TranslateError(conn_.ErrorFrom(res.raw(), what), slot_);
}

Result<std::optional<std::string_view>> ReplicationConnection::Receive(
    std::chrono::milliseconds wait) {
  if (buffer_ != nullptr) {
    PQfreemem(buffer_);
    buffer_ = nullptr;
  }
  auto deadline = std::chrono::steady_clock::now() + wait;
  // The socket is looked at once even with no time to wait: "nothing yet" must mean the server
  // sent nothing more, not that libpq has not read it (the stream flushes when idle).
  for (bool first = true;; first = false) {
    int n = PQgetCopyData(conn_.raw(), &buffer_, 1);
    if (n > 0) return std::optional<std::string_view>(std::string_view(buffer_, n));
    if (n == -1) return ErrorFromCopy(nullptr, "replication");
    if (n == -2) return conn_.ErrorFrom(nullptr, "replication");
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 && !first) return std::optional<std::string_view>();
    pollfd p{PQsocket(conn_.raw()), POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
    if (r < 0 && errno != EINTR) {
      return Status::Error(ErrorCode::kConnection,
                           fmt::format("{}: poll failed: {}", Describe(), strerror(errno)), "",
                           true);
    }
    if (r > 0 && PQconsumeInput(conn_.raw()) == 0) {
      return conn_.ErrorFrom(nullptr, "replication");
    }
    if (r <= 0) return std::optional<std::string_view>();  // timed out or interrupted
  }
}

Status ReplicationConnection::SendStatus(Lsn write, Lsn flush, Lsn apply, bool reply_requested) {
  std::string msg = EncodeStandbyStatus(write, flush, apply, PgTimestamp::Now(), reply_requested);
  if (PQputCopyData(conn_.raw(), msg.data(), static_cast<int>(msg.size())) != 1 ||
      PQflush(conn_.raw()) != 0) {
    return conn_.ErrorFrom(nullptr, "standby status update");
  }
  return Status::Ok();
}

Result<std::unique_ptr<SnapshotHolder>> SnapshotHolder::Create(std::string_view conninfo,
                                                               const std::string& slot) {
  std::unique_ptr<SnapshotHolder> h(new SnapshotHolder());
  PGB_ASSIGN_OR_RETURN(h->conn_, ReplicationConnection::Connect(conninfo, "source"));
  PGB_ASSIGN_OR_RETURN(h->info_, h->conn_->CreateSlot(slot, /*export_snapshot=*/true));
  return h;
}

Status CheckLogicalDecoding(PgConn& conn) {
  PGB_ASSIGN_OR_RETURN(std::string level, conn.QueryValue("show wal_level"));
  if (level != "logical") {
    return Status::Error(
        ErrorCode::kServerConfig,
        fmt::format("{} ({}) has wal_level = {}: logical decoding needs wal_level = logical",
                    conn.label(), conn.description(), level),
        "set wal_level = logical in postgresql.conf and restart the server");
  }
  return Status::Ok();
}

}  // namespace pgbaton::decoder

#include "tools/initial_copy/snapshot.h"

#include <fmt/format.h>

#include "common/sql_ident.h"

namespace pgbaton::tools::copy {

Result<std::unique_ptr<SlotSnapshot>> SlotSnapshot::Create(const std::string& conninfo,
                                                           const std::string& slot,
                                                           bool temporary) {
  std::unique_ptr<SlotSnapshot> s(new SlotSnapshot());
  s->slot_ = slot;
  s->temporary_ = temporary;
  if (!temporary) {
    // The streaming slot: created by the decoder's replication connection, kept open so the
    // exported snapshot stays valid.
    PGB_ASSIGN_OR_RETURN(s->repl_, decoder::ReplicationConnection::Connect(conninfo, "source"));
    PGB_ASSIGN_OR_RETURN(decoder::ExportedSnapshot e,
                         s->repl_->CreateSlot(slot, /*export_snapshot=*/true));
    s->snapshot_ = SnapshotRef{e.snapshot_name, e.consistent_point};
    return s;
  }
  // A TEMPORARY slot, only for its snapshot (the decoder's API creates permanent slots only):
  // the server drops it when this session ends, however it ends, so a killed copy leaks nothing.
  ConnectOptions opts;
  opts.label = "source";
  opts.replication = true;
  opts.application_name = "pgbaton copy";
  PGB_ASSIGN_OR_RETURN(PgConn conn, PgConn::Connect(conninfo, opts));
  // 15+ document the option list; 13 and 14 know only the keyword form.
  std::string sql =
      conn.ServerMajor() >= 15
          ? fmt::format("CREATE_REPLICATION_SLOT {} TEMPORARY LOGICAL pgoutput (SNAPSHOT 'export')",
                        QuoteIdent(slot))
          : fmt::format("CREATE_REPLICATION_SLOT {} TEMPORARY LOGICAL pgoutput EXPORT_SNAPSHOT",
                        QuoteIdent(slot));
  auto res = conn.Exec(sql);
  if (!res.ok()) {
    const Status& st = res.status();
    std::string what = fmt::format("creating temporary replication slot \"{}\" on source ({})",
                                   slot, conn.description());
    if (st.message().find("max_replication_slots") != std::string::npos ||
        st.message().find("wal_level") != std::string::npos) {
      return Status::Error(ErrorCode::kServerConfig, fmt::format("{}: {}", what, st.message()),
                           "a resumed copy needs one free replication slot for a moment: raise "
                           "max_replication_slots on the source (and wal_level = logical)");
    }
    return st.WithContext(what);
  }
  if (res->rows() != 1 || res->columns() < 3) {
    return Status::Error(ErrorCode::kProtocol,
                         fmt::format("creating replication slot \"{}\": unexpected reply", slot));
  }
  PGB_ASSIGN_OR_RETURN(Lsn lsn, Lsn::Parse(res->Get(0, 1)));
  s->snapshot_ = SnapshotRef{res->GetString(0, 2), lsn};
  s->conn_ = std::move(conn);
  return s;
}

Status SlotSnapshot::CheckAlive() {
  PgConn& conn = repl_ ? repl_->conn() : conn_;
  // A terminated session sends an error message, then closes: the first read may take only the
  // message, the second sees the end of the connection.
  bool alive = conn.connected();
  for (int i = 0; i < 2 && alive; ++i) alive = PQconsumeInput(conn.raw()) == 1 && conn.connected();
  if (alive) return Status::Ok();
  return Status::Error(ErrorCode::kSnapshotLost,
                       fmt::format("snapshot \"{}\" of slot \"{}\" is lost: the source session "
                                   "that exported it ended",
                                   snapshot_.name, slot_),
                       "run the same command again: finished tables are kept and the rest are "
                       "copied at a new snapshot");
}

Result<bool> SlotExists(PgConn& conn, const std::string& slot) {
  PGB_ASSIGN_OR_RETURN(
      PgResult res,
      conn.ExecParams("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", {slot}));
  return res.rows() > 0;
}

}  // namespace pgbaton::tools::copy

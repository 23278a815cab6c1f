#include "tools/copy/snapshot.h"

#include <fmt/format.h>

namespace pgbaton::tools::copy {

Result<std::unique_ptr<SlotSnapshot>> SlotSnapshot::Create(const std::string& conninfo,
                                                           const std::string& slot,
                                                           bool temporary) {
  ConnectOptions opts;
  opts.label = "source";
  opts.replication = true;
  opts.application_name = "pgbaton copy";
  PGB_ASSIGN_OR_RETURN(PgConn conn, PgConn::Connect(conninfo, opts));
  std::unique_ptr<SlotSnapshot> s(new SlotSnapshot());
  // 15+ takes the option list; 13 and 14 only the old keyword (which 15+ still accept, but the
  // option list is the documented form there).
  std::string sql =
      conn.ServerMajor() >= 15
          ? fmt::format("CREATE_REPLICATION_SLOT {}{} LOGICAL pgoutput (SNAPSHOT 'export')",
                        conn.QuoteIdent(slot), temporary ? " TEMPORARY" : "")
          : fmt::format("CREATE_REPLICATION_SLOT {}{} LOGICAL pgoutput EXPORT_SNAPSHOT",
                        conn.QuoteIdent(slot), temporary ? " TEMPORARY" : "");
  auto res = conn.Exec(sql);
  if (!res.ok()) {
    const Status& st = res.status();
    std::string what =
        fmt::format("creating replication slot \"{}\" on source ({})", slot, conn.description());
    if (st.message().find("already exists") != std::string::npos) {
      return Status::Error(ErrorCode::kSlotInUse, fmt::format("{}: it already exists", what),
                           "another migration uses this --name; pick another --name, or drop the "
                           "slot with pgbaton cleanup if it is left over");
    }
    if (st.message().find("max_replication_slots") != std::string::npos ||
        st.message().find("wal_level") != std::string::npos) {
      return Status::Error(ErrorCode::kServerConfig, fmt::format("{}: {}", what, st.message()),
                           "set wal_level = logical and raise max_replication_slots on the "
                           "source, then restart it");
    }
    return st.WithContext(what);
  }
  if (res->rows() != 1 || res->columns() < 3) {
    return Status::Error(ErrorCode::kProtocol,
                         fmt::format("creating replication slot \"{}\": unexpected reply", slot));
  }
  PGB_ASSIGN_OR_RETURN(Lsn lsn, Lsn::Parse(res->Get(0, 1)));
  s->snapshot_ = SnapshotRef{res->GetString(0, 2), lsn};
  s->slot_ = slot;
  s->temporary_ = temporary;
  s->conn_ = std::move(conn);
  return s;
}

Status SlotSnapshot::CheckAlive() {
  if (conn_.connected() && PQconsumeInput(conn_.raw()) == 1 && conn_.connected()) {
    return Status::Ok();
  }
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

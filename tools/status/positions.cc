#include "tools/status/positions.h"

#include <algorithm>
#include <chrono>

namespace pgbaton::tools {
namespace {

Lsn ParseOr(const PgResult& res, int row, int col) {
  if (res.IsNull(row, col)) return Lsn();
  auto l = Lsn::Parse(res.Get(row, col));
  return l.ok() ? *l : Lsn();
}

uint64_t Minus(Lsn a, Lsn b) {
  if (!a.IsValid() || !b.IsValid() || a <= b) return 0;
  return a.value() - b.value();
}

bool IsOurName(const std::string& name, const std::string& found) {
  if (found == name) return true;
  if (found.size() <= name.size() + 1 || found.compare(0, name.size(), name) != 0 ||
      found[name.size()] != '-') {
    return false;
  }
  return std::all_of(found.begin() + static_cast<std::ptrdiff_t>(name.size()) + 1, found.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

Result<SourcePositions> ReadSourcePositions(PgConn& conn, const std::string& slot) {
  SourcePositions p;
  // One statement, so that every position comes from the same moment. sent_lsn is the logical
  // walsender's decoding position; it follows the flush position closely while it keeps up.
  PGB_ASSIGN_OR_RETURN(
      PgResult res,
      conn.ExecParams(
          "select pg_catalog.pg_current_wal_lsn(), pg_catalog.pg_current_wal_flush_lsn(), "
          "s.slot_name is not null, coalesce(s.active, false), s.restart_lsn, "
          "s.confirmed_flush_lsn, r.sent_lsn "
          "from (select 1) one "
          "left join pg_catalog.pg_replication_slots s on s.slot_name = $1 "
          "left join pg_catalog.pg_stat_replication r on r.pid = s.active_pid",
          {slot}));
  if (res.rows() != 1) return p;
  p.current_lsn = ParseOr(res, 0, 0);
  p.flush_lsn = ParseOr(res, 0, 1);
  p.slot_exists = res.GetBool(0, 2);
  p.slot_active = res.GetBool(0, 3);
  p.restart_lsn = ParseOr(res, 0, 4);
  p.confirmed_flush_lsn = ParseOr(res, 0, 5);
  p.sent_lsn = ParseOr(res, 0, 6);
  p.wal_held_bytes = Minus(p.current_lsn, p.restart_lsn);
  return p;
}

Result<Lsn> ReadAppliedPosition(PgConn& conn, const std::string& name, bool flushed) {
  Lsn best;
  // Origins: what the applier uses unless the role may not (then the table below).
  // A role that may not call pg_replication_origin_progress has no origins of its own either:
  // its applier keeps the position in pgbaton.progress, read below.
  auto origins = conn.ExecParams(
      "select roname, pg_catalog.pg_replication_origin_progress(roname, $2::bool) "
      "from pg_catalog.pg_replication_origin where roname = $1 or "
      "starts_with(roname, $1 || '-')",
      {name, flushed ? "true" : "false"});
  if (!origins.ok() && origins.status().code() != ErrorCode::kPermission) return origins.status();
  if (origins.ok()) {
    for (int r = 0; r < origins->rows(); ++r) {
      if (IsOurName(name, origins->GetString(r, 0))) {
        best = std::max(best, ParseOr(*origins, r, 1));
      }
    }
  }
  // A bool result, not a string: GCC 12 sees a string moved out of Result<> as maybe
  // uninitialized when it inlines the comparison.
  PGB_ASSIGN_OR_RETURN(PgResult has_table,
                       conn.Exec("select pg_catalog.to_regclass('pgbaton.progress') is not null"));
  if (has_table.rows() == 1 && has_table.GetBool(0, 0)) {
    PGB_ASSIGN_OR_RETURN(PgResult rows,
                         conn.ExecParams("select name, lsn::text from pgbaton.progress where "
                                         "name = $1 or starts_with(name, $1 || '-')",
                                         {name}));
    for (int r = 0; r < rows.rows(); ++r) {
      if (IsOurName(name, rows.GetString(r, 0))) best = std::max(best, ParseOr(rows, r, 1));
    }
  }
  return best;
}

Result<std::optional<queue::CommitRecord>> OldestUnapplied(queue::WorkQueue* queue, Lsn applied) {
  PGB_ASSIGN_OR_RETURN(auto cursor, queue->ReadFrom(applied));
  PGB_ASSIGN_OR_RETURN(auto txn, cursor->Next(std::chrono::milliseconds(0)));
  if (!txn) return std::optional<queue::CommitRecord>();
  return std::optional<queue::CommitRecord>(txn->commit());
}

uint64_t LagBytes(const std::optional<SourcePositions>& source, Lsn queue_end, Lsn applied,
                  bool queue_has_unapplied) {
  uint64_t lag = 0;
  if (source && source->slot_exists) {
    Lsn read = source->slot_active && source->sent_lsn.IsValid() ? source->sent_lsn
                                                                 : source->confirmed_flush_lsn;
    lag += Minus(source->flush_lsn, read);
  }
  if (queue_has_unapplied) lag += Minus(queue_end, applied);
  return lag;
}

double LagSeconds(const std::optional<queue::CommitRecord>& oldest_unapplied, PgTimestamp now) {
  if (!oldest_unapplied) return 0;
  int64_t d = now.micros - oldest_unapplied->commit_time.micros;
  return d > 0 ? static_cast<double>(d) / 1e6 : 0;
}

}  // namespace pgbaton::tools

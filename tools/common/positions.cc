#include "tools/common/positions.h"

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

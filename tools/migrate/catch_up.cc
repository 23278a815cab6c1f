#include "tools/migrate/catch_up.h"

#include <thread>

#include "applier/progress.h"
#include "common/log.h"
#include "tools/common/positions.h"

namespace pgbaton::tools::migrate {
namespace {

Result<PgConn*> Open(std::optional<PgConn>& conn, const std::string& conninfo, const char* label) {
  if (!conn) {
    ConnectOptions co;
    co.label = label;
    co.application_name = "pgbaton migrate";
    PGB_ASSIGN_OR_RETURN(PgConn c, PgConn::Connect(conninfo, co));
    conn.emplace(std::move(c));
  }
  return &*conn;
}

}  // namespace

std::optional<double> CatchUpEtaSeconds(double backlog_before, double backlog_now,
                                        double elapsed_seconds) {
  if (backlog_now <= 0) return 0.0;
  const double shrunk = backlog_before - backlog_now;
  if (elapsed_seconds <= 0 || shrunk <= 0) return std::nullopt;
  return backlog_now * elapsed_seconds / shrunk;
}

Result<Lsn> CatchUpProbe::Mark() {
  PGB_ASSIGN_OR_RETURN(PgConn * src, Open(source_, o_.source, "source"));
  if (messages_allowed_) {
    // A transactional message: its commit comes right after the mark, so the decoder sees a
    // commit past it at once (pgoutput sends messages from 14 on; before, an empty transaction).
    auto v = src->QueryValue("select pg_logical_emit_message(true, 'pgbaton.probe', '')::text");
    if (v.ok()) return Lsn::Parse(*v);
    LogDebug("the source does not take a logical message: marking its WAL position instead",
             {{"error", v.status().message()}});
    messages_allowed_ = false;
    source_.reset();  // the failed statement may have left the session in an unknown state
    PGB_ASSIGN_OR_RETURN(src, Open(source_, o_.source, "source"));
  }
  PGB_ASSIGN_OR_RETURN(std::string v, src->QueryValue("select pg_current_wal_lsn()::text"));
  return Lsn::Parse(v);
}

Result<bool> CatchUpProbe::Applied(Lsn mark, Lag* lag) {
  PGB_ASSIGN_OR_RETURN(PgConn * src, Open(source_, o_.source, "source"));
  PGB_ASSIGN_OR_RETURN(std::string confirmed,
                       src->QueryValue("select coalesce(confirmed_flush_lsn, '0/0')::text from "
                                       "pg_catalog.pg_replication_slots where slot_name = $1",
                                       {o_.name}));
  PGB_ASSIGN_OR_RETURN(Lsn read, Lsn::Parse(confirmed));
  PGB_ASSIGN_OR_RETURN(PgConn * dst, Open(target_, o_.target, "target"));
  PGB_ASSIGN_OR_RETURN(Lsn applied, applier::ReadTargetPosition(*dst, o_.name, false));
  PGB_ASSIGN_OR_RETURN(std::optional<queue::CommitRecord> oldest,
                       OldestUnapplied(o_.queue, applied));
  lag->backlog_seconds = LagSeconds(oldest, PgTimestamp::Now());
  return read >= mark && (!oldest || oldest->commit_lsn > mark);
}

Result<std::optional<Lag>> CatchUpProbe::Measure(const std::atomic<bool>& stop) {
  Lag lag;
  auto failed = [this](Status s) {
    source_.reset();
    target_.reset();
    return s;
  };
  auto mark = Mark();
  if (!mark.ok()) return failed(mark.status());
  lag.mark = *mark;
  const auto start = std::chrono::steady_clock::now();
  while (!stop.load()) {
    auto done = Applied(lag.mark, &lag);
    if (!done.ok()) return failed(done.status());
    const auto elapsed = std::chrono::steady_clock::now() - start;
    lag.replay_seconds = std::chrono::duration<double>(elapsed).count();
    if (*done) {
      lag.reached = true;
      return std::optional<Lag>(lag);
    }
    if (elapsed >= o_.give_up) return std::optional<Lag>(lag);
    std::this_thread::sleep_for(o_.poll);
  }
  return std::optional<Lag>();
}

}  // namespace pgbaton::tools::migrate

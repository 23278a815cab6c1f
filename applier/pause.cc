#include "applier/pause.h"

#include <fmt/format.h>
#include <unistd.h>

#include <random>
#include <thread>

#include "common/log.h"

namespace pgbaton::applier {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::pair<PauseStage, const char*> kStageNames[] = {
    {PauseStage::kRequested, "requested"}, {PauseStage::kHolding, "holding"},
    {PauseStage::kPassed, "passed"},       {PauseStage::kPause, "pause"},
    {PauseStage::kPaused, "paused"},       {PauseStage::kExpired, "expired"},
};

const char* StageName(PauseStage s) {
  for (const auto& [stage, name] : kStageNames) {
    if (stage == s) return name;
  }
  return "none";
}

PauseStage StageOf(std::string_view text) {
  for (const auto& [stage, name] : kStageNames) {
    if (text == name) return stage;
  }
  return PauseStage::kNone;
}

// A request's id: random, so that a stale answer never matches a newer request.
int64_t NewRequestId() {
  std::random_device rd;
  const int64_t id = (static_cast<int64_t>(rd() & 0x7fffffff) << 31) | (rd() & 0x7fffffff);
  return id == 0 ? 1 : id;
}

Lsn LsnOr(const PgResult& r, int col) {
  if (r.IsNull(0, col)) return Lsn::Invalid();
  auto l = Lsn::Parse(r.Get(0, col));
  return l.ok() ? *l : Lsn::Invalid();
}

constexpr const char* kSelectRow =
    "SELECT request_id, stage, hold_from, before_lsn, applied_lsn FROM pgbaton.pause_request "
    "WHERE name = $1";

Result<PauseRequest> ParseRow(const PgResult& r) {
  PauseRequest p;
  if (r.rows() == 0) return p;
  p.id = r.GetInt(0, 0);
  p.stage = StageOf(r.Get(0, 1));
  p.hold_from = LsnOr(r, 2);
  p.before_lsn = LsnOr(r, 3);
  p.applied_lsn = LsnOr(r, 4);
  return p;
}

}  // namespace

// --- the applier's side ------------------------------------------------------------------------

PauseListener PauseListener::Open(PgConn* conn, std::string name) {
  PauseListener l(conn, std::move(name));
  Status s = conn->Run(fmt::format("LISTEN {}", kPauseChannel));
  l.listening_ = s.ok();
  if (!s.ok()) {
    LogDebug("cannot LISTEN for pause requests; polling once a second", {{"error", s.message()}});
  }
  return l;
}

Status PauseListener::Poll() {
  // Called between transactions: a read of the socket at most every 2 ms.
  const auto now = Clock::now();
  if (now - last_consume_ < std::chrono::milliseconds(2)) return Status::Ok();
  last_consume_ = now;
  bool notified = false;
  if (listening_ && PQconsumeInput(conn_->raw()) == 1) {
    while (PGnotify* n = PQnotifies(conn_->raw())) {
      notified = notified || name_ == n->extra;
      PQfreemem(n);
    }
  }
  if (!notified && now - last_read_ < std::chrono::seconds(1)) return Status::Ok();
  return ReadRow();
}

Status PauseListener::ReadRow() {
  last_read_ = Clock::now();
  if (!table_known_) {
    PGB_ASSIGN_OR_RETURN(PgResult t,
                         conn_->Exec("SELECT to_regclass('pgbaton.pause_request') IS NOT NULL"));
    table_known_ = t.rows() == 1 && t.GetBool(0, 0);
    if (!table_known_) {
      request_ = PauseRequest{};
      return Status::Ok();
    }
  }
  auto r = conn_->ExecParams(kSelectRow, {name_});
  if (!r.ok()) {
    if (r.status().retryable()) return r.status();
    table_known_ = false;  // dropped (cleanup): look for it again next time
    request_ = PauseRequest{};
    return Status::Ok();
  }
  PGB_ASSIGN_OR_RETURN(request_, ParseRow(*r));
  return Status::Ok();
}

Status PauseListener::Answer(PauseStage stage, Lsn applied) {
  auto r = conn_->ExecParams(
      "UPDATE pgbaton.pause_request SET stage = $3, applied_lsn = $4::pg_lsn, updated_at = now() "
      "WHERE name = $1 AND request_id = $2",
      {name_, std::to_string(request_.id), StageName(stage),
       applied.IsValid() ? std::optional<std::string>(applied.ToString()) : std::nullopt});
  PGB_RETURN_IF_ERROR(r.status());
  request_.stage = stage;
  request_.applied_lsn = applied;
  LogInfo("answered a pause request", {{"stage", StageName(stage)},
                                       {"hold_from", request_.hold_from.ToString()},
                                       {"before_lsn", request_.before_lsn.ToString()},
                                       {"applied_lsn", applied.ToString()}});
  return Status::Ok();
}

// --- the requester's side ----------------------------------------------------------------------

Result<PauseRequester> PauseRequester::Open(const std::string& target_conninfo, std::string name,
                                            std::chrono::milliseconds pause_max) {
  PauseRequester p;
  p.name_ = std::move(name);
  ConnectOptions co;
  co.label = "target";
  co.application_name = "pgbaton verify";
  PGB_ASSIGN_OR_RETURN(PgConn conn, PgConn::Connect(target_conninfo, co));
  PGB_RETURN_IF_ERROR(
      conn.Run("create schema if not exists pgbaton; "
               "create table if not exists pgbaton.pause_request ("
               "name text primary key, request_id bigint not null, stage text not null, "
               "hold_from pg_lsn not null, before_lsn pg_lsn, applied_lsn pg_lsn, "
               "requested_by text, updated_at timestamptz not null default now())")
          .WithContext("creating pgbaton.pause_request on the target"));
  // A request older than the applier's longest hold is dead (its requester is gone): replaced.
  PGB_ASSIGN_OR_RETURN(
      PgResult busy,
      conn.ExecParams("SELECT requested_by, updated_at::text FROM pgbaton.pause_request "
                      "WHERE name = $1 AND stage NOT IN ('expired', 'passed') "
                      "AND updated_at > now() - make_interval(secs => $2::float8)",
                      {p.name_, std::to_string(pause_max.count() / 1000.0)}));
  if (busy.rows() > 0) {
    return Status::Error(
        ErrorCode::kSlotInUse,
        fmt::format("another pause request for migration \"{}\" is in progress ({}, last "
                    "changed {})",
                    p.name_, busy.GetString(0, 0), busy.GetString(0, 1)),
        "wait for that verify to end; if none is running, delete its row: DELETE FROM "
        "pgbaton.pause_request WHERE name = '" +
            p.name_ + "'");
  }
  p.conn_.emplace(std::move(conn));
  return p;
}

PauseRequester::~PauseRequester() {
  if (conn_ && id_ != 0) (void)Release();
}

Status PauseRequester::Notify() {
  return conn_->ExecParams("SELECT pg_notify($1, $2)", {kPauseChannel, name_}).status();
}

Result<PauseRequest> PauseRequester::Read() {
  PGB_ASSIGN_OR_RETURN(PgResult r, conn_->ExecParams(kSelectRow, {name_}));
  PGB_ASSIGN_OR_RETURN(PauseRequest p, ParseRow(r));
  if (p.id != id_) p.stage = PauseStage::kNone;  // gone or replaced
  return p;
}

Result<bool> PauseRequester::Hold(Lsn hold_from, std::chrono::milliseconds timeout) {
  id_ = NewRequestId();
  PGB_RETURN_IF_ERROR(
      conn_
          ->ExecParams(
              "INSERT INTO pgbaton.pause_request AS p (name, request_id, stage, hold_from, "
              "requested_by) VALUES ($1, $2, 'requested', $3::pg_lsn, $4) "
              "ON CONFLICT (name) DO UPDATE SET request_id = excluded.request_id, stage = "
              "excluded.stage, hold_from = excluded.hold_from, before_lsn = NULL, applied_lsn "
              "= NULL, requested_by = excluded.requested_by, updated_at = now()",
              {name_, std::to_string(id_), hold_from.ToString(),
               fmt::format("pgbaton verify, pid {}", static_cast<long>(getpid()))})
          .status());
  PGB_RETURN_IF_ERROR(Notify());
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    PGB_ASSIGN_OR_RETURN(PauseRequest p, Read());
    if (p.stage == PauseStage::kHolding) return true;
    if (p.stage == PauseStage::kPassed) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Status::Error(
      ErrorCode::kApplierNotRunning,
      fmt::format("no applier of migration \"{}\" answered the pause request within {} s", name_,
                  timeout.count() / 1000),
      "verify --at-lsn pauses a running applier for a moment: start `pgbaton run` (or "
      "`pgbaton migrate`) for this migration first; with writers stopped and the queue "
      "applied, plain `pgbaton verify` is enough");
}

Result<Lsn> PauseRequester::PauseBefore(Lsn before, std::chrono::milliseconds timeout) {
  PGB_ASSIGN_OR_RETURN(
      PgResult r, conn_->ExecParams("UPDATE pgbaton.pause_request SET stage = 'pause', "
                                    "before_lsn = $3::pg_lsn, updated_at = now() "
                                    "WHERE name = $1 AND request_id = $2 AND stage = 'holding'",
                                    {name_, std::to_string(id_), before.ToString()}));
  if (r.AffectedRows() != 1) {
    return Status::Error(
        ErrorCode::kApplierNotRunning,
        fmt::format("the applier of migration \"{}\" gave up holding at the pause request "
                    "before {} was asked",
                    name_, before.ToString()),
        "the source snapshot took longer than the applier's longest hold: run verify again");
  }
  PGB_RETURN_IF_ERROR(Notify());
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    PGB_ASSIGN_OR_RETURN(PauseRequest p, Read());
    if (p.stage == PauseStage::kPaused) return p.applied_lsn;
    if (p.stage != PauseStage::kPause && p.stage != PauseStage::kHolding) {
      return Status::Error(
          ErrorCode::kApplierNotRunning,
          fmt::format("the applier of migration \"{}\" did not pause before {} (the request "
                      "is now \"{}\")",
                      name_, before.ToString(), StageName(p.stage)),
          "it may have stopped or let the request expire: check `pgbaton status`, then run "
          "verify again");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Status::Error(ErrorCode::kTimeout,
                       fmt::format("the applier of migration \"{}\" did not reach {} within {} s",
                                   name_, before.ToString(), timeout.count() / 1000),
                       "the target trails the source by more than that: wait until it is caught "
                       "up (`pgbaton status`), or raise --pause-timeout");
}

Status PauseRequester::Release() {
  if (!conn_ || id_ == 0) return Status::Ok();
  auto r =
      conn_->ExecParams("DELETE FROM pgbaton.pause_request WHERE name = $1 AND request_id = $2",
                        {name_, std::to_string(id_)});
  id_ = 0;
  PGB_RETURN_IF_ERROR(r.status());
  return Notify();
}

}  // namespace pgbaton::applier

#include "tools/verification/at_lsn.h"

#include <fmt/format.h>
#include <unistd.h>

#include "applier/pause.h"
#include "common/log.h"
#include "tools/initial_copy/snapshot.h"
#include "tools/verification/verify.h"

namespace pgbaton::tools::verify {

namespace {

using Clock = std::chrono::steady_clock;

// Step 1 answers 'passed' when the applier had already handed out a transaction at or past the
// position asked for (it trails the source by less than its poll): ask again at a newer one.
constexpr int kHoldAttempts = 20;

Result<PgConn> Connect(const std::string& conninfo, const char* label) {
  ConnectOptions co;
  co.label = label;
  co.application_name = "pgbaton verify";
  PGB_ASSIGN_OR_RETURN(PgConn c, PgConn::Connect(conninfo, co));
  PGB_RETURN_IF_ERROR(PrepareSession(&c));
  return c;
}

}  // namespace

Result<SnapshotsAtLsn> OpenSnapshotsAtLsn(const AtLsnOptions& options) {
  PGB_ASSIGN_OR_RETURN(PgConn source, Connect(options.source, "source"));
  PGB_ASSIGN_OR_RETURN(PgConn target, Connect(options.target, "target"));
  PGB_ASSIGN_OR_RETURN(
      applier::PauseRequester pause,
      applier::PauseRequester::Open(options.target, options.name, options.pause_max));

  // Step 1: the applier holds at the source's current position, before the snapshot exists.
  bool holding = false;
  for (int attempt = 0; attempt < kHoldAttempts && !holding; ++attempt) {
    PGB_ASSIGN_OR_RETURN(std::string now, source.QueryValue("SELECT pg_current_wal_lsn()"));
    PGB_ASSIGN_OR_RETURN(Lsn hold_from, Lsn::Parse(now));
    PGB_ASSIGN_OR_RETURN(holding, pause.Hold(hold_from, options.answer_timeout));
  }
  const auto held = Clock::now();  // from here the applier may hold (an upper bound)
  if (!holding) {
    return Status::Error(ErrorCode::kTimeout,
                         fmt::format("the applier of migration \"{}\" ran past the position "
                                     "asked for {} times in a row",
                                     options.name, kHoldAttempts),
                         "run verify again");
  }

  // Step 2: a snapshot at S (after the hold position), then the applier applies up to S.
  PGB_ASSIGN_OR_RETURN(
      std::unique_ptr<copy::SlotSnapshot> slot,
      copy::SlotSnapshot::Create(options.source, fmt::format("pgbaton_verify_{}", getpid()),
                                 /*temporary=*/true));
  const copy::SnapshotRef snap = slot->snapshot();
  PGB_RETURN_IF_ERROR(source.Run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  PGB_RETURN_IF_ERROR(
      source.Run(fmt::format("SET TRANSACTION SNAPSHOT {}", source.QuoteLiteral(snap.name)))
          .WithContext("importing the source snapshot"));
  slot.reset();  // the imported snapshot lives in `source`'s transaction; the slot can go
  PGB_ASSIGN_OR_RETURN(Lsn applied, pause.PauseBefore(snap.lsn, options.pause_timeout));

  // Step 3: the target's snapshot while the applier holds, then release it.
  PGB_RETURN_IF_ERROR(target.Run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  PGB_RETURN_IF_ERROR(target.Run("SELECT 1").WithContext("opening the target snapshot"));
  Status released = pause.Release();
  const double paused_ms = std::chrono::duration<double, std::milli>(Clock::now() - held).count();
  if (!released.ok()) {
    LogWarning("could not release the applier; it resumes by itself after its longest hold",
               {{"error", released.message()}});
  }
  LogInfo("snapshots open at one source LSN", {{"source_lsn", snap.lsn.ToString()},
                                               {"target_applied_lsn", applied.ToString()},
                                               {"applier_paused_ms", paused_ms}});
  return SnapshotsAtLsn{std::move(source), std::move(target), snap.lsn, applied, paused_ms};
}

Result<VerifyReport> VerifyAtLsn(const AtLsnOptions& options, VerifyOptions verify) {
  PGB_ASSIGN_OR_RETURN(SnapshotsAtLsn at, OpenSnapshotsAtLsn(options));
  verify.snapshots_open = true;
  PGB_ASSIGN_OR_RETURN(VerifyReport report, VerifyTables(&at.source, &at.target, verify));
  report.source_lsn = at.source_lsn;
  report.target_applied_lsn = at.target_applied;
  report.applier_paused_ms = at.paused_ms;
  report.at = fmt::format(
      "source LSN {}: every transaction committed before it, on both sides (target applied "
      "through {}; the applier held for at most {:.0f} ms)",
      at.source_lsn.ToString(), at.target_applied.ToString(), at.paused_ms);
  return report;
}

}  // namespace pgbaton::tools::verify

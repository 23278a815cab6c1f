// `verify --at-lsn`: both sides read at one source LSN while writers go on. The source is read
// in a snapshot exported by a temporary logical slot (its consistent point S is known exactly);
// the running applier is asked to hold just before S (applier/pause.h), the target's snapshot is
// opened while it holds, and it is released at once: the applier pauses for as long as opening
// a snapshot takes, the comparison itself runs while it applies again.
#pragma once

#include <chrono>
#include <string>

#include "common/pg.h"
#include "common/status.h"
#include "common/types.h"
#include "tools/verification/verify.h"

namespace pgbaton::tools::verify {

struct AtLsnOptions {
  std::string name;    // the migration (whose applier holds)
  std::string source;  // conninfo
  std::string target;
  // How long the applier may take to answer, and to apply up to the source's LSN.
  std::chrono::milliseconds answer_timeout{std::chrono::seconds(30)};
  std::chrono::milliseconds pause_timeout{std::chrono::seconds(300)};
  // Requests older than this are dead (the applier's own pause_max).
  std::chrono::milliseconds pause_max{std::chrono::minutes(5)};
};

struct SnapshotsAtLsn {
  PgConn source;       // in a REPEATABLE READ snapshot at `source_lsn`
  PgConn target;       // in a REPEATABLE READ snapshot with every commit before it applied
  Lsn source_lsn;      // every transaction committing before it is in both, none after
  Lsn target_applied;  // the last commit LSN applied on the target then
  // How long the applier may have held: from its first answer to the release (it holds only
  // once the source passes the first position asked for, so it is an upper bound).
  double paused_ms = 0;
};

// Opens the two snapshots. Errors: kApplierNotRunning (no applier of `name` answered), kTimeout
// (the applier did not reach the LSN in time), kSlotInUse (another verify --at-lsn holds the
// applier), and the slot's and connections' errors (kServerConfig without a free slot).
Result<SnapshotsAtLsn> OpenSnapshotsAtLsn(const AtLsnOptions& options);

// OpenSnapshotsAtLsn, then VerifyTables on those snapshots (`verify.snapshots_open` is set
// here); the report says where both sides were read (source_lsn, target_applied_lsn,
// applier_paused_ms, at). Errors: OpenSnapshotsAtLsn's and VerifyTables'.
Result<VerifyReport> VerifyAtLsn(const AtLsnOptions& options, VerifyOptions verify);

}  // namespace pgbaton::tools::verify

// Where the applier keeps its position on the target, inside the transactions that apply the
// changes: a replication origin per apply connection (pg_replication_origin_xact_setup, which
// also tags the changes with the origin), or the table pgbaton.progress where the role may not
// use origins. Connection k uses the origin "<name>" (k = 0) or "<name>-<k>"; the position of the
// migration is the highest of them (see applier.h for why that is exact).
#pragma once

#include <string>

#include "common/pg.h"
#include "common/status.h"
#include "common/types.h"

namespace pgbaton::applier {

enum class ProgressMode { kAuto, kOrigin, kTable };

class ProgressStore {
 public:
  // Chooses origins when `requested` is kOrigin, or kAuto and the role may create and use them
  // (else the table, created if missing). Errors: kPermission when kOrigin is requested but not
  // allowed, and the connection's errors. Uses `conn` only during the call.
  static Result<ProgressStore> Open(PgConn& conn, const std::string& name, ProgressMode requested,
                                    int jobs);

  // A store for reading positions only (no catalog changes): for status and cutover.
  static Result<ProgressStore> ForReading(const std::string& name, ProgressMode mode) {
    ProgressStore s;
    s.name_ = name;
    s.mode_ = mode == ProgressMode::kTable ? ProgressMode::kTable : ProgressMode::kOrigin;
    return s;
  }

  ProgressMode mode() const { return mode_; }
  // The origin (or progress row) name of apply connection `worker`.
  std::string NameOf(int worker) const;

  // Session setup for apply connection `worker`: binds its origin to the session (retrying for a
  // few seconds while a previous, dying session still holds it). Origin mode only; no-op else.
  Status SetupSession(PgConn& conn, int worker) const;
  // The SQL (one statement, parameters $1 = commit LSN, $2 = commit time) to run inside an apply
  // transaction before COMMIT, and the parameter values.
  std::string RecordSql() const;
  std::string RecordName(int worker) const { return NameOf(worker); }

  // The position the target holds: the highest commit LSN recorded by any apply connection of
  // this migration (Invalid when none). With `flushed`, only what is flushed to the target's WAL
  // (origins only; the table is written with synchronous_commit on, so it is always flushed).
  Result<Lsn> ReadPosition(PgConn& conn, bool flushed) const;

  // Whether apply sessions may use synchronous_commit = off.
  bool AsyncCommitSafe() const { return mode_ == ProgressMode::kOrigin; }

 private:
  std::string name_;
  ProgressMode mode_ = ProgressMode::kOrigin;
};

// Whether `candidate` names an origin or progress row of migration `name`: "<name>" or
// "<name>-<digits>" (ProgressStore::NameOf), so that migration "app" never counts "app-old"'s.
// For the readers here, status and cleanup. Pure; thread-safe.
bool IsProgressName(const std::string& name, const std::string& candidate);

// Reads the target's position for migration `name` (the highest origin / progress row, the
// higher of both where both exist; Invalid when nothing was applied yet), for status, the
// metrics sampler and cutover. With `flushed`, origins count only what is flushed to the
// target's WAL. A role that may not read origins is read from pgbaton.progress alone.
// Errors: the connection's.
Result<Lsn> ReadTargetPosition(PgConn& conn, const std::string& name, bool flushed);

}  // namespace pgbaton::applier

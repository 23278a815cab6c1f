// The unit of work the applier's coordinator hands to an apply session: (a piece of) one source
// transaction whose changes are already filtered (per-table sync LSN) and matched to target
// relations. Built by the coordinator; once handed over, the session alone uses it (and may move
// changes out of it: see ApplySession::Apply).
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "applier/target_relation.h"
#include "common/types.h"
#include "queue/record.h"

namespace pgbaton::applier {

struct ResolvedChange {
  queue::Change change;
  // INSERT / UPDATE / DELETE: one relation; TRUNCATE: every truncated relation.
  std::vector<TargetRelationPtr> rels;
  // A mergeable update whose row an earlier group on another connection also writes: it is sent
  // only after that group committed (0: no wait). See Assignment::deferred.
  uint64_t after_group = 0;
};

struct TxnWork {
  Lsn commit_lsn;
  PgTimestamp commit_time;
  std::vector<ResolvedChange> changes;
  size_t bytes = 0;  // approximate memory held, for the coordinator's bounds
};

// Approximate bytes a change holds in memory (for TxnWork::bytes and the session's insert runs).
size_t ApproxBytes(const queue::Change& change);

}  // namespace pgbaton::applier

// The ways `pgbaton cutover` fences writers on the old cluster and flips them to the new one.
// Fences: PgBouncer PAUSE (clients wait, none sees an error), roles (ALTER ROLE ... NOLOGIN and
// terminate their sessions), read-only (database default plus terminating client sessions).
// Flips: PgBouncer (each member of the fleet pointed at the new cluster, then RESUME; fleet.h),
// roles (ALTER ROLE ... LOGIN on the new cluster), command (the operator's hook). Each fence can be
// undone, which the cutover does on any failure before the flip has finished.
// Not thread-safe: one cutover drives them from one thread.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/pg.h"
#include "common/status.h"
#include "tools/cutover/cutover.h"

namespace pgbaton::tools::cutover {

// What the strategies need to know about the migration.
struct StrategyContext {
  std::string source_conninfo;
  std::string target_conninfo;
  std::string cutover_id;
  std::chrono::milliseconds timeout{60000};  // bound of each wait (PAUSE, sessions, hook)
  // How long the flip of a fleet retries members that fail before flipping every member back.
  std::chrono::milliseconds flip_timeout{10000};
};

class Fence {
 public:
  virtual ~Fence() = default;
  // One line for the plan and the timeline, e.g. "pause pgbouncer database \"app\"".
  virtual std::string Describe() const = 0;
  virtual std::string Kind() const = 0;  // "pgbouncer", "roles", "readonly"
  // Checks without changing anything (dry run, and before fencing). Errors name what is wrong.
  virtual Status Check(PgConn& source) = 0;
  // Fences writers. When it returns OK, no session of the old cluster can commit a write through
  // the fenced path any more. On error it has undone what it did; the error is kFenceFailed (or
  // kTimeout) naming the cause.
  virtual Status Apply(PgConn& source) = 0;
  // Undoes Apply (writers may write to the old cluster again). Safe to call after a failed or
  // partial Apply, and after a failed Flip.
  virtual Status Undo(PgConn& source) = 0;
  // After a failed Apply: whether it undid everything it did (a PgBouncer that could not be told
  // to RESUME leaves it false).
  virtual bool Undone() const { return true; }
  // Each pooler the fence covers with its state, for the report (empty for fences without).
  virtual std::vector<PoolerMember> Members() const { return {}; }
};

class Flip {
 public:
  virtual ~Flip() = default;
  virtual std::string Describe() const = 0;
  virtual std::string Kind() const = 0;  // "pgbouncer", "roles", "command"
  virtual Status Check(PgConn& source, PgConn& target) = 0;
  // Sends writers to the new cluster. Errors: kFlipFailed; on error the flip has put back what
  // it changed (the caller then undoes the fence).
  virtual Status Run(PgConn& target) = 0;
};

// Parses one --fence that is not a PgBouncer's: "roles:r1,r2" or "readonly" (PgBouncer fences,
// one or a fleet, come from MakeFleet in tools/cutover/fleet.h). Errors: kUsage.
Result<std::unique_ptr<Fence>> MakeFence(const std::string& spec, const StrategyContext& ctx);

// Parses --flip: "pgbouncer" (needs a PgBouncer fleet whose every member has an ini or a flip
// command), "roles" (the roles of a roles fence, or `roles` when given), "command:CMD".
// Errors: kUsage.
Result<std::unique_ptr<Flip>> MakeFlip(const std::string& spec, const StrategyContext& ctx,
                                       Fence* fence, const std::vector<std::string>& roles);

// Host, port and dbname of a conninfo (what a PgBouncer entry needs); unset keys are omitted.
Result<std::map<std::string, std::string>> ConninfoParts(const std::string& conninfo);

}  // namespace pgbaton::tools::cutover

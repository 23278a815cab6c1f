// When is the target caught up? Measured, not guessed: the probe marks the source's position
// (a transactional logical message where the source allows it, so that a commit follows the mark
// at once even when the source is idle), then times how long it takes until everything committed
// before the mark is on the target: the slot confirmed past the mark (the queue holds it) and no
// transaction at or before the mark is left unapplied in the queue. That time is the replay lag
// a writer on the source would see at that moment; `migrate --until caught-up` ends when it first
// drops below the threshold.
#pragma once

#include <atomic>
#include <chrono>
#include <optional>
#include <string>

#include "common/pg.h"
#include "common/status.h"
#include "common/types.h"
#include "queue/work_queue.h"

namespace pgbaton::tools::migrate {

struct CatchUpOptions {
  std::string source;                  // conninfo of the source (the slot and the mark)
  std::string target;                  // conninfo of the target (the applied position)
  std::string name = "pgbaton";        // the migration: slot and origin
  queue::WorkQueue* queue = nullptr;   // the migration's queue; must outlive the probe
  std::chrono::milliseconds poll{50};  // how often positions are read while a mark is waited for
  std::chrono::milliseconds give_up{10000};  // a mark not applied after this is measured as this
};

// One measurement.
struct Lag {
  double replay_seconds = 0;   // mark to applied; at least give_up when it was not reached
  bool reached = false;        // the mark was applied (replay_seconds is exact)
  double backlog_seconds = 0;  // age of the oldest queued transaction not applied yet (0: none)
  Lsn mark;                    // the source position that was marked
};

// How long until caught up, from two measurements `elapsed_seconds` apart of the backlog (the
// age of the oldest unapplied transaction): in that time the applier worked through
// elapsed + (before - now) seconds of the source's history while the source made `elapsed` more,
// so the backlog shrinks by (before - now) per `elapsed` and is gone in now * elapsed /
// (before - now). nullopt when it does not shrink (no estimate: the applier is not gaining).
std::optional<double> CatchUpEtaSeconds(double backlog_before, double backlog_now,
                                        double elapsed_seconds);

class CatchUpProbe {
 public:
  explicit CatchUpProbe(CatchUpOptions options) : o_(std::move(options)) {}

  // Marks the source and waits until the mark is applied, `give_up` passes or `stop` turns true
  // (then nullopt). Errors: the servers' and the queue's (connections are opened again on the
  // next call).
  Result<std::optional<Lag>> Measure(const std::atomic<bool>& stop);

 private:
  Result<Lsn> Mark();
  // Whether everything committed at or before `mark` is on the target; fills backlog_seconds.
  Result<bool> Applied(Lsn mark, Lag* lag);

  CatchUpOptions o_;
  std::optional<PgConn> source_;
  std::optional<PgConn> target_;
  bool messages_allowed_ = true;  // false once the source refused pg_logical_emit_message
};

}  // namespace pgbaton::tools::migrate

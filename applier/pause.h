// Pausing a running applier exactly before a source LSN, from another process: how `verify
// --at-lsn` reads the target at the very point of a source snapshot while writers go on.
//
// The two sides talk through one row of pgbaton.pause_request on the target (keyed by the
// migration's name), with NOTIFY pgbaton_pause as a wake-up and a poll every second as the
// fallback (a pooler in transaction mode drops LISTEN):
//
//   requester (verify)                           applier (run, migrate)
//   1. stage 'requested', hold_from = L0 (the
//      source's current WAL position)       -->  nothing at or after L0 applied yet? 'holding'
//                                                (and holds there), else 'passed' (ask again)
//   2. creates its source snapshot at S >= L0;
//      stage 'pause', before_lsn = S         -->  applies every transaction that commits before
//                                                S, none at or after; 'paused' (applied_lsn =
//                                                the last commit applied)
//   3. opens its target snapshot; deletes the
//      row                                   -->  resumes
//
// Step 1 closes the race step 2 alone would leave: the source snapshot's LSN is known only once
// it exists, and by then the applier could have applied a transaction past it. The applier never
// holds longer than its pause_max (then answers 'expired' and goes on), so a requester that died
// cannot stall a migration; a requester that outlives that sees 'expired' and fails.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "common/pg.h"
#include "common/status.h"
#include "common/types.h"

namespace pgbaton::applier {

enum class PauseStage { kNone, kRequested, kHolding, kPassed, kPause, kPaused, kExpired };

// One request as the row holds it.
struct PauseRequest {
  int64_t id = 0;  // a new one per request: answers name the request they answer
  PauseStage stage = PauseStage::kNone;
  Lsn hold_from;   // step 1: hold every transaction that commits at or after this
  Lsn before_lsn;  // step 2: apply every transaction that commits before this, none after
  Lsn applied_lsn;
};

// The applier's side. Uses the applier's control connection from the coordinator thread only.
class PauseListener {
 public:
  // LISTENs on `conn` (a failure only leaves polling). `conn` must outlive the listener.
  static PauseListener Open(PgConn* conn, std::string name);

  // Reads the request row when notified, or once a second. Cheap when nothing is pending (no
  // round trip). Errors: the connection's (retryable when it broke).
  Status Poll();
  const PauseRequest& request() const { return request_; }
  // Writes `stage` (and the applied LSN) as the answer to the current request, unless the row
  // now holds another request.
  Status Answer(PauseStage stage, Lsn applied);

 private:
  PauseListener(PgConn* conn, std::string name) : conn_(conn), name_(std::move(name)) {}
  Status ReadRow();

  PgConn* conn_;
  std::string name_;
  bool listening_ = false;
  bool table_known_ = false;
  std::chrono::steady_clock::time_point last_read_{};
  std::chrono::steady_clock::time_point last_consume_{};
  PauseRequest request_;
};

// The requester's side (`verify --at-lsn`). Only one request per migration at a time: Open
// refuses while another live one holds the row.
class PauseRequester {
 public:
  // Connects to the target and creates pgbaton.pause_request if missing. Errors: kSlotInUse
  // when another request is in progress (naming when it was made), and the connection's.
  static Result<PauseRequester> Open(const std::string& target_conninfo, std::string name,
                                     std::chrono::milliseconds pause_max);
  PauseRequester(PauseRequester&& o) noexcept
      : conn_(std::exchange(o.conn_, std::nullopt)),
        name_(std::move(o.name_)),
        id_(std::exchange(o.id_, 0)) {}
  PauseRequester& operator=(PauseRequester&&) = delete;
  ~PauseRequester();  // releases a pending request

  // Step 1: asks the applier to hold at `hold_from`. true: it holds; false: it had already
  // applied past it (ask again with a newer position). Errors: kApplierNotRunning when nothing
  // answered within `timeout`.
  Result<bool> Hold(Lsn hold_from, std::chrono::milliseconds timeout);
  // Step 2: waits until the applier has applied every transaction that commits before `before`
  // and holds there; returns the last commit LSN it applied. Errors: kTimeout, kApplierNotRunning
  // (it stopped answering, or let the request expire).
  Result<Lsn> PauseBefore(Lsn before, std::chrono::milliseconds timeout);
  // Step 3: deletes the request; the applier resumes.
  Status Release();

 private:
  PauseRequester() = default;
  Status Notify();
  Result<PauseRequest> Read();

  std::optional<PgConn> conn_;
  std::string name_;
  int64_t id_ = 0;
};

// The table's name and the NOTIFY channel, for cleanup and docs.
inline constexpr const char* kPauseTable = "pgbaton.pause_request";
inline constexpr const char* kPauseChannel = "pgbaton_pause";

}  // namespace pgbaton::applier

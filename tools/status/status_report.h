// `pgbaton status`'s snapshot of a migration: each stage's position (source WAL -> decoder ->
// queue -> applier -> target), the lag in bytes and seconds, rates, the ETA, the WAL the slot
// holds, the queue's size and the last error a pgbaton process recorded. Collected from the
// databases and the queue (read-only); rendered as text for people or as JSON (schema documented
// in docs/reference/commands.md, `## pgbaton status`).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/pg.h"
#include "common/status.h"
#include "common/types.h"
#include "queue/work_queue.h"
#include "tools/common/last_error.h"
#include "tools/common/positions.h"

namespace pgbaton::tools::status {

struct StatusInputs {
  std::string name;            // the migration (slot and origin names)
  std::string queue_location;  // shown as is (a directory or "kafka:topic")
  std::string source_label;    // DescribeConninfo of --source ("" when not given)
  std::string target_label;    // DescribeConninfo of --target
  PgConn* source = nullptr;    // null: not given or not reachable (see source_error)
  PgConn* target = nullptr;
  std::string source_error;  // why `source` is null although --source was given (scrubbed)
  std::string target_error;
  int rate_window_seconds = 60;
  size_t max_scan = 1000000;  // queue transactions scanned at most for rates and counts
  // Time the scan may take at most: a queue followed read-only while a writer appends costs a
  // catch-up per transaction read, so a full scan of a busy queue could take seconds.
  int scan_budget_ms = 250;
};

struct StatusReport {
  std::string name;
  PgTimestamp time;
  std::string queue_location;
  // Queue.
  uint64_t queue_size_bytes = 0;
  Lsn queue_first_commit_lsn, queue_last_commit_lsn, queue_last_end_lsn;
  // The highest queue_last_end_lsn seen by this refresh and the ones before it (--watch): the
  // queue's end goes back to Invalid when the applier trimmed everything.
  Lsn queue_end_seen;
  // Transactions in the queue; only counted (whole_scan) when no fresh samples give the rates:
  // otherwise only the unapplied ones are read.
  uint64_t queue_transactions = 0;
  bool whole_scan = false;
  uint64_t unapplied_transactions = 0;
  bool scan_truncated = false;
  // Source.
  std::string source_label, source_error;
  std::optional<SourcePositions> source;
  // Target.
  std::string target_label, target_error;
  bool target_known = false;
  Lsn applied_lsn;          // what the target committed (from origins or pgbaton.progress)
  Lsn applied_flushed_lsn;  // of that, what is flushed to the target's WAL
  // Lag.
  uint64_t decoder_lag_bytes = 0;  // WAL the decoder has not read yet
  uint64_t apply_lag_bytes = 0;    // queued transactions not applied yet
  uint64_t lag_bytes = 0;
  double lag_seconds = 0;
  bool lag_known = false;  // false without --target and without the queue's own applied hint
  std::optional<queue::CommitRecord> oldest_unapplied;
  // Rates over about the last rate_window_seconds: from the samples a running pgbaton process
  // records in the queue (rates_from = "samples", window = their actual span), else from the
  // commit times of the transactions still in the queue (rates_from = "queue").
  int rate_window_seconds = 60;
  double rate_span_seconds = 0;
  std::string rates_from = "queue";
  // queued: transactions the running process appended to the queue, and the source WAL their
  // end LSNs advanced over (the queue's durable end). applied: transactions the target committed,
  // and how far its applied position advanced. source (samples only): how fast the source wrote
  // WAL (pg_current_wal_lsn). A position that was not known at the window's start (an empty
  // queue, nothing applied yet) shortens the window; it never counts from LSN 0.
  double queued_tps = 0, queued_bytes_per_second = 0;
  double applied_tps = 0, applied_bytes_per_second = 0;
  std::optional<double> source_bytes_per_second;
  // Rates since the previous refresh (--watch), from positions; nullopt when either end of the
  // interval did not know the position.
  std::optional<double> interval_seconds;
  std::optional<double> source_bytes_per_second_interval, queued_bytes_per_second_interval,
      applied_bytes_per_second_interval;
  // ETA.
  std::optional<double> eta_seconds;
  std::string eta_text;  // "caught up", "unknown" or "1h02m03s"
  // The last error a pgbaton process recorded in the queue (a JSON object), if any.
  std::optional<nlohmann::json> last_error;
};

// Collects a report. Only queue errors fail (the caller could not show anything useful); a
// source or target that fails is reported in source_error/target_error. `previous` (the last
// refresh in --watch) adds the rates between refreshes. Thread-compatible.
Result<StatusReport> CollectStatus(queue::WorkQueue* queue, const StatusInputs& in,
                                   const StatusReport* previous);

// The stable JSON form (schema_version 1).
nlohmann::json StatusToJson(const StatusReport& r);
// The human form: a table of stages, then lag, rates, ETA, slot, queue and last error.
std::string StatusToText(const StatusReport& r);
// "caught up", "unknown" or a duration like "1h02m03s".
std::string FormatEta(std::optional<double> seconds, uint64_t lag_bytes);
// "512 B", "1.5 MB".
std::string HumanBytes(uint64_t bytes);

// A cluster migration (--databases): each database's report, in the order given.
struct ClusterMemberReport {
  std::string database;
  StatusReport report;
};
// JSON: {"schema_version": 1, "cluster": true, "time", "databases": [{"database", ...each
// database's StatusToJson}], "total": {lag_bytes, lag_seconds (the largest), eta_seconds (the
// largest), lag_known, databases, databases_with_errors}}.
nlohmann::json ClusterStatusToJson(const std::vector<ClusterMemberReport>& reports);
// One line per database (applied position, lag, ETA, rates, its last error) and a total line.
std::string ClusterStatusToText(const std::vector<ClusterMemberReport>& reports);

}  // namespace pgbaton::tools::status

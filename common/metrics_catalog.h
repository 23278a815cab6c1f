// The metrics pgbaton exposes, defined in one place (docs/reference/metrics.md describes each).
// Every series carries a `database` label: a cluster migration (--databases) runs one pipeline
// per database in one process, each updating the catalogue of its database (CatalogFor); a
// single-database process uses CatalogMetrics(), whose database label is empty and so left out of
// the rendering. The endpoint started by `--metrics-addr` renders Registry::Default(). Label values
// are the stable words below, never free text (no conninfo, no SQL): a label must not leak a secret
// nor explode the series count.
#pragma once

#include "common/metrics.h"

namespace pgbaton::metrics {

// Label values, so that every part uses the same words.
inline constexpr const char* kStageDecoded = "decoded";  // read from the slot by the decoder
inline constexpr const char* kStageQueued = "queued";    // durable in the work queue
inline constexpr const char* kStageApplied = "applied";  // committed on the target
inline constexpr const char* kKindInsert = "insert";
inline constexpr const char* kKindUpdate = "update";
inline constexpr const char* kKindDelete = "delete";
inline constexpr const char* kKindTruncate = "truncate";
inline constexpr const char* kCopyPending = "pending";
inline constexpr const char* kCopyCopying = "copying";
inline constexpr const char* kCopyDone = "done";
inline constexpr const char* kCopyFailed = "failed";
// Why copy workers waited (pgbaton_copy_throttled_seconds_total) or are paused
// (pgbaton_copy_paused).
inline constexpr const char* kThrottleRate = "rate";               // --max-copy-rate
inline constexpr const char* kThrottleSourceLoad = "source_load";  // --source-load-limit
inline constexpr const char* kPausedActiveSessions = "active_sessions";
inline constexpr const char* kPausedStandbyLag = "standby_lag";

// A labelled metric seen from one database: WithLabels takes the metric's own labels (stage,
// kind...); the database label, which comes first, is the view's. Thread-safe.
template <typename T>
class DatabaseFamily {
 public:
  DatabaseFamily() = default;
  DatabaseFamily(Family<T>* family, std::string database)
      : family_(family), database_(std::move(database)) {}
  T* WithLabels(std::initializer_list<std::string_view> values) const {
    std::vector<std::string> all;
    all.reserve(values.size() + 1);
    all.push_back(database_);
    for (std::string_view v : values) all.emplace_back(v);
    return family_->WithLabels(all);
  }

 private:
  Family<T>* family_ = nullptr;
  std::string database_;
};

// One database's series. The pointers stay valid for the registry's life.
struct Catalog {
  // Positions, as the LSN's 64-bit value (exact up to 2^53 bytes of WAL, i.e. 8 PiB).
  Gauge* source_lsn;         // pgbaton_source_lsn: the source's current WAL insert/flush position
  Gauge* queue_durable_lsn;  // pgbaton_queue_durable_lsn: end LSN of the last durable queue record
  Gauge* applied_lsn;        // pgbaton_applied_lsn: end LSN of the last transaction applied
  Gauge* lag_bytes;          // pgbaton_lag_bytes: source_lsn - applied_lsn
  Gauge* lag_seconds;        // pgbaton_lag_seconds: now - commit time of the last applied txn
  DatabaseFamily<Counter> transactions_total;  // pgbaton_transactions_total{stage}
  DatabaseFamily<Counter> changes_total;       // pgbaton_changes_total{kind}
  DatabaseFamily<Counter> bytes_total;         // pgbaton_bytes_total{stage}
  DatabaseFamily<Counter> errors_total;  // pgbaton_errors_total{code}: code = ErrorCodeName(...)
  Gauge* queue_size_bytes;               // pgbaton_queue_size_bytes
  Counter* copy_bytes_total;             // pgbaton_copy_bytes_total
  DatabaseFamily<Gauge> copy_tables;     // pgbaton_copy_tables{state}
  DatabaseFamily<Gauge> copy_paused;     // pgbaton_copy_paused{reason}: 1 while paused for it
  DatabaseFamily<Counter>
      copy_throttled_seconds_total;  // pgbaton_copy_throttled_seconds_total{reason}
  Histogram* apply_batch_size;       // pgbaton_apply_batch_size (transactions per batch)
  Histogram* apply_batch_seconds;    // pgbaton_apply_batch_seconds
};

// The series of `database` in Registry::Default(), registered on first call. Thread-safe.
const Catalog& CatalogFor(const std::string& database);

// The series of a single-database process (no database label): CatalogFor("").
const Catalog& CatalogMetrics();

// Registers the catalogue in `registry` (tests use their own registry) and returns the series of
// `database`. Idempotent per registry and database.
Catalog RegisterCatalog(Registry* registry, const std::string& database = "");

}  // namespace pgbaton::metrics

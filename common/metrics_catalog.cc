#include "common/metrics_catalog.h"

#include <map>
#include <memory>
#include <mutex>

namespace pgbaton::metrics {

Catalog RegisterCatalog(Registry* r, const std::string& database) {
  const std::vector<std::string> db = {"database"};
  auto labels = [&](const char* own) { return std::vector<std::string>{"database", own}; };
  Catalog c{};
  c.source_lsn =
      r->AddGaugeFamily("pgbaton_source_lsn",
                        "Current WAL position of the source cluster, as a 64-bit LSN value.", db)
          ->WithLabels({database});
  c.queue_durable_lsn =
      r->AddGaugeFamily(
           "pgbaton_queue_durable_lsn",
           "End LSN of the last transaction durable in the work queue (what the slot may "
           "be confirmed up to).",
           db)
          ->WithLabels({database});
  c.applied_lsn =
      r->AddGaugeFamily("pgbaton_applied_lsn",
                        "End LSN of the last source transaction committed on the target.", db)
          ->WithLabels({database});
  c.lag_bytes = r->AddGaugeFamily("pgbaton_lag_bytes",
                                  "Bytes of source WAL not yet applied on the target "
                                  "(source_lsn - applied_lsn).",
                                  db)
                    ->WithLabels({database});
  c.lag_seconds =
      r->AddGaugeFamily(
           "pgbaton_lag_seconds",
           "Seconds between now and the source commit time of the last applied transaction "
           "(0 when nothing is waiting).",
           db)
          ->WithLabels({database});
  c.transactions_total = DatabaseFamily<Counter>(
      r->AddCounterFamily("pgbaton_transactions_total",
                          "Source transactions that passed a stage (decoded, queued, applied).",
                          labels("stage")),
      database);
  c.changes_total = DatabaseFamily<Counter>(
      r->AddCounterFamily("pgbaton_changes_total", "Row changes applied on the target, by kind.",
                          labels("kind")),
      database);
  c.bytes_total = DatabaseFamily<Counter>(
      r->AddCounterFamily(
          "pgbaton_bytes_total",
          "Bytes that passed a stage: decoded (pgoutput message bytes), queued (encoded record "
          "bytes), applied (record bytes applied).",
          labels("stage")),
      database);
  c.errors_total = DatabaseFamily<Counter>(
      r->AddCounterFamily("pgbaton_errors_total",
                          "Errors met, by error code name (retried or fatal).", labels("code")),
      database);
  c.queue_size_bytes = r->AddGaugeFamily("pgbaton_queue_size_bytes",
                                         "Bytes the work queue holds on disk or in Kafka.", db)
                           ->WithLabels({database});
  c.copy_bytes_total = r->AddCounterFamily("pgbaton_copy_bytes_total",
                                           "Bytes of table data copied by the initial copy.", db)
                           ->WithLabels({database});
  c.copy_tables = DatabaseFamily<Gauge>(
      r->AddGaugeFamily("pgbaton_copy_tables",
                        "Tables of the initial copy by state (pending, copying, done, failed).",
                        labels("state")),
      database);
  c.copy_paused = DatabaseFamily<Gauge>(
      r->AddGaugeFamily(
          "pgbaton_copy_paused",
          "1 while the initial copy's workers are paused by --source-load-limit because of this "
          "signal (active_sessions, standby_lag), else 0.",
          labels("reason")),
      database);
  c.copy_throttled_seconds_total = DatabaseFamily<Counter>(
      r->AddCounterFamily(
          "pgbaton_copy_throttled_seconds_total",
          "Seconds the initial copy's workers spent waiting, summed over workers, by reason: rate "
          "(--max-copy-rate) or source_load (--source-load-limit). Counted in whole seconds.",
          labels("reason")),
      database);
  c.apply_batch_size =
      r->AddHistogramFamily("pgbaton_apply_batch_size",
                            "Source transactions per batch committed on the target.", db,
                            {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000})
          ->WithLabels({database});
  c.apply_batch_seconds =
      r->AddHistogramFamily(
           "pgbaton_apply_batch_seconds", "Seconds to apply and commit one batch on the target.",
           db, {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10})
          ->WithLabels({database});
  return c;
}

const Catalog& CatalogFor(const std::string& database) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<Catalog>> catalogs;
  std::lock_guard<std::mutex> lock(mu);
  std::unique_ptr<Catalog>& c = catalogs[database];
  if (!c) c = std::make_unique<Catalog>(RegisterCatalog(&Registry::Default(), database));
  return *c;
}

const Catalog& CatalogMetrics() {
  static const Catalog& catalog = CatalogFor("");
  return catalog;
}

}  // namespace pgbaton::metrics

#include "common/metrics_catalog.h"

namespace pgbaton::metrics {

Catalog RegisterCatalog(Registry* r) {
  Catalog c{};
  c.source_lsn = r->AddGauge("pgbaton_source_lsn",
                             "Current WAL position of the source cluster, as a 64-bit LSN value.");
  c.queue_durable_lsn =
      r->AddGauge("pgbaton_queue_durable_lsn",
                  "End LSN of the last transaction durable in the work queue (what the slot may "
                  "be confirmed up to).");
  c.applied_lsn = r->AddGauge("pgbaton_applied_lsn",
                              "End LSN of the last source transaction committed on the target.");
  c.lag_bytes = r->AddGauge("pgbaton_lag_bytes",
                            "Bytes of source WAL not yet applied on the target "
                            "(source_lsn - applied_lsn).");
  c.lag_seconds =
      r->AddGauge("pgbaton_lag_seconds",
                  "Seconds between now and the source commit time of the last applied transaction "
                  "(0 when nothing is waiting).");
  c.transactions_total = r->AddCounterFamily(
      "pgbaton_transactions_total",
      "Source transactions that passed a stage (decoded, queued, applied).", {"stage"});
  c.changes_total = r->AddCounterFamily("pgbaton_changes_total",
                                        "Row changes applied on the target, by kind.", {"kind"});
  c.bytes_total = r->AddCounterFamily(
      "pgbaton_bytes_total",
      "Bytes that passed a stage: decoded (pgoutput message bytes), queued (encoded record "
      "bytes), applied (record bytes applied).",
      {"stage"});
  c.errors_total = r->AddCounterFamily(
      "pgbaton_errors_total", "Errors met, by error code name (retried or fatal).", {"code"});
  c.queue_size_bytes =
      r->AddGauge("pgbaton_queue_size_bytes", "Bytes the work queue holds on disk or in Kafka.");
  c.copy_bytes_total =
      r->AddCounter("pgbaton_copy_bytes_total", "Bytes of table data copied by the initial copy.");
  c.copy_tables = r->AddGaugeFamily(
      "pgbaton_copy_tables",
      "Tables of the initial copy by state (pending, copying, done, failed).", {"state"});
  c.copy_paused = r->AddGaugeFamily(
      "pgbaton_copy_paused",
      "1 while the initial copy's workers are paused by --source-load-limit because of this "
      "signal (active_sessions, standby_lag), else 0.",
      {"reason"});
  c.copy_throttled_seconds_total = r->AddCounterFamily(
      "pgbaton_copy_throttled_seconds_total",
      "Seconds the initial copy's workers spent waiting, summed over workers, by reason: rate "
      "(--max-copy-rate) or source_load (--source-load-limit). Counted in whole seconds.",
      {"reason"});
  c.apply_batch_size = r->AddHistogram("pgbaton_apply_batch_size",
                                       "Source transactions per batch committed on the target.",
                                       {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000});
  c.apply_batch_seconds = r->AddHistogram(
      "pgbaton_apply_batch_seconds", "Seconds to apply and commit one batch on the target.",
      {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
  return c;
}

const Catalog& CatalogMetrics() {
  static const Catalog catalog = RegisterCatalog(&Registry::Default());
  return catalog;
}

}  // namespace pgbaton::metrics

// The position and lag gauges of the metrics catalogue (source_lsn, queue_durable_lsn,
// applied_lsn, lag_bytes, lag_seconds, queue_size_bytes), kept current by a background thread
// that reads them where they live every period: the source's WAL position and slot, the work
// queue, and the target's replication origins. Long-running verbs (run, stream, apply, copy) start
// one next to the endpoint that --metrics-addr serves.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/metrics_catalog.h"
#include "queue/work_queue.h"
#include "tools/metrics/metrics_server.h"

namespace pgbaton::tools {

struct MetricsSamplerOptions {
  std::string name = "pgbaton";       // the migration: slot and origin names
  std::string database;               // cluster mode: the series' database label; "" otherwise
  std::string source_conninfo;        // empty: source_lsn is not sampled
  std::string target_conninfo;        // empty: applied_lsn and the lag gauges are not sampled
  queue::WorkQueue* queue = nullptr;  // null: no queue gauges; must outlive the sampler
  std::chrono::milliseconds period{1000};
  metrics::Registry* registry = nullptr;  // null: Registry::Default()
  // Keep a rolling minute of samples (time, positions, transaction counts) in the queue's meta
  // key kRateSamplesMetaKey, for `pgbaton status`'s rates (the applier trims what it applied, so
  // the queue alone cannot say what went through). Needs a writable RocksDB queue (the sampler
  // writes from its own thread, which the Kafka writer does not support next to Append).
  bool record_samples = false;
};

// Queue meta key of the rolling samples: a JSON array of {"t": unix seconds, "queued_txns",
// "queued_lsn", "applied_txns", "applied_lsn", "source_lsn"} (LSNs as numbers, 0 when not known
// at that time; queued_lsn the highest end LSN the queue held, which trimming does not move
// back; counts cumulative since the process started, "pid" identifying it), oldest first,
// covering about 70 s.
inline constexpr const char* kRateSamplesMetaKey = "status/rate_samples";

// Samples until stopped. Connections are opened lazily and opened again after a failure (logged
// at debug level: the verb itself reports its connection problems). A gauge whose source is not
// configured is left alone. Thread-safe; Stop() is idempotent and done by the destructor.
class MetricsSampler {
 public:
  explicit MetricsSampler(MetricsSamplerOptions options);
  ~MetricsSampler();
  MetricsSampler(const MetricsSampler&) = delete;
  MetricsSampler& operator=(const MetricsSampler&) = delete;

  // Takes one sample now, on the calling thread (tests; the thread calls it every period).
  void SampleOnce();
  void Stop();

 private:
  void Loop();
  void CountTransactions(Lsn applied, bool applied_known);
  void RecordSample(Lsn source_lsn, Lsn queue_end, Lsn applied);
  struct Connections;
  struct Counts;

  MetricsSamplerOptions options_;
  metrics::Catalog catalog_;
  std::unique_ptr<Connections> conns_;
  std::unique_ptr<Counts> counts_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// Starts a sampler when `enabled` (the verb serves --metrics-addr); null otherwise.
std::unique_ptr<MetricsSampler> StartMetricsSampler(bool enabled, MetricsSamplerOptions options);

// What a verb holds while it serves --metrics-addr: the endpoint and the sampler (both null when
// --metrics-addr is not given). Destroy it before the queue the sampler reads.
struct VerbMetrics {
  std::unique_ptr<MetricsServer> server;
  std::unique_ptr<MetricsSampler> sampler;
};

// Starts the endpoint from `flags`, and a sampler with `options` when the endpoint runs or
// options.record_samples is set. Errors: those of StartMetricsServer (kUsage, kIo).
Result<VerbMetrics> StartVerbMetrics(const MetricsOptions& flags, MetricsSamplerOptions options);

// Cluster mode: the process serves one endpoint (`endpoint`, null without --metrics-addr; it
// must outlive the databases' samplers), and each database samples its own series
// (options.database) when the endpoint runs or options.record_samples is set.
VerbMetrics StartDatabaseMetrics(const MetricsServer* endpoint, MetricsSamplerOptions options);

}  // namespace pgbaton::tools

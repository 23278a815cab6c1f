#include "tools/common/metrics_sampler.h"

#include <unistd.h>

#include <algorithm>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>

#include "applier/progress.h"
#include "common/log.h"
#include "common/pg.h"
#include "tools/common/positions.h"

namespace pgbaton::tools {

struct MetricsSampler::Connections {
  std::optional<PgConn> source, target;
};

// Transactions seen in the queue by this process, and which of them the target applied.
struct MetricsSampler::Counts {
  Lsn seen;  // commit LSN of the last transaction counted
  // The highest end LSN the queue has held: its end goes back to Invalid when the applier trims
  // everything, which is no step back for what was queued.
  Lsn queued_end;
  uint64_t queued = 0, applied = 0;
  std::deque<Lsn> unapplied;  // commit LSNs counted as queued, not yet applied
  nlohmann::json samples = nlohmann::json::array();
  std::chrono::steady_clock::time_point last_sample{};
};

namespace {

PgConn* Open(const std::string& conninfo, const char* label, std::optional<PgConn>* conn) {
  if (conninfo.empty()) return nullptr;
  if (!*conn) {
    ConnectOptions co;
    co.label = label;
    co.application_name = "pgbaton metrics";
    co.connect_timeout_seconds = 3;  // a Stop() waits for at most one attempt
    auto c = PgConn::Connect(conninfo, co);
    if (!c.ok()) {
      LogDebug("metrics sampler: cannot connect",
               {{"server", label}, {"error", c.status().message()}});
      return nullptr;
    }
    conn->emplace(std::move(*c));
  }
  return &**conn;
}

double AsGauge(Lsn l) { return static_cast<double>(l.value()); }

}  // namespace

MetricsSampler::MetricsSampler(MetricsSamplerOptions options)
    : options_(std::move(options)),
      catalog_(options_.registry ? metrics::RegisterCatalog(options_.registry, options_.database)
                                 : metrics::CatalogFor(options_.database)),
      conns_(std::make_unique<Connections>()),
      counts_(std::make_unique<Counts>()) {
  thread_ = std::thread([this] { Loop(); });
}

MetricsSampler::~MetricsSampler() { Stop(); }

void MetricsSampler::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void MetricsSampler::Loop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    l.unlock();
    SampleOnce();
    l.lock();
    cv_.wait_for(l, options_.period, [this] { return stop_; });
  }
}

void MetricsSampler::SampleOnce() {
  std::optional<SourcePositions> source;
  if (PgConn* c = Open(options_.source_conninfo, "source", &conns_->source)) {
    auto p = ReadSourcePositions(*c, options_.name);
    if (p.ok()) {
      source = *p;
      catalog_.source_lsn->Set(AsGauge(p->current_lsn));
    } else {
      conns_->source.reset();
    }
  }
  Lsn queue_end;
  if (options_.queue != nullptr) {
    auto end = options_.queue->LastEndLsn();
    if (end.ok()) {
      queue_end = *end;
      counts_->queued_end = std::max(counts_->queued_end, *end);
      // 0 until the queue first holds a transaction; never back to 0 when the applier trims it.
      if (counts_->queued_end.IsValid()) {
        catalog_.queue_durable_lsn->Set(AsGauge(counts_->queued_end));
      }
    }
    auto size = options_.queue->SizeBytes();
    if (size.ok()) catalog_.queue_size_bytes->Set(static_cast<double>(*size));
  }
  PgConn* t = Open(options_.target_conninfo, "target", &conns_->target);
  std::optional<Lsn> applied_pos;
  if (t != nullptr) {
    auto a = applier::ReadTargetPosition(*t, options_.name, /*flushed=*/false);
    if (a.ok()) {
      applied_pos = *a;
    } else {
      conns_->target.reset();
    }
  }
  if (options_.record_samples && options_.queue != nullptr) {
    CountTransactions(applied_pos.value_or(Lsn()), applied_pos.has_value());
    RecordSample(source ? source->current_lsn : Lsn(), counts_->queued_end,
                 applied_pos.value_or(Lsn()));
  }
  if (!applied_pos) return;
  auto applied = &*applied_pos;
  // Nothing applied yet is no position (the gauge stays as it is, 0 at the start).
  if (applied->IsValid()) catalog_.applied_lsn->Set(AsGauge(*applied));
  if (options_.queue == nullptr) return;
  auto oldest = OldestUnapplied(options_.queue, *applied);
  if (!oldest.ok()) return;
  Lsn base = *applied;
  if (!base.IsValid() && *oldest) base = (*oldest)->commit_lsn;
  uint64_t lag = LagBytes(std::nullopt, queue_end, base, oldest->has_value()) +
                 LagBytes(source, Lsn(), Lsn(), false);
  catalog_.lag_bytes->Set(static_cast<double>(lag));
  catalog_.lag_seconds->Set(LagSeconds(*oldest, PgTimestamp::Now()));
}

void MetricsSampler::CountTransactions(Lsn applied, bool applied_known) {
  Counts& c = *counts_;
  // What the queue held before this process started is not this process's throughput: it is
  // only followed until applied.
  const bool first = !c.seen.IsValid() && c.queued == 0 && c.unapplied.empty();
  // Bounded per tick; the rest is counted at the next one.
  auto lsns = options_.queue->CommitLsns(c.seen, 200000);
  if (lsns.ok()) {
    for (Lsn lsn : *lsns) {
      c.seen = lsn;
      if (!first) ++c.queued;
      // Followed whenever a target is configured, also while its position cannot be read: a
      // transaction queued at such a tick is still applied later and must count then.
      if (!options_.target_conninfo.empty() && c.unapplied.size() < 2000000) {
        c.unapplied.push_back(lsn);
      }
    }
  }
  if (!applied_known) return;
  while (!c.unapplied.empty() && c.unapplied.front() <= applied) {
    c.unapplied.pop_front();
    ++c.applied;
  }
}

void MetricsSampler::RecordSample(Lsn source_lsn, Lsn queue_end, Lsn applied) {
  Counts& c = *counts_;
  auto now = std::chrono::steady_clock::now();
  if (now - c.last_sample < std::chrono::seconds(5)) return;
  c.last_sample = now;
  double t = static_cast<double>(PgTimestamp::Now().UnixMicros()) / 1e6;
  c.samples.push_back({{"t", t},
                       {"pid", static_cast<int64_t>(::getpid())},
                       {"queued_txns", c.queued},
                       {"queued_lsn", queue_end.value()},
                       {"applied_txns", c.applied},
                       {"applied_lsn", applied.value()},
                       {"source_lsn", source_lsn.value()}});
  while (c.samples.size() > 2 && t - c.samples[1]["t"].get<double>() >= 70) {
    c.samples.erase(c.samples.begin());
  }
  Status s = options_.queue->PutMeta(kRateSamplesMetaKey, c.samples.dump());
  if (!s.ok()) LogDebug("metrics sampler: cannot record a sample", {{"error", s.message()}});
}

std::unique_ptr<MetricsSampler> StartMetricsSampler(bool enabled, MetricsSamplerOptions options) {
  if (!enabled) return nullptr;
  return std::make_unique<MetricsSampler>(std::move(options));
}

VerbMetrics StartDatabaseMetrics(const MetricsServer* endpoint, MetricsSamplerOptions options) {
  VerbMetrics m;
  if (endpoint != nullptr || options.record_samples) {
    m.sampler = std::make_unique<MetricsSampler>(std::move(options));
  }
  return m;
}

Result<VerbMetrics> StartVerbMetrics(const MetricsOptions& flags, MetricsSamplerOptions options) {
  VerbMetrics m;
  PGB_ASSIGN_OR_RETURN(m.server, StartMetricsServer(flags));
  if (m.server || options.record_samples) {
    m.sampler = std::make_unique<MetricsSampler>(std::move(options));
  }
  return m;
}

}  // namespace pgbaton::tools

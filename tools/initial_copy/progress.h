// Progress of the initial copy: a live bar per active table and in total on a terminal, JSON
// lines otherwise, and the end-of-run summary (time per phase, bytes, rows). Counters are
// atomics that the copy workers bump; one background thread renders them.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics_catalog.h"

namespace pgbaton::tools::copy {

struct TableProgress {
  std::string key;  // "schema.table"
  uint64_t estimated_bytes = 0;
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> rows{0};
  std::atomic<int> chunks_running{0};
  std::atomic<bool> done{false};
};

struct PhaseTime {
  std::string phase;
  double seconds = 0;
};

class Progress {
 public:
  // `json`: JSON lines on `out`; otherwise a bar redrawn in place (for a terminal).
  Progress(FILE* out, bool json, int interval_ms);
  ~Progress();

  // Starts a phase ("snapshot", "schema", "data", "sequences", "post-data", "analyze"); ends
  // the previous one and records its time. `items_total` counts statements or tables.
  void BeginPhase(const std::string& phase, uint64_t items_total = 0);
  void ItemDone() { items_done_.fetch_add(1); }
  // Sets the current phase's item count once it is known (after BeginPhase).
  void SetItemsTotal(uint64_t items_total) { items_total_ = items_total; }
  // A line for people, above the live bar (a log line on stderr in JSON mode).
  void Note(const std::string& line);
  // The tables of the data phase; the pointers stay valid while this object lives.
  TableProgress* AddTable(const std::string& key, uint64_t estimated_bytes);
  // How many chunks the data phase was split into (shown in the summary).
  void SetChunks(uint64_t n) { chunks_ = n; }
  // Why the copy workers are paused ("source load (active sessions 37 > 32)"), shown with the
  // data phase's progress; "" when they are not. Thread-safe.
  void SetPaused(const std::string& why);
  // The --max-copy-rate cap in bytes per second (0: none), shown with the rate.
  void SetRateCap(uint64_t bytes_per_second) { rate_cap_ = bytes_per_second; }
  // Cluster mode: the database this copy is of, in every line ("" = none, the default).
  // Its copy series are that database's (metrics::CatalogFor).
  void SetDatabase(std::string database);
  // Ends the last phase and prints the summary (human or one JSON object).
  void Finish(bool ok);
  // Seconds spent per phase so far.
  std::vector<PhaseTime> Phases() const;

 private:
  void Loop();
  void Render(bool final_line);
  // Bar mode: erases the live lines so that the next output starts where they began. mu_ held.
  void EraseLocked();

  FILE* out_;
  bool json_;
  std::string database_;
  const metrics::Catalog* series_ = &metrics::CatalogMetrics();
  uint64_t reported_bytes_ = 0;  // copied bytes counted into the series so far
  std::chrono::milliseconds interval_;
  mutable std::mutex mu_;
  std::string phase_;
  std::chrono::steady_clock::time_point phase_start_;
  std::chrono::steady_clock::time_point run_start_;
  std::vector<PhaseTime> phases_;
  std::vector<std::unique_ptr<TableProgress>> tables_;
  std::atomic<uint64_t> items_total_{0};
  std::atomic<uint64_t> items_done_{0};
  int drawn_lines_ = 0;
  uint64_t last_bytes_ = 0;
  double rate_ = 0;  // bytes per second, smoothed
  std::chrono::steady_clock::time_point last_tick_;
  std::atomic<uint64_t> chunks_{0};
  std::string paused_;  // guarded by mu_
  std::atomic<uint64_t> rate_cap_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace pgbaton::tools::copy

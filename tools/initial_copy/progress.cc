#include "tools/initial_copy/progress.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "common/metrics_catalog.h"

namespace pgbaton::tools::copy {
namespace {

std::string HumanBytes(double b) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  return fmt::format("{:.1f} {}", b, units[u]);
}

std::string HumanSeconds(double s) {
  if (s < 0 || s > 1e7) return "--:--";
  int t = static_cast<int>(s + 0.5);
  if (t >= 3600) return fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60);
  return fmt::format("{:02}:{:02}", t / 60, t % 60);
}

std::string Bar(double fraction, int width) {
  fraction = std::clamp(fraction, 0.0, 1.0);
  int full = static_cast<int>(fraction * width);
  return std::string(full, '#') + std::string(width - full, '.');
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

Progress::Progress(FILE* out, bool json, int interval_ms)
    : out_(out), json_(json), interval_(std::max(interval_ms, 20)) {
  run_start_ = phase_start_ = last_tick_ = std::chrono::steady_clock::now();
  thread_ = std::thread([this] { Loop(); });
}

Progress::~Progress() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void Progress::EraseLocked() {
  if (json_ || drawn_lines_ == 0) return;
  fmt::print(out_, "\x1b[{}A\r\x1b[J", drawn_lines_);
  drawn_lines_ = 0;
}

void Progress::SetDatabase(std::string database) {
  std::lock_guard<std::mutex> l(mu_);
  database_ = std::move(database);
  series_ = &metrics::CatalogFor(database_);
}

void Progress::Note(const std::string& line) {
  if (json_) {
    LogInfo(line, database_.empty() ? LogFields{} : LogFields{{"database", database_}});
    return;
  }
  std::lock_guard<std::mutex> l(mu_);
  EraseLocked();
  fmt::print(out_, "{}{}\n", database_.empty() ? "" : database_ + ": ", line);
  fflush(out_);
}

void Progress::BeginPhase(const std::string& phase, uint64_t items_total) {
  {
    std::lock_guard<std::mutex> l(mu_);
    auto now = std::chrono::steady_clock::now();
    if (!phase_.empty()) {
      double took = Seconds(now - phase_start_);
      phases_.push_back({phase_, took});
      // Bar mode: a finished phase leaves one line behind; the live bar moves below it.
      if (!json_) {
        EraseLocked();
        std::string extra;
        if (phase_ == "data") {
          uint64_t bytes = 0, rows = 0;
          for (const auto& t : tables_) {
            bytes += t->bytes.load();
            rows += t->rows.load();
          }
          extra = fmt::format("  {} tables, {} rows, {} ({}/s)", tables_.size(), rows,
                              HumanBytes(bytes), HumanBytes(took > 0 ? bytes / took : 0));
        } else if (items_total_ > 0) {
          extra = fmt::format("  {} done", items_done_.load());
        }
        fmt::print(out_, "{:<9} done in {}{}\n", phase_, HumanSeconds(took), extra);
      }
    }
    phase_ = phase;
    phase_start_ = now;
    items_total_ = items_total;
    items_done_ = 0;
  }
  Render(false);
}

TableProgress* Progress::AddTable(const std::string& key, uint64_t estimated_bytes) {
  std::lock_guard<std::mutex> l(mu_);
  tables_.push_back(std::make_unique<TableProgress>());
  tables_.back()->key = key;
  tables_.back()->estimated_bytes = estimated_bytes;
  return tables_.back().get();
}

void Progress::SetPaused(const std::string& why) {
  std::lock_guard<std::mutex> l(mu_);
  paused_ = why;
}

std::vector<PhaseTime> Progress::Phases() const {
  std::lock_guard<std::mutex> l(mu_);
  return phases_;
}

namespace {

// The catalogue's copy series from the tables' counters: bytes as a counter (what moved since the
// last update), tables per state as gauges. Called with the progress lock held.
void UpdateCopyMetrics(const std::vector<std::unique_ptr<TableProgress>>& tables,
                       const metrics::Catalog& m, uint64_t& reported) {
  uint64_t bytes = 0, pending = 0, copying = 0, done = 0;
  for (const auto& t : tables) {
    uint64_t b = t->bytes.load();
    bytes += b;
    if (t->done) {
      ++done;
    } else if (t->chunks_running.load() > 0 || b > 0) {
      ++copying;
    } else {
      ++pending;
    }
  }
  if (bytes > reported) m.copy_bytes_total->Increment(bytes - reported);
  reported = std::max(reported, bytes);
  m.copy_tables.WithLabels({metrics::kCopyPending})->Set(static_cast<double>(pending));
  m.copy_tables.WithLabels({metrics::kCopyCopying})->Set(static_cast<double>(copying));
  m.copy_tables.WithLabels({metrics::kCopyDone})->Set(static_cast<double>(done));
}

}  // namespace

void Progress::Loop() {
  while (!stop_) {
    auto until = std::chrono::steady_clock::now() + interval_;
    while (!stop_ && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!stop_) Render(false);
  }
}

void Progress::Render(bool final_line) {
  std::lock_guard<std::mutex> l(mu_);
  UpdateCopyMetrics(tables_, *series_, reported_bytes_);
  auto now = std::chrono::steady_clock::now();
  uint64_t bytes = 0, rows = 0, estimate = 0, done_estimate = 0;
  int tables_done = 0;
  for (const auto& t : tables_) {
    uint64_t b = t->bytes.load();
    bytes += b;
    rows += t->rows.load();
    // A table's estimate is its heap size; what COPY moves may differ, so a finished table
    // counts as exactly what it moved and a running one as at most its estimate.
    uint64_t est = t->done ? b : std::max(t->estimated_bytes, b);
    estimate += est;
    if (t->done) ++tables_done;
    done_estimate += t->done ? b : std::min(b, est);
  }
  double dt = Seconds(now - last_tick_);
  if (dt >= 0.2) {
    double inst = static_cast<double>(bytes - std::min(bytes, last_bytes_)) / dt;
    rate_ = rate_ == 0 ? inst : 0.7 * rate_ + 0.3 * inst;
    last_bytes_ = bytes;
    last_tick_ = now;
  }
  double fraction = estimate > 0 ? static_cast<double>(done_estimate) / estimate : 0;
  double eta = rate_ > 0 ? static_cast<double>(estimate - done_estimate) / rate_ : -1;
  double phase_s = Seconds(now - phase_start_);
  if (phase_.empty()) return;

  if (json_) {
    if (final_line) return;
    nlohmann::json j = {
        {"phase", phase_}, {"elapsed_s", Seconds(now - run_start_)}, {"phase_elapsed_s", phase_s}};
    if (!database_.empty()) j["database"] = database_;
    if (phase_ == "data") {
      j["bytes_done"] = bytes;
      j["bytes_estimated"] = estimate;
      j["rows_done"] = rows;
      j["rate_bytes_per_s"] = static_cast<uint64_t>(rate_);
      j["eta_s"] = eta < 0 ? nlohmann::json(nullptr) : nlohmann::json(eta);
      if (rate_cap_ > 0) j["rate_cap_bytes_per_s"] = rate_cap_.load();
      j["paused"] = !paused_.empty();
      if (!paused_.empty()) j["paused_reason"] = paused_;
      j["tables_done"] = tables_done;
      j["tables_total"] = tables_.size();
      nlohmann::json active = nlohmann::json::array();
      for (const auto& t : tables_) {
        if (t->chunks_running.load() == 0 || t->done) continue;
        active.push_back({{"table", t->key},
                          {"bytes_done", t->bytes.load()},
                          {"bytes_estimated", t->estimated_bytes},
                          {"rows_done", t->rows.load()}});
      }
      j["active"] = active;
    } else {
      j["items_done"] = items_done_.load();
      j["items_total"] = items_total_.load();
    }
    fmt::print(out_, "{}\n", j.dump());
    fflush(out_);
    return;
  }

  std::vector<std::string> lines;
  if (phase_ == "data") {
    lines.push_back(
        fmt::format("data  [{}] {:5.1f}%  {} / {}  {}/s{}  eta {}  tables {}/{}", Bar(fraction, 30),
                    fraction * 100, HumanBytes(bytes), HumanBytes(estimate), HumanBytes(rate_),
                    rate_cap_ > 0 ? fmt::format(" (cap {}/s)", HumanBytes(rate_cap_.load())) : "",
                    HumanSeconds(eta), tables_done, tables_.size()));
    if (!paused_.empty()) lines.push_back("  paused: " + paused_);
    for (const auto& t : tables_) {
      if (t->chunks_running.load() == 0 || t->done) continue;
      uint64_t b = t->bytes.load();
      double f = t->estimated_bytes > 0 ? static_cast<double>(b) / t->estimated_bytes : 0;
      double teta = rate_ > 0 && t->estimated_bytes > b
                        ? static_cast<double>(t->estimated_bytes - b) / rate_
                        : 0;
      lines.push_back(fmt::format("  {:<40.40} [{}] {} / {}  eta {}", t->key, Bar(f, 20),
                                  HumanBytes(b), HumanBytes(t->estimated_bytes),
                                  HumanSeconds(teta)));
    }
  } else {
    uint64_t total = items_total_.load(), done = items_done_.load();
    double f = total > 0 ? static_cast<double>(done) / total : 0;
    lines.push_back(fmt::format("{:<9} [{}] {}/{}  {}", phase_, Bar(f, 30), done, total,
                                HumanSeconds(phase_s)));
  }
  if (!database_.empty()) lines.front() = database_ + ": " + lines.front();
  std::string s;
  if (drawn_lines_ > 0) s += fmt::format("\x1b[{}A", drawn_lines_);
  for (const auto& line : lines) s += "\r" + line + "\x1b[K\n";
  // Clear lines left over from a taller previous frame.
  for (int i = static_cast<int>(lines.size()); i < drawn_lines_; ++i) s += "\x1b[K\n";
  int extra = drawn_lines_ - static_cast<int>(lines.size());
  if (extra > 0) s += fmt::format("\x1b[{}A", extra);
  drawn_lines_ = static_cast<int>(lines.size());
  fputs(s.c_str(), out_);
  fflush(out_);
}

void Progress::Finish(bool ok) {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  Render(true);
  std::lock_guard<std::mutex> l(mu_);
  auto now = std::chrono::steady_clock::now();
  if (!phase_.empty()) phases_.push_back({phase_, Seconds(now - phase_start_)});
  phase_.clear();
  EraseLocked();
  uint64_t bytes = 0, rows = 0;
  for (const auto& t : tables_) {
    bytes += t->bytes.load();
    rows += t->rows.load();
  }
  double total = Seconds(now - run_start_);
  if (json_) {
    nlohmann::json j = {{"summary", ok ? "done" : "failed"},
                        {"total_s", total},
                        {"bytes", bytes},
                        {"rows", rows},
                        {"tables_copied", tables_.size()},
                        {"chunks", chunks_.load()}};
    if (!database_.empty()) j["database"] = database_;
    nlohmann::json p = nlohmann::json::object();
    for (const auto& ph : phases_) p[ph.phase] = ph.seconds;
    j["phases_s"] = p;
    fmt::print(out_, "{}\n", j.dump());
  } else {
    fmt::print(out_, "copy{} {} in {}: {} tables ({} chunks), {} rows, {}\n",
               database_.empty() ? "" : " of database \"" + database_ + "\"",
               ok ? "done" : "failed", HumanSeconds(total), tables_.size(), chunks_.load(), rows,
               HumanBytes(bytes));
    for (const auto& ph : phases_) fmt::print(out_, "  {:<10} {:8.2f} s\n", ph.phase, ph.seconds);
  }
  fflush(out_);
}

}  // namespace pgbaton::tools::copy

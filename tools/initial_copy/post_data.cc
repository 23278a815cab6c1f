#include "tools/initial_copy/post_data.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <thread>

#include "common/pg.h"
#include "common/sql_ident.h"
#include "tools/initial_copy/catalog.h"

namespace pgbaton::tools::copy {
namespace {

// Runs fn(item, conn) for items [0, n) across `jobs` target sessions, in order of `order`.
// The first error stops the rest and is returned.
Status RunOnTarget(const CopyOptions& o, int jobs, const std::vector<size_t>& order,
                   const std::string& setup, const std::function<Status(size_t, PgConn&)>& fn) {
  if (order.empty()) return Status::Ok();
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first_error;
  auto worker = [&](int id) {
    ConnectOptions co;
    co.label = "target";
    co.application_name = fmt::format("pgbaton copy post {}", id);
    auto conn = PgConn::Connect(o.target, co);
    Status st = conn.ok() ? conn->Run(setup) : conn.status();
    while (st.ok() && !failed) {
      size_t k = next.fetch_add(1);
      if (k >= order.size()) break;
      st = fn(order[k], *conn);
    }
    if (!st.ok()) {
      std::lock_guard<std::mutex> l(mu);
      if (first_error.ok()) first_error = st;
      failed = true;
    }
  };
  int n = std::min<int>(std::max(jobs, 1), static_cast<int>(order.size()));
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) threads.emplace_back(worker, i);
  for (auto& t : threads) t.join();
  return first_error;
}

bool AlreadyExists(const Status& st) {
  for (const char* state : {"42P07", "42710", "42P16"}) {
    if (st.message().find(fmt::format("SQLSTATE {}", state)) != std::string::npos) return true;
  }
  return false;
}

std::string SetupSql(const PostDataJob& job) {
  return job.post_data.preamble +
         fmt::format("SET maintenance_work_mem = '{}';\n", job.options->maintenance_work_mem);
}

// Runs entry i on conn; "already exists" counts as built when resuming.
Status BuildEntry(const PostDataJob& job, size_t i, PgConn& conn, std::mutex* mark_mu) {
  const PostDataEntry& e = job.post_data.entries[i];
  Status st = conn.Run(e.sql);
  if (!st.ok() && !(job.resuming && AlreadyExists(st))) {
    return st.WithContext(fmt::format("building {} {} on target", e.type, e.name));
  }
  std::lock_guard<std::mutex> l(*mark_mu);
  if (job.progress) job.progress->ItemDone();
  return job.mark_done(i);
}

std::mutex g_mark_mu;  // serializes mark_done between the early builder and RunPostData

}  // namespace

EarlyIndexBuilder::EarlyIndexBuilder(const PostDataJob* job) : job_(job) {
  int n = std::max(job->options->jobs, 1);
  for (int i = 0; i < n; ++i) threads_.emplace_back([this, i] { Worker(i); });
}

EarlyIndexBuilder::~EarlyIndexBuilder() { (void)Finish(); }

void EarlyIndexBuilder::SubmitTable(const std::string& schema, const std::string& name) {
  const QualifiedName table{schema, name};
  std::lock_guard<std::mutex> l(mu_);
  if (closing_) return;
  for (size_t i = 0; i < job_->post_data.entries.size(); ++i) {
    const PostDataEntry& e = job_->post_data.entries[i];
    if (e.wave != 0 || e.table != table || queued_.count(i) > 0) continue;
    {
      std::lock_guard<std::mutex> m(g_mark_mu);
      if (job_->is_done(i)) continue;
    }
    queued_.insert(i);
    queue_.push_back(i);
  }
  analyze_.emplace_back(schema, name);
  queue_.push_back(kAnalyze + analyze_.size() - 1);
  cv_.notify_all();
}

void EarlyIndexBuilder::Worker(int id) {
  ConnectOptions co;
  co.label = "target";
  co.application_name = fmt::format("pgbaton copy index {}", id);
  std::optional<PgConn> conn;
  for (;;) {
    size_t i;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return closing_ || !queue_.empty(); });
      if (queue_.empty() || !error_.ok()) return;
      i = queue_.front();
      queue_.pop_front();
    }
    Status st;
    if (!conn) {
      auto c = PgConn::Connect(job_->options->target, co);
      st = c.ok() ? c->Run(SetupSql(*job_)) : c.status();
      if (st.ok()) conn = std::move(*c);
    }
    if (st.ok() && i >= kAnalyze) {
      std::pair<std::string, std::string> t;
      {
        std::lock_guard<std::mutex> l(mu_);
        t = analyze_[i - kAnalyze];
      }
      st = conn->Run(fmt::format("ANALYZE {}", QuoteQualified(t.first, t.second)));
      if (st.ok()) {
        std::lock_guard<std::mutex> l(mu_);
        analyzed_.insert(t.first + "." + t.second);
      }
    } else if (st.ok()) {
      st = BuildEntry(*job_, i, *conn, &g_mark_mu);
    }
    if (!st.ok()) {
      std::lock_guard<std::mutex> l(mu_);
      if (error_.ok()) error_ = st;
      queue_.clear();
      return;
    }
  }
}

Status EarlyIndexBuilder::Finish() {
  {
    std::lock_guard<std::mutex> l(mu_);
    closing_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  std::lock_guard<std::mutex> l(mu_);
  return error_;
}

Status RunPostData(const PostDataJob& job) {
  const CopyOptions& o = *job.options;
  std::string setup = SetupSql(job);
  auto run_entry = [&](size_t i, PgConn& conn) -> Status {
    return BuildEntry(job, i, conn, &g_mark_mu);
  };
  for (int wave = 0; wave <= 2; ++wave) {
    std::vector<size_t> order;
    for (size_t i = 0; i < job.post_data.entries.size(); ++i) {
      std::lock_guard<std::mutex> l(g_mark_mu);
      if (job.post_data.entries[i].wave == wave && !job.is_done(i)) order.push_back(i);
    }
    if (wave == 0) {
      auto bytes = [&](size_t i) {
        auto it = job.table_bytes.find(job.post_data.entries[i].table);
        return it == job.table_bytes.end() ? uint64_t{0} : it->second;
      };
      std::stable_sort(order.begin(), order.end(),
                       [&](size_t a, size_t b) { return bytes(a) > bytes(b); });
    }
    // Attaches and the rest depend on each other in dump order: one session.
    PGB_RETURN_IF_ERROR(RunOnTarget(o, wave == 0 ? o.jobs : 1, order, setup, run_entry));
  }
  return Status::Ok();
}

Status AnalyzeTables(const CopyOptions& options,
                     const std::vector<std::pair<std::string, std::string>>& tables,
                     Progress* progress) {
  std::vector<size_t> order(tables.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  return RunOnTarget(options, options.jobs, order,
                     fmt::format("SET maintenance_work_mem = '{}'", options.maintenance_work_mem),
                     [&](size_t i, PgConn& conn) -> Status {
                       PGB_RETURN_IF_ERROR(conn.Run(fmt::format(
                           "ANALYZE {}", QuoteQualified(tables[i].first, tables[i].second))));
                       if (progress) progress->ItemDone();
                       return Status::Ok();
                     });
}

}  // namespace pgbaton::tools::copy

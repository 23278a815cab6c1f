#include "tools/copy/post_data.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "common/pg.h"
#include "tools/copy/catalog.h"

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

}  // namespace

Status RunPostData(const PostDataJob& job) {
  const CopyOptions& o = *job.options;
  std::string setup = job.post_data.preamble +
                      fmt::format("SET maintenance_work_mem = '{}';\n", o.maintenance_work_mem);
  std::mutex mark_mu;
  auto run_entry = [&](size_t i, PgConn& conn) -> Status {
    const PostDataEntry& e = job.post_data.entries[i];
    Status st = conn.Run(e.sql);
    if (!st.ok() && !(job.resuming && AlreadyExists(st))) {
      return st.WithContext(fmt::format("building {} {} on target", e.type, e.name));
    }
    std::lock_guard<std::mutex> l(mark_mu);
    if (job.progress) job.progress->ItemDone();
    return job.mark_done(i);
  };
  for (int wave = 0; wave <= 2; ++wave) {
    std::vector<size_t> order;
    for (size_t i = 0; i < job.post_data.entries.size(); ++i) {
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
                           "ANALYZE {}", QualifiedName(conn, tables[i].first, tables[i].second))));
                       if (progress) progress->ItemDone();
                       return Status::Ok();
                     });
}

}  // namespace pgbaton::tools::copy

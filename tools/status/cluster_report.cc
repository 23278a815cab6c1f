// `pgbaton status --databases`: each database's report in a line, and the cluster's total (the
// sum of the lag in bytes, the largest lag in seconds and ETA: the cluster is caught up when its
// slowest database is).
#include <fmt/format.h>

#include <algorithm>

#include "tools/status/status_report.h"

namespace pgbaton::tools::status {
namespace {

struct Total {
  uint64_t lag_bytes = 0;
  double lag_seconds = 0;
  std::optional<double> eta_seconds;
  bool lag_known = true;
  bool eta_known = true;
  int with_errors = 0;
};

bool HasError(const StatusReport& r) {
  return !r.source_error.empty() || !r.target_error.empty() || r.last_error.has_value();
}

Total Sum(const std::vector<ClusterMemberReport>& reports) {
  Total t;
  for (const ClusterMemberReport& m : reports) {
    const StatusReport& r = m.report;
    if (HasError(r)) ++t.with_errors;
    if (!r.lag_known) {
      t.lag_known = false;
      continue;
    }
    t.lag_bytes += r.lag_bytes;
    t.lag_seconds = std::max(t.lag_seconds, r.lag_seconds);
    if (r.lag_bytes == 0) continue;
    if (!r.eta_seconds) {
      t.eta_known = false;
    } else {
      t.eta_seconds = std::max(t.eta_seconds.value_or(0), *r.eta_seconds);
    }
  }
  if (!t.eta_known) t.eta_seconds.reset();
  return t;
}

std::string LastErrorText(const StatusReport& r) {
  if (!r.source_error.empty()) return "source: " + r.source_error;
  if (!r.target_error.empty()) return "target: " + r.target_error;
  if (r.last_error) return r.last_error->value("message", std::string("(recorded error)"));
  return "";
}

}  // namespace

nlohmann::json ClusterStatusToJson(const std::vector<ClusterMemberReport>& reports) {
  nlohmann::json j;
  j["schema_version"] = 1;
  j["cluster"] = true;
  j["time"] = PgTimestamp::Now().ToString();
  j["databases"] = nlohmann::json::array();
  for (const ClusterMemberReport& m : reports) {
    nlohmann::json one = StatusToJson(m.report);
    one["database"] = m.database;
    j["databases"].push_back(std::move(one));
  }
  const Total t = Sum(reports);
  j["total"] = {
      {"databases", reports.size()},
      {"databases_with_errors", t.with_errors},
      {"lag_known", t.lag_known},
      {"lag_bytes", t.lag_known ? nlohmann::json(t.lag_bytes) : nlohmann::json(nullptr)},
      {"lag_seconds", t.lag_known ? nlohmann::json(t.lag_seconds) : nlohmann::json(nullptr)},
      {"eta_seconds", t.eta_seconds ? nlohmann::json(*t.eta_seconds) : nullptr}};
  return j;
}

std::string ClusterStatusToText(const std::vector<ClusterMemberReport>& reports) {
  std::string out = fmt::format("pgbaton status: cluster migration, {} database(s), at {}\n\n",
                                reports.size(), PgTimestamp::Now().ToString());
  size_t width = 8;
  for (const ClusterMemberReport& m : reports) width = std::max(width, m.database.size());
  out += fmt::format("  {:<{}}  {:<18} {:>10} {:>8} {:>10}  {}\n", "database", width, "applied",
                     "lag", "lag s", "eta", "last error");
  for (const ClusterMemberReport& m : reports) {
    const StatusReport& r = m.report;
    out += fmt::format("  {:<{}}  {:<18} {:>10} {:>8} {:>10}  {}\n", m.database, width,
                       r.target_known ? r.applied_lsn.ToString() : "-",
                       r.lag_known ? HumanBytes(r.lag_bytes) : "-",
                       r.lag_known ? fmt::format("{:.1f}", r.lag_seconds) : "-", r.eta_text,
                       LastErrorText(r));
  }
  const Total t = Sum(reports);
  out += fmt::format("  {:<{}}  {:<18} {:>10} {:>8} {:>10}  {}\n", "total", width, "",
                     t.lag_known ? HumanBytes(t.lag_bytes) : "-",
                     t.lag_known ? fmt::format("{:.1f}", t.lag_seconds) : "-",
                     t.lag_known ? FormatEta(t.eta_seconds, t.lag_bytes) : "unknown",
                     t.with_errors > 0 ? fmt::format("{} with errors", t.with_errors) : "");
  return out;
}

}  // namespace pgbaton::tools::status

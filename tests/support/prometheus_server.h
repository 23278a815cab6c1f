// A real Prometheus server for tests (Debian's /usr/bin/prometheus): started on a free loopback
// port with a generated config that scrapes the given targets every second, its TSDB in a temp
// dir; stopped and removed in the destructor. Also a tiny loopback HTTP client for tests that read
// an endpoint directly. If Prometheus is not installed, Start() fails saying so: never a silent
// pass.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "tests/support/process.h"

namespace pgbaton::testing {

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

// GET http://host:port/target (HTTP/1.0, loopback only). Errors: kConnection, kProtocol.
Result<HttpResponse> HttpGet(const std::string& host, int port, const std::string& target,
                             int timeout_ms = 5000);

// Percent-encodes `text` for a URL query value.
std::string UrlEncode(const std::string& text);

struct PrometheusOptions {
  std::vector<std::string> targets;  // "127.0.0.1:PORT" endpoints serving /metrics
  std::string job = "pgbaton";       // the job label of the scraped series
  int scrape_interval_seconds = 1;
  std::string binary = "/usr/bin/prometheus";
};

class PrometheusServer {
 public:
  // Starts Prometheus and waits (up to 60 s) until /-/ready answers 200.
  static Result<std::unique_ptr<PrometheusServer>> Start(const PrometheusOptions& options);
  ~PrometheusServer();

  int port() const { return port_; }
  // GET /api/v1/query?query=...: the "data" object of a successful answer.
  Result<nlohmann::json> Query(const std::string& promql);
  // The value of a query that returns a single-sample vector; nullopt while it returns none.
  Result<std::optional<double>> QueryValue(const std::string& promql);
  // Polls QueryValue until `pred` holds for the value or `timeout_ms` passes; returns the last
  // value seen (nullopt if none). Errors only when a query fails.
  Result<std::optional<double>> WaitForValue(const std::string& promql,
                                             const std::function<bool(double)>& pred,
                                             int timeout_ms);
  std::string LogTail(size_t bytes = 4000) const;

 private:
  PrometheusServer() = default;
  std::string dir_;
  int port_ = 0;
  ChildProcess process_;
};

}  // namespace pgbaton::testing

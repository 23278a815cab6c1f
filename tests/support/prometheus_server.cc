#include "tests/support/prometheus_server.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <thread>

namespace pgbaton::testing {

namespace {

using Clock = std::chrono::steady_clock;

Status ConnError(const std::string& what) {
  return Status::Error(ErrorCode::kConnection, what, "", true);
}

}  // namespace

std::string UrlEncode(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

Result<HttpResponse> HttpGet(const std::string& host, int port, const std::string& target,
                             int timeout_ms) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return Status::Error(ErrorCode::kUsage, "HttpGet: host must be an IPv4 address: " + host);
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ConnError(std::string("socket: ") + std::strerror(errno));
  auto close_fd = std::unique_ptr<int, void (*)(int*)>(&fd, [](int* f) { close(*f); });
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return ConnError(fmt::format("connect {}:{}: {}", host, port, std::strerror(errno)));
  }
  std::string req = fmt::format("GET {} HTTP/1.0\r\nHost: {}:{}\r\nConnection: close\r\n\r\n",
                                target, host, port);
  if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    return ConnError(std::string("send: ") + std::strerror(errno));
  }
  std::string raw;
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    int left = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    if (left <= 0)
      return Status::Error(ErrorCode::kTimeout, "HttpGet: timed out reading " + target);
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, left) <= 0) continue;
    char buf[8192];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) return ConnError(std::string("recv: ") + std::strerror(errno));
    if (n == 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  HttpResponse res;
  size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos || raw.compare(0, 5, "HTTP/") != 0) {
    return Status::Error(ErrorCode::kProtocol,
                         "HttpGet: malformed response: " + raw.substr(0, 200));
  }
  std::string head = raw.substr(0, head_end);
  res.body = raw.substr(head_end + 4);
  size_t sp = head.find(' ');
  res.status = std::atoi(head.c_str() + sp + 1);
  size_t pos = head.find("\r\n");
  while (pos != std::string::npos) {
    size_t next = head.find("\r\n", pos + 2);
    std::string line =
        head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      size_t v = line.find_first_not_of(' ', colon + 1);
      res.headers[name] = v == std::string::npos ? "" : line.substr(v);
    }
    pos = next;
  }
  return res;
}

Result<std::unique_ptr<PrometheusServer>> PrometheusServer::Start(
    const PrometheusOptions& options) {
  if (access(options.binary.c_str(), X_OK) != 0) {
    return Status::Error(ErrorCode::kNotFound, "prometheus is not installed at " + options.binary,
                         "run scripts/setup (installs Debian's prometheus package)");
  }
  std::unique_ptr<PrometheusServer> s(new PrometheusServer());
  s->dir_ = MakeTempDir("pgbaton-prometheus");
  s->port_ = FreePort();
  std::string targets;
  for (const auto& t : options.targets) {
    targets += (targets.empty() ? "" : ", ") + fmt::format("'{}'", t);
  }
  WriteFile(s->dir_ + "/prometheus.yml",
            fmt::format("global:\n"
                        "  scrape_interval: {0}s\n"
                        "  evaluation_interval: {0}s\n"
                        "scrape_configs:\n"
                        "  - job_name: '{1}'\n"
                        "    scrape_interval: {0}s\n"
                        "    scrape_timeout: {0}s\n"
                        "    static_configs:\n"
                        "      - targets: [{2}]\n",
                        options.scrape_interval_seconds, options.job, targets));
  ProcessOptions po;
  po.stdout_path = s->dir_ + "/prometheus.log";
  s->process_ = ChildProcess({options.binary, "--config.file=" + s->dir_ + "/prometheus.yml",
                              "--storage.tsdb.path=" + s->dir_ + "/data",
                              fmt::format("--web.listen-address=127.0.0.1:{}", s->port_),
                              "--web.enable-lifecycle", "--log.level=warn"},
                             po);
  auto deadline = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < deadline) {
    if (!s->process_.running()) {
      return Status::Error(ErrorCode::kInternal,
                           "prometheus exited during start-up:\n" + s->LogTail());
    }
    auto r = HttpGet("127.0.0.1", s->port_, "/-/ready", 2000);
    if (r.ok() && r->status == 200) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return Status::Error(ErrorCode::kTimeout,
                       "prometheus did not become ready in 60 s:\n" + s->LogTail());
}

PrometheusServer::~PrometheusServer() {
  if (process_.pid() > 0 && process_.running()) {
    process_.Signal(SIGTERM);
    if (process_.Wait(10000) == -2) process_.Kill();
  }
  if (!dir_.empty()) RemoveTree(dir_);
}

Result<nlohmann::json> PrometheusServer::Query(const std::string& promql) {
  PGB_ASSIGN_OR_RETURN(HttpResponse r,
                       HttpGet("127.0.0.1", port_, "/api/v1/query?query=" + UrlEncode(promql)));
  nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded() || r.status != 200 || j.value("status", "") != "success") {
    return Status::Error(ErrorCode::kProtocol,
                         fmt::format("prometheus query \"{}\" failed (HTTP {}): {}", promql,
                                     r.status, r.body.substr(0, 500)));
  }
  return j["data"];
}

Result<std::optional<double>> PrometheusServer::QueryValue(const std::string& promql) {
  PGB_ASSIGN_OR_RETURN(nlohmann::json data, Query(promql));
  if (data.value("resultType", "") != "vector" || !data["result"].is_array()) {
    return Status::Error(ErrorCode::kProtocol, "prometheus: not a vector: " + data.dump());
  }
  const auto& result = data["result"];
  if (result.empty()) return std::optional<double>();
  if (result.size() != 1) {
    return Status::Error(ErrorCode::kProtocol,
                         "prometheus: expected one series, got: " + result.dump());
  }
  std::string v = result[0]["value"][1].get<std::string>();
  return std::optional<double>(std::stod(v));
}

Result<std::optional<double>> PrometheusServer::WaitForValue(
    const std::string& promql, const std::function<bool(double)>& pred, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  std::optional<double> last;
  for (;;) {
    PGB_ASSIGN_OR_RETURN(std::optional<double> v, QueryValue(promql));
    if (v) last = v;
    if (v && pred(*v)) return last;
    if (Clock::now() >= deadline) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

std::string PrometheusServer::LogTail(size_t bytes) const {
  std::string log = ReadFile(dir_ + "/prometheus.log");
  return log.size() > bytes ? log.substr(log.size() - bytes) : log;
}

}  // namespace pgbaton::testing

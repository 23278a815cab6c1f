#include "tools/metrics/metrics_server.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <httplib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "common/log.h"

namespace pgbaton::tools {

namespace {

constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

Status BadAddress(const std::string& addr, const std::string& why) {
  return Status::Error(ErrorCode::kUsage, fmt::format("--metrics-addr \"{}\": {}", addr, why),
                       "give HOST:PORT, e.g. 127.0.0.1:9187, [::1]:9187 or :9187");
}

class HttpMetricsServer : public MetricsServer {
 public:
  HttpMetricsServer(std::string host, metrics::Registry* registry)
      : host_(std::move(host)), registry_(registry) {
    // httplib's default also sets SO_REUSEPORT, which would let a second process share the port
    // silently; a port in use must be an error.
    server_.set_socket_options([](int sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    server_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(registry_->Render(), kContentType);
    });
    server_.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("pgbaton metrics: see /metrics\n", "text/plain; charset=utf-8");
    });
  }
  ~HttpMetricsServer() override { Stop(); }

  Status Bind(int port) {
    if (port == 0) {
      port_ = server_.bind_to_any_port(host_);
    } else {
      port_ = server_.bind_to_port(host_, port) ? port : -1;
    }
    if (port_ <= 0) {
      int err = errno;
      return Status::Error(
          ErrorCode::kIo,
          fmt::format("metrics endpoint: cannot listen on {}:{}: {}", host_, port,
                      err != 0 ? std::strerror(err) : "bind failed"),
          "choose a free port with --metrics-addr, or stop what is listening there");
    }
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // httplib's stop() is a no-op until the listen loop runs: wait for it, so that a Stop()
    // right after start cannot be lost (and leave the thread listening forever).
    for (int i = 0; i < 5000 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return Status::Ok();
  }

  int port() const override { return port_; }
  const std::string& host() const override { return host_; }
  void Stop() override {
    if (thread_.joinable()) {
      server_.stop();
      thread_.join();
    }
  }

 private:
  std::string host_;
  metrics::Registry* registry_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = -1;
};

bool IsLoopback(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) {
    uint32_t a = ntohl(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr);
    return (a >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    const auto* in6 = &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(in6)) return true;
    if (IN6_IS_ADDR_V4MAPPED(in6)) return in6->s6_addr[12] == 127;
  }
  return false;
}

}  // namespace

void AddMetricsOptions(CLI::App* sub, MetricsOptions* options) {
  sub->add_option("--metrics-addr", options->addr,
                  "serve Prometheus metrics at HOST:PORT/metrics (loopback only unless "
                  "--metrics-allow-remote)");
  sub->add_flag("--metrics-allow-remote", options->allow_remote,
                "allow --metrics-addr to listen on a non-loopback address");
}

Result<ListenAddress> ParseListenAddress(const std::string& addr) {
  ListenAddress out;
  std::string port_text;
  if (!addr.empty() && addr[0] == '[') {
    size_t close = addr.find(']');
    if (close == std::string::npos || close + 1 >= addr.size() || addr[close + 1] != ':') {
      return BadAddress(addr, "an IPv6 address must look like [::1]:PORT");
    }
    out.host = addr.substr(1, close - 1);
    port_text = addr.substr(close + 2);
  } else {
    size_t colon = addr.rfind(':');
    if (colon == std::string::npos) return BadAddress(addr, "no port");
    out.host = addr.substr(0, colon);
    if (out.host.find(':') != std::string::npos) {
      return BadAddress(addr, "put an IPv6 address in brackets");
    }
    port_text = addr.substr(colon + 1);
  }
  if (out.host.empty()) out.host = "127.0.0.1";
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string::npos) {
    return BadAddress(addr, fmt::format("invalid port \"{}\"", port_text));
  }
  out.port = std::stoi(port_text);
  if (out.port > 65535) return BadAddress(addr, fmt::format("port {} is out of range", out.port));
  return out;
}

Result<bool> IsLoopbackHost(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0) {
    return Status::Error(
        ErrorCode::kUsage,
        fmt::format("--metrics-addr: cannot resolve host \"{}\": {}", host, gai_strerror(rc)),
        "use an IP address such as 127.0.0.1");
  }
  bool all_loopback = res != nullptr;
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    all_loopback = all_loopback && IsLoopback(a->ai_addr);
  }
  freeaddrinfo(res);
  return all_loopback;
}

Result<std::unique_ptr<MetricsServer>> StartMetricsServer(const std::string& addr,
                                                          bool allow_remote,
                                                          metrics::Registry* registry) {
  PGB_ASSIGN_OR_RETURN(ListenAddress la, ParseListenAddress(addr));
  PGB_ASSIGN_OR_RETURN(bool loopback, IsLoopbackHost(la.host));
  if (!loopback && !allow_remote) {
    return Status::Error(
        ErrorCode::kUsage,
        fmt::format("--metrics-addr \"{}\": \"{}\" is not a loopback address; metrics are served "
                    "on loopback only by default",
                    addr, la.host),
        "to expose them on the network, add --metrics-allow-remote (and restrict access with a "
        "firewall), or listen on 127.0.0.1 and scrape through a proxy");
  }
  if (registry == nullptr) registry = &metrics::Registry::Default();
  auto server = std::make_unique<HttpMetricsServer>(la.host, registry);
  errno = 0;
  PGB_RETURN_IF_ERROR(server->Bind(la.port));
  LogInfo(
      "metrics endpoint listening",
      {{"url", fmt::format("http://{}:{}/metrics",
                           la.host.find(':') != std::string::npos ? "[" + la.host + "]" : la.host,
                           server->port())}});
  return std::unique_ptr<MetricsServer>(std::move(server));
}

Result<std::unique_ptr<MetricsServer>> StartMetricsServer(const MetricsOptions& options) {
  if (options.addr.empty()) return std::unique_ptr<MetricsServer>();
  return StartMetricsServer(options.addr, options.allow_remote, nullptr);
}

}  // namespace pgbaton::tools

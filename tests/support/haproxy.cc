#include "tests/support/haproxy.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace pgbaton::testing {

namespace {

bool Accepts(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

}  // namespace

Result<std::unique_ptr<HaProxy>> HaProxy::Start(const HaProxyOptions& options) {
  if (access(options.binary.c_str(), X_OK) != 0) {
    return Status::Error(
        ErrorCode::kNotFound,
        fmt::format("haproxy not found at {}: install haproxy (scripts/setup)", options.binary));
  }
  std::unique_ptr<HaProxy> h(new HaProxy());
  h->dir_ = MakeTempDir("haproxy");
  h->port_ = FreePort();
  std::string servers;
  for (size_t i = 0; i < options.backend_ports.size(); ++i) {
    servers += fmt::format("  server bouncer{} 127.0.0.1:{} check inter 500ms fall 2 rise 1\n",
                           i + 1, options.backend_ports[i]);
  }
  // TCP mode, long client/server timeouts (PgBouncer holds clients through a PAUSE), no logging
  // to syslog: the test reads stdout.
  std::string cfg = fmt::format(
      "global\n"
      "  maxconn 2000\n"
      "  pidfile {0}/haproxy.pid\n"
      "defaults\n"
      "  mode tcp\n"
      "  timeout connect 2s\n"
      "  timeout client 1h\n"
      "  timeout server 1h\n"
      "listen pgbouncers\n"
      "  bind 127.0.0.1:{1}\n"
      "  balance roundrobin\n"
      "{2}",
      h->dir_, h->port_, servers);
  WriteFile(h->dir_ + "/haproxy.cfg", cfg);
  GiveToTestUser(h->dir_);
  ProcessOptions po;
  po.as_test_user = true;
  po.stdout_path = h->dir_ + "/stdout.log";
  h->process_ = ChildProcess({options.binary, "-db", "-f", h->dir_ + "/haproxy.cfg"}, po);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!h->process_.running()) {
      return Status::Error(ErrorCode::kConnection,
                           fmt::format("haproxy exited at start: {}", h->LogTail()));
    }
    if (Accepts(h->port_)) return h;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Status::Error(ErrorCode::kTimeout,
                       fmt::format("haproxy did not listen within 20 s: {}", h->LogTail()));
}

HaProxy::~HaProxy() {
  process_.Signal(SIGTERM);
  if (process_.Wait(5000) == -2) process_.Kill();
  if (!dir_.empty()) RemoveTree(dir_);
}

std::string HaProxy::LogTail(size_t bytes) const {
  std::string log = ReadFile(dir_ + "/stdout.log");
  return log.size() > bytes ? log.substr(log.size() - bytes) : log;
}

}  // namespace pgbaton::testing

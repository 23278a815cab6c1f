// A real HAProxy for tests (Debian's /usr/sbin/haproxy): started as the unprivileged test user in
// the foreground on a free loopback port, in TCP mode, balancing connections round-robin over the
// given backends (e.g. two PgBouncer processes, as a PgBouncer host runs them), stopped in the
// destructor. If HAProxy is not installed, Start() fails saying so: never a silent pass.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "tests/support/process.h"

namespace pgbaton::testing {

struct HaProxyOptions {
  std::vector<int> backend_ports;  // 127.0.0.1:<port> each
  std::string binary = "/usr/sbin/haproxy";
};

class HaProxy {
 public:
  // Starts HAProxy and waits (up to 20 s) until its port accepts connections.
  static Result<std::unique_ptr<HaProxy>> Start(const HaProxyOptions& options);
  ~HaProxy();

  int port() const { return port_; }
  std::string LogTail(size_t bytes = 4000) const;

 private:
  HaProxy() = default;
  std::string dir_;
  int port_ = 0;
  ChildProcess process_;
};

}  // namespace pgbaton::testing

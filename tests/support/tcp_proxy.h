// A TCP proxy for fault tests: listens on a free loopback port and forwards every connection to
// 127.0.0.1:<target port>. A test can cut the network between a client and a server (DropAll closes
// every open connection at once) or make it hang without closing anything (Stall stops forwarding
// bytes, as a dead link or a full firewall drop would; Resume lets them flow again).
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "common/status.h"

namespace pgbaton::testing {

class TcpProxy {
 public:
  // Starts listening on a free loopback port; one background thread forwards all connections.
  // Fails with kIo if no socket can be had. Connections to a target that refuses are closed at
  // once (the client sees the server as down).
  static Result<std::unique_ptr<TcpProxy>> Start(int target_port);
  ~TcpProxy();  // stops the thread and closes every socket
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const { return port_; }
  // Closes every open connection (both sides). New connections are still accepted afterwards.
  // Returns once the forwarding thread has closed them.
  void DropAll();
  // true: stop forwarding bytes in both directions; connections stay open and new ones are
  // accepted (but see nothing). false: forward again, including what was held back.
  void Stall(bool stalled);
  void Resume() { Stall(false); }
  // Connections accepted so far (for tests that check their clients came back).
  int accepted() const { return accepted_.load(); }

  // All methods are thread-safe.

 private:
  TcpProxy() = default;
  void Loop();
  void Wake();

  int target_port_ = 0;
  int port_ = 0;
  int listen_fd_ = -1;
  int wake_pipe_[2] = {-1, -1};
  std::atomic<bool> stop_{false};
  std::atomic<bool> stalled_{false};
  std::atomic<int> accepted_{0};
  std::mutex drop_mu_;
  std::condition_variable drop_cv_;
  uint64_t drop_requested_ = 0;  // guarded by drop_mu_
  uint64_t drop_done_ = 0;       // guarded by drop_mu_
  std::thread thread_;
};

}  // namespace pgbaton::testing

#include "tests/support/tcp_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

namespace pgbaton::testing {
namespace {

// One proxied connection: client <-> upstream, with the bytes read but not yet written.
struct Pair {
  int fd[2] = {-1, -1};    // 0: client, 1: upstream
  std::string pending[2];  // pending[i]: read from fd[i], to be written to fd[1 - i]
  bool closed = false;
};

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

int ConnectUpstream(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  SetNonBlocking(fd);
  return fd;
}

void ClosePair(Pair* p) {
  for (int& fd : p->fd) {
    if (fd >= 0) {
      shutdown(fd, SHUT_RDWR);
      close(fd);
      fd = -1;
    }
  }
  p->closed = true;
}

}  // namespace

Result<std::unique_ptr<TcpProxy>> TcpProxy::Start(int target_port) {
  std::unique_ptr<TcpProxy> p(new TcpProxy());
  p->target_port_ = target_port;
  p->listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (p->listen_fd_ < 0) return Status::Error(ErrorCode::kIo, "tcp proxy: socket failed");
  int one = 1;
  setsockopt(p->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = 0;  // the kernel picks a free port
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(p->listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      listen(p->listen_fd_, 64) != 0) {
    return Status::Error(ErrorCode::kIo,
                         std::string("tcp proxy: bind/listen failed: ") + strerror(errno));
  }
  socklen_t len = sizeof a;
  getsockname(p->listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  p->port_ = ntohs(a.sin_port);
  SetNonBlocking(p->listen_fd_);
  if (pipe2(p->wake_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
    return Status::Error(ErrorCode::kIo, "tcp proxy: pipe failed");
  }
  p->thread_ = std::thread([raw = p.get()] { raw->Loop(); });
  return p;
}

TcpProxy::~TcpProxy() {
  stop_.store(true);
  Wake();
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
  for (int fd : wake_pipe_) {
    if (fd >= 0) close(fd);
  }
}

void TcpProxy::Wake() {
  char c = 1;
  [[maybe_unused]] ssize_t n = write(wake_pipe_[1], &c, 1);
}

void TcpProxy::DropAll() {
  std::unique_lock<std::mutex> lock(drop_mu_);
  uint64_t ticket = ++drop_requested_;
  Wake();
  drop_cv_.wait(lock, [&] { return drop_done_ >= ticket || stop_.load(); });
}

void TcpProxy::Stall(bool stalled) {
  stalled_.store(stalled);
  Wake();
}

void TcpProxy::Loop() {
  std::vector<Pair> pairs;
  uint64_t dropped = 0;
  while (!stop_.load()) {
    {
      std::lock_guard<std::mutex> lock(drop_mu_);
      if (drop_requested_ > dropped) {
        for (Pair& p : pairs) ClosePair(&p);
        pairs.clear();
        dropped = drop_requested_;
        drop_done_ = dropped;
        drop_cv_.notify_all();
      }
    }
    bool stalled = stalled_.load();
    std::vector<pollfd> fds;
    std::vector<std::pair<size_t, int>> owner;  // (pair index, side) for each fd after the first 2
    fds.push_back({wake_pipe_[0], POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    if (!stalled) {
      for (size_t i = 0; i < pairs.size(); ++i) {
        for (int side = 0; side < 2; ++side) {
          short ev = 0;
          if (pairs[i].pending[side].empty()) ev |= POLLIN;  // read more only when flushed
          if (!pairs[i].pending[1 - side].empty()) ev |= POLLOUT;
          fds.push_back({pairs[i].fd[side], ev, 0});
          owner.emplace_back(i, side);
        }
      }
    }
    if (poll(fds.data(), fds.size(), 1000) < 0 && errno != EINTR) break;
    if (fds[0].revents & POLLIN) {
      char buf[64];
      while (read(wake_pipe_[0], buf, sizeof buf) > 0) {
      }
    }
    if (fds[1].revents & POLLIN) {
      for (;;) {
        int c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) break;
        ++accepted_;
        int up = ConnectUpstream(target_port_);
        if (up < 0) {
          close(c);  // the server is down: so is the connection
          continue;
        }
        int one = 1;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        SetNonBlocking(c);
        Pair p;
        p.fd[0] = c;
        p.fd[1] = up;
        pairs.push_back(std::move(p));
      }
    }
    if (stalled) continue;
    for (size_t k = 2; k < fds.size(); ++k) {
      auto [i, side] = owner[k - 2];
      Pair& p = pairs[i];
      if (p.closed) continue;
      short re = fds[k].revents;
      if (re & POLLOUT) {
        std::string& out = p.pending[1 - side];
        ssize_t n = write(p.fd[side], out.data(), out.size());
        if (n > 0) {
          out.erase(0, static_cast<size_t>(n));
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
          ClosePair(&p);
          continue;
        }
      }
      if (re & (POLLIN | POLLHUP | POLLERR)) {
        char buf[65536];
        ssize_t n = read(p.fd[side], buf, sizeof buf);
        if (n > 0) {
          p.pending[side].append(buf, static_cast<size_t>(n));
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
          // One side closed: close both (what it sent last may be lost, as on a real cut; the
          // PostgreSQL protocol ends with Terminate, which was already forwarded).
          if (!p.pending[side].empty()) {
            [[maybe_unused]] ssize_t w =
                write(p.fd[1 - side], p.pending[side].data(), p.pending[side].size());
          }
          ClosePair(&p);
        }
      }
    }
    std::erase_if(pairs, [](const Pair& p) { return p.closed; });
  }
  for (Pair& p : pairs) ClosePair(&p);
  std::lock_guard<std::mutex> lock(drop_mu_);
  drop_done_ = drop_requested_;
  drop_cv_.notify_all();
}

}  // namespace pgbaton::testing

#include "tools/initial_copy/subprocess.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

namespace pgbaton::tools::copy {

Result<ProcessOutput> RunProcess(const std::vector<std::string>& argv, const std::string& input,
                                 const std::map<std::string, std::string>& env) {
  // Built before fork: the child of a threaded process may only call async-signal-safe functions.
  std::vector<std::string> env_strings;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    if (env.contains(std::string(entry.substr(0, entry.find('='))))) continue;
    env_strings.emplace_back(entry);
  }
  for (const auto& [name, value] : env) env_strings.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  int in[2], out[2], err[2], exec_err[2];
  if (pipe(in) != 0 || pipe(out) != 0 || pipe(err) != 0 || pipe2(exec_err, O_CLOEXEC) != 0) {
    return Status::Error(ErrorCode::kIo, fmt::format("cannot create pipes: {}", strerror(errno)));
  }
  pid_t pid = fork();
  if (pid < 0) {
    return Status::Error(ErrorCode::kIo, fmt::format("cannot fork: {}", strerror(errno)));
  }
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1], exec_err[0]}) close(fd);
    execvpe(args[0], args.data(), envp.data());
    int e = errno;
    (void)!write(exec_err[1], &e, sizeof(e));
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  close(exec_err[1]);
  int child_errno = 0;
  bool exec_failed = read(exec_err[0], &child_errno, sizeof(child_errno)) == sizeof(child_errno);
  close(exec_err[0]);

  // A writer that died must not kill us with SIGPIPE.
  signal(SIGPIPE, SIG_IGN);
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  ProcessOutput po;
  size_t written = 0;
  if (input.empty()) {
    close(in[1]);
    in[1] = -1;
  }
  int out_fd = out[0], err_fd = err[0];
  char buf[65536];
  while (out_fd >= 0 || err_fd >= 0 || in[1] >= 0) {
    pollfd fds[3];
    int n = 0;
    if (in[1] >= 0) fds[n++] = {in[1], POLLOUT, 0};
    if (out_fd >= 0) fds[n++] = {out_fd, POLLIN, 0};
    if (err_fd >= 0) fds[n++] = {err_fd, POLLIN, 0};
    if (poll(fds, n, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == in[1]) {
        ssize_t w = write(in[1], input.data() + written, input.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 && errno != EAGAIN && errno != EINTR) written = input.size();
        if (written >= input.size()) {
          close(in[1]);
          in[1] = -1;
        }
        continue;
      }
      ssize_t r = read(fds[i].fd, buf, sizeof(buf));
      if (r > 0) {
        (fds[i].fd == out_fd ? po.out : po.err).append(buf, static_cast<size_t>(r));
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        close(fds[i].fd);
        if (fds[i].fd == out_fd) out_fd = -1;
        if (fds[i].fd == err_fd) err_fd = -1;
      }
    }
  }
  if (in[1] >= 0) close(in[1]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (exec_failed) {
    return Status::Error(ErrorCode::kNotFound,
                         fmt::format("cannot run \"{}\": {}", argv[0], strerror(child_errno)),
                         "install it or pass its path (--pg-dump, --psql)");
  }
  po.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return po;
}

}  // namespace pgbaton::tools::copy

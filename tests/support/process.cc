#include "tests/support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace pgbaton::testing {

namespace {

void DropPrivileges() {
  std::string user = TestUser();
  if (user.empty()) return;
  struct passwd* pw = getpwnam(user.c_str());
  if (pw == nullptr) {
    fprintf(stderr, "test user \"%s\" does not exist (set PGBATON_TEST_USER)\n", user.c_str());
    _exit(127);
  }
  if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
      setuid(pw->pw_uid) != 0) {
    perror("dropping privileges");
    _exit(127);
  }
  setenv("HOME", pw->pw_dir, 1);
  setenv("USER", pw->pw_name, 1);
}

pid_t StartChild(const std::vector<std::string>& argv, const ProcessOptions& options, int out_fd) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  // child
  setpgid(0, 0);
  if (out_fd >= 0) {
    dup2(out_fd, 1);
    if (options.stderr_path.empty()) dup2(out_fd, 2);
  }
  if (!options.stdout_path.empty()) {
    int fd = open(options.stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      if (options.stderr_path.empty()) dup2(fd, 2);
    }
  } else if (out_fd < 0) {
    int fd = open("/dev/null", O_WRONLY);
    dup2(fd, 1);
    if (options.stderr_path.empty()) dup2(fd, 2);
  }
  if (!options.stderr_path.empty()) {
    int fd = open(options.stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) dup2(fd, 2);
  }
  int devnull = open("/dev/null", O_RDONLY);
  dup2(devnull, 0);
  for (const auto& [k, v] : options.env) setenv(k.c_str(), v.c_str(), 1);
  if (!options.cwd.empty() && chdir(options.cwd.c_str()) != 0) _exit(127);
  if (options.as_test_user) DropPrivileges();
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execvp(args[0], args.data());
  fprintf(stderr, "cannot run %s: %s\n", argv[0].c_str(), strerror(errno));
  _exit(127);
}

}  // namespace

CommandResult RunCommand(const std::vector<std::string>& argv, const ProcessOptions& options) {
  CommandResult result;
  int fds[2] = {-1, -1};
  bool capture = options.stdout_path.empty();
  if (capture && pipe(fds) != 0) return result;
  pid_t pid = StartChild(argv, options, capture ? fds[1] : -1);
  if (capture) {
    close(fds[1]);
    char buf[8192];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) result.output.append(buf, n);
    close(fds[0]);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const ProcessOptions& options) {
  pid_ = StartChild(argv, options, -1);
}

ChildProcess::~ChildProcess() { Kill(); }

ChildProcess::ChildProcess(ChildProcess&& o) noexcept { *this = std::move(o); }

ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
  if (this != &o) {
    Kill();
    pid_ = o.pid_;
    exit_code_ = o.exit_code_;
    term_signal_ = o.term_signal_;
    o.pid_ = -1;
  }
  return *this;
}

bool ChildProcess::running() { return pid_ > 0 && Wait(0) == -2; }

bool ChildProcess::Signal(int sig) { return pid_ > 0 && kill(pid_, sig) == 0; }

int ChildProcess::Wait(int timeout_ms) {
  if (pid_ <= 0) return exit_code_;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      term_signal_ = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
      pid_ = -1;
      return exit_code_;
    }
    if (r < 0 && errno != EINTR) {
      pid_ = -1;
      return exit_code_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return -2;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void ChildProcess::Kill() {
  if (pid_ <= 0) return;
  kill(-pid_, SIGKILL);  // the whole process group: scripts may have children
  kill(pid_, SIGKILL);
  Wait(10000);
}

std::string TestUser() {
  if (geteuid() != 0) return "";
  const char* u = std::getenv("PGBATON_TEST_USER");
  return (u != nullptr && *u != '\0') ? u : "postgres";
}

void GiveToTestUser(const std::string& path) {
  std::string user = TestUser();
  if (user.empty()) return;
  struct passwd* pw = getpwnam(user.c_str());
  if (pw == nullptr) return;
  std::error_code ec;
  if (chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0) return;
  for (auto& e : std::filesystem::recursive_directory_iterator(path, ec)) {
    if (chown(e.path().c_str(), pw->pw_uid, pw->pw_gid) != 0) return;
  }
}

std::string MakeTempDir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/" + prefix + "-XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) return "";
  chmod(buf.data(), 0755);
  return std::string(buf.data());
}

void RemoveTree(const std::string& path) {
  if (path.empty() || path == "/") return;
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
}

std::string DepsDir() {
  const char* d = std::getenv("PGBATON_DEPS_DIR");
  if (d != nullptr && *d != '\0') return d;
  return PGBATON_DEFAULT_DEPS_DIR;
}

std::string PgbatonBinary() {
  const char* b = std::getenv("PGBATON_BIN");
  if (b != nullptr && *b != '\0') return b;
  return PGBATON_DEFAULT_BIN;
}

}  // namespace pgbaton::testing

// Child processes for tests: run a command to completion, or keep one running (a broker, a
// bouncer, a pgbaton command) and kill it. When the test runs as root, commands that refuse root
// (postgres, pgbouncer) run as an unprivileged user (PGBATON_TEST_USER, default "postgres").
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace pgbaton::testing {

struct ProcessOptions {
  bool as_test_user = false;               // drop root privileges to the test user
  std::map<std::string, std::string> env;  // added to the inherited environment
  std::string stdout_path;                 // empty: capture (RunCommand) or /dev/null (Spawn)
  std::string stderr_path;                 // empty: merged into stdout
  std::string cwd;
};

struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string output;  // stdout (+ stderr unless redirected)
};

// Runs argv[0] (searched in PATH) and waits. Never throws.
CommandResult RunCommand(const std::vector<std::string>& argv, const ProcessOptions& options = {});

// A running child. The destructor kills it (SIGKILL) and reaps it.
class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(const std::vector<std::string>& argv, const ProcessOptions& options);
  ~ChildProcess();
  ChildProcess(ChildProcess&& o) noexcept;
  ChildProcess& operator=(ChildProcess&& o) noexcept;

  pid_t pid() const { return pid_; }
  bool running();
  // Sends `sig`; returns false if the process is gone.
  bool Signal(int sig);
  // Waits for exit up to `timeout_ms`; returns the exit code, or -1 (signal) / -2 (timeout).
  int Wait(int timeout_ms);
  // SIGKILL and reap.
  void Kill();
  int exit_code() const { return exit_code_; }
  int term_signal() const { return term_signal_; }

 private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
  int term_signal_ = 0;
};

// The unprivileged user servers run as when the tests run as root ("" when not root).
std::string TestUser();
// chown -R to the test user (no-op when not root).
void GiveToTestUser(const std::string& path);
// A fresh directory under TMPDIR (or /tmp), readable by the test user; removed by RemoveTree.
std::string MakeTempDir(const std::string& prefix);
void RemoveTree(const std::string& path);
// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();
// Full contents of a file ("" if missing).
std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& contents);
// Where scripts/setup installs test servers: $PGBATON_DEPS_DIR or the build's configured path.
std::string DepsDir();
// The pgbaton binary under test.
std::string PgbatonBinary();

}  // namespace pgbaton::testing

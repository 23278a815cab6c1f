#include "tools/common/signals.h"

#include <signal.h>
#include <unistd.h>

#include <cstring>

#include "common/error_code.h"

namespace pgbaton::tools {

namespace {

std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};
std::atomic<int> g_count{0};

void WriteStderr(const char* s) {
  ssize_t n = write(2, s, strlen(s));
  (void)n;  // nothing to do if stderr is gone
}

void Handle(int sig) {
  int seen = g_count.fetch_add(1);
  if (seen == 0) {
    g_signal.store(sig);
    g_stop.store(true);
    WriteStderr(sig == SIGINT ? "\ninterrupt: stopping after the current step (again to stop now)\n"
                              : "terminate: stopping after the current step (again to stop now)\n");
    return;
  }
  WriteStderr("second signal: stopping now\n");
  _exit(ExitCodeOf(ErrorCode::kInterrupted));
}

}  // namespace

void InstallSignalHandlers() {
  static std::atomic<bool> installed{false};
  if (installed.exchange(true)) return;
  struct sigaction sa {};
  sa.sa_handler = Handle;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // A closed pipe (a metrics scraper, `| head`) must not kill the process.
  signal(SIGPIPE, SIG_IGN);
}

const std::atomic<bool>& StopRequested() { return g_stop; }

void RequestStop() { g_stop.store(true); }

int StopSignal() { return g_signal.load(); }

void ResetStopRequestForTesting() {
  g_stop.store(false);
  g_signal.store(0);
  g_count.store(0);
}

}  // namespace pgbaton::tools

#include "tools/common/startup_retry.h"

#include <algorithm>
#include <thread>

#include "common/log.h"
#include "tools/common/signals.h"

namespace pgbaton::tools {

Status RetryWhileUnreachable(const std::string& what, const std::function<Status()>& step,
                             const StartupRetryOptions& options) {
  std::chrono::milliseconds wait = options.initial_backoff;
  for (int attempt = 1;; ++attempt) {
    Status st = step();
    if (st.ok() || st.code() != ErrorCode::kConnection || attempt >= options.max_attempts) {
      return st;
    }
    LogWarning("cannot reach a server at start; trying again",
               {{"step", what},
                {"attempt", attempt},
                {"wait_ms", static_cast<int64_t>(wait.count())},
                {"error", st.message()}});
    auto until = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < until) {
      if (StopRequested()) {
        return Status::Error(ErrorCode::kInterrupted,
                             "stopped while waiting for a server at start (" + what + ")");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    wait = std::min(wait * 2, options.max_backoff);
  }
}

}  // namespace pgbaton::tools

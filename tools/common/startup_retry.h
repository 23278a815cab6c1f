// The patience of a long-running verb's start. `run`, `stream` and `apply` reconnect with backoff
// once they run (the decoder and the applier do); before that, their start-up checks (identity,
// positions, publication and slot) connect too, and a server that is restarting or a network
// blip at that moment must not end the verb with kConnection either.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "common/status.h"

namespace pgbaton::tools {

struct StartupRetryOptions {
  std::chrono::milliseconds initial_backoff{200};  // first wait, doubled after each failure
  std::chrono::milliseconds max_backoff{10000};    // the waits' ceiling
  int max_attempts = 30;                           // then the last kConnection is returned
};

// Runs `step`; while it fails with kConnection (the retryable code), logs a warning naming `what`
// and the error, waits, and runs it again. Any other result is returned at once, as is the last
// kConnection after max_attempts, or kInterrupted when a stop is requested (SIGINT/SIGTERM,
// tools/common/signals.h) while it waits. `step` must be safe to run again after a failure.
Status RetryWhileUnreachable(const std::string& what, const std::function<Status()>& step,
                             const StartupRetryOptions& options = {});

}  // namespace pgbaton::tools

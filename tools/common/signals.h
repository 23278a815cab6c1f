// SIGINT/SIGTERM handling for long-running verbs. The first signal asks for a graceful stop:
// StopRequested() turns true and loops finish their current unit of work (a batch, a table) and
// exit with kInterrupted. A second signal means "now": the process exits at once with
// kInterrupted's exit code, after writing one line to stderr. Async-signal-safe.
#pragma once

#include <atomic>

namespace pgbaton::tools {

// Installs the handlers (idempotent). Call once, early in a verb's Run().
void InstallSignalHandlers();

// True once a SIGINT or SIGTERM arrived. Poll it from loops; cheap (a relaxed atomic load).
const std::atomic<bool>& StopRequested();

// The signal that requested the stop (0 if none).
int StopSignal();

// For tests: forgets a previous stop request (does not uninstall the handlers).
void ResetStopRequestForTesting();

}  // namespace pgbaton::tools

// SIGINT/SIGTERM handling, the one API every verb uses. The first signal asks for a graceful stop:
// StopRequested() turns true, one line on stderr says so, and loops finish their current unit of
// work (a batch, a table, a target transaction) and return. A second signal means "now": the
// process exits at once with kInterrupted's exit code, after writing one line to stderr; nothing
// is lost by that, since the queue and the target only ever hold whole transactions. SIGPIPE is
// ignored. The handlers are async-signal-safe.
#pragma once

#include <atomic>

namespace pgbaton::tools {

// Installs the handlers (idempotent). Call once, early in a verb's Run().
void InstallSignalHandlers();

// True once a SIGINT or SIGTERM arrived. Poll it from loops; cheap (a relaxed atomic load).
const std::atomic<bool>& StopRequested();

// Sets StopRequested() as a first signal would, without one and without the stderr line: a verb
// whose one part failed stops the others (run: the decoder failed, the applier drains and
// stops). Thread-safe.
void RequestStop();

// The signal that requested the stop (0 if none).
int StopSignal();

// For tests: forgets a previous stop request (does not uninstall the handlers).
void ResetStopRequestForTesting();

}  // namespace pgbaton::tools

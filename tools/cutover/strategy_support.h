// Helpers the cutover's fence and flip strategies share (tools/cutover/strategies.cc,
// tools/cutover/fleet.cc): PgBouncer's admin console, replacing a configuration file atomically,
// running an operator's shell command with a bound, and the error shapes of a failed fence or
// flip. Internal to tools/cutover/.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "common/pg.h"
#include "common/status.h"

namespace pgbaton::tools::cutover {

// Runs one PgBouncer admin command (simple query protocol) waiting at most `timeout`; when
// `cancel` becomes true meanwhile, gives up with kFenceFailed ("cancelled"), the command possibly
// still running on the console (use a fresh connection afterwards). Errors: kTimeout, the
// console's error. Thread-safe for distinct connections.
Status AdminCommand(PgConn& admin, const std::string& command, std::chrono::milliseconds timeout,
                    const std::atomic<bool>* cancel = nullptr);

// A text[] literal for `names` (a query parameter such as `= any($1::text[])`), every element
// double-quoted.
std::string ArrayLiteral(const std::vector<std::string>& names);

// Connects to a PgBouncer admin console (application_name "pgbaton cutover", connect timeout 5 s
// unless the conninfo sets one). Errors: the connection's, with a hint about admin_users.
Result<PgConn> ConnectAdmin(const std::string& conninfo);

// One [databases] entry as SHOW DATABASES lists it.
struct BouncerEntry {
  bool found = false;
  std::string host, port, database;  // where the entry points
  bool paused = false;
};
// SHOW DATABASES on `admin`, the row of `db` (found = false when absent).
Result<BouncerEntry> ShowDatabase(PgConn& admin, const std::string& db);

// Replaces `path` by `contents` (temporary file, fsync, rename), keeping its mode and, as root,
// its owner. Errors: kIo naming the file.
Status WriteFileAtomically(const std::string& path, const std::string& contents);
// The whole file. Errors: kNotFound naming it.
Result<std::string> ReadWholeFile(const std::string& path);

// Runs `cmd` with /bin/sh -c in its own process group, its stdout sent to stderr (stdout is the
// report), with `env` added to the environment; kills the group after `timeout`. Errors:
// kFlipFailed naming `what`, the exit code or signal, and the command.
Status RunShell(const std::string& cmd, const std::vector<std::string>& env,
                std::chrono::milliseconds timeout, const std::string& what);

// `s` as a kFenceFailed naming `what` (a kTimeout stays a timeout).
Status FenceFailed(const Status& s, const std::string& what);
// `s` as a kFlipFailed naming `what` (a kFlipFailed is returned as it is).
Status FlipFailed(const Status& s, const std::string& what);

}  // namespace pgbaton::tools::cutover

// Preflight: checks that a migration from a source to a target cluster can start, and says how to
// fix each problem. Used by `pgbaton preflight` and, before they touch anything, by `copy` and
// `run`. Each finding names the object (setting, role, table) and carries the fix.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace pgbaton::tools::preflight {

enum class Severity { kOk, kInfo, kWarning, kError };

struct Finding {
  std::string check;  // stable id, e.g. "source.wal_level", "source.replica_identity"
  Severity severity = Severity::kOk;
  std::string message;  // lowercase, names the object: "table public.t has no primary key ..."
  std::string fix;      // what to run or change; empty for ok/info
  std::string object;   // the object concerned, e.g. "public.t", "wal_level" (may be empty)
};

struct ServerInfo {
  bool reachable = false;
  std::string description;  // host:port/db, never a password
  int version_num = 0;      // e.g. 150018
  std::string version;      // e.g. "15.18"
};

struct PreflightOptions {
  std::string source;  // conninfo (secrets allowed; never printed)
  std::string target;
  std::string name = "pgbaton";  // the migration's slot/publication name
  bool no_owner = false;  // the copy will run --no-owner: owners need not exist on the target
  // --ddl replicate: capturing DDL (an event trigger) is required, so a role that may not create
  // one is an error; without it, the finding is information.
  bool ddl_replicate = false;
};

struct PreflightReport {
  ServerInfo source;
  ServerInfo target;
  std::vector<Finding> findings;
  // The connection failure that stopped a side from being checked, if any (its code is the
  // exit code: kConnection, kAuthentication ...).
  Status connection_error;

  int CountOf(Severity s) const;
  bool CanStart() const { return connection_error.ok() && CountOf(Severity::kError) == 0; }
};

// Connects to both clusters and runs every check. Never fails for a finding: problems are
// findings; only a failure to connect is also recorded in connection_error.
PreflightReport RunPreflight(const PreflightOptions& options);

std::string_view SeverityName(Severity s);

}  // namespace pgbaton::tools::preflight

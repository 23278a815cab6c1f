// The applier's flags, shared by `apply` and `run`, and their conversion to ApplierOptions. The
// target's conninfo comes from the connection flags (tools/config/connection.h).
#pragma once

#include <CLI/CLI.hpp>
#include <cstddef>
#include <string>

#include "applier/applier.h"
#include "common/status.h"

namespace pgbaton::tools {

struct ApplyFlags {
  int apply_jobs = 1;                 // --apply-jobs: apply connections, 1 to 64
  std::string on_conflict = "error";  // --on-conflict: error or skip
  std::string progress = "auto";      // --progress: auto, origin or table
  // The name of the flag above: `migrate` calls it --apply-progress, since its --progress is
  // the copy's display.
  std::string progress_flag = "--progress";
  std::string stop_at;             // --stop-at LSN; empty: run until stopped
  size_t group_rows = 20000;       // --group-rows: changes per target transaction
  int group_delay_ms = 1000;       // --group-delay-ms
  size_t copy_min_rows = 8;        // --copy-min-rows (0: never COPY)
  size_t big_txn_changes = 50000;  // --big-txn-changes
  std::string ddl = "stop";        // --ddl: replicate or stop
  std::string skip_ddl;            // --skip-ddl LSN: that transaction's DDL is not replayed
  std::string crash_at;            // hidden test hook --apply-crash-at (ApplierOptions::crash_at)

  // Adds --apply-jobs, --on-conflict, --progress (progress_flag), --group-rows, --group-delay-ms,
  // --copy-min-rows, --big-txn-changes, --stop-at, --ddl and --skip-ddl.
  void Register(CLI::App* sub);
  // The options for migration `name` applying onto `target_conninfo`. Errors: kUsage naming the
  // bad flag.
  Result<applier::ApplierOptions> ToOptions(const std::string& name,
                                            const std::string& target_conninfo) const;
};

// Adds --ddl replicate|stop to `sub`, into `*mode` (default "stop"): one definition for every verb
// that takes it (copy, stream, and the applying verbs through ApplyFlags).
void AddDdlFlag(CLI::App* sub, std::string* mode);

}  // namespace pgbaton::tools

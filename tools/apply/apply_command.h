// `pgbaton apply --target C --queue-dir D [--apply-jobs N] [--on-conflict error|skip]
// [--stop-at LSN]`: replays the work queue onto the target until stopped (SIGINT / SIGTERM) or
// until everything up to --stop-at is applied. The applier half of `pgbaton run`.
#pragma once

#include <memory>
#include <string>

#include "applier/applier.h"
#include "tools/command.h"

namespace pgbaton::tools {

std::unique_ptr<Command> MakeApplyCommand(GlobalOptions* global);

// The applier flags shared by `apply` and `run`, and their conversion to ApplierOptions.
struct ApplyFlags {
  std::string target;
  int apply_jobs = 1;
  std::string on_conflict = "error";
  std::string progress = "auto";
  std::string stop_at;
  size_t group_rows = 20000;
  int group_delay_ms = 1000;
  size_t copy_min_rows = 8;
  size_t big_txn_changes = 50000;

  // Adds --target, --apply-jobs, --on-conflict, --progress, --group-rows, --group-delay-ms,
  // --copy-min-rows, --big-txn-changes (and --stop-at when `with_stop_at`).
  void Register(CLI::App* sub, bool with_stop_at);
  // Errors: kUsage naming the bad flag.
  Result<applier::ApplierOptions> ToOptions(const std::string& name) const;
};

// Installs SIGINT / SIGTERM handlers that set the returned flag (first signal: stop cleanly).
std::atomic<bool>* InstallStopSignals();

}  // namespace pgbaton::tools

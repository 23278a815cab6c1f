#include "tools/common/apply_flags.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace pgbaton::tools {

void ApplyFlags::Register(CLI::App* sub) {
  sub->add_option("--apply-jobs", apply_jobs, "apply connections (parallel where independent)")
      ->capture_default_str();
  sub->add_option("--on-conflict", on_conflict,
                  "error: stop at a missing row or duplicate key; skip: log it and go on")
      ->capture_default_str();
  sub->add_option(progress_flag, progress,
                  "where progress is kept on the target: auto, origin or table")
      ->capture_default_str();
  sub->add_option("--group-rows", group_rows, "changes per target transaction")
      ->capture_default_str();
  sub->add_option("--group-delay-ms", group_delay_ms, "longest a target transaction stays open")
      ->capture_default_str();
  sub->add_option("--copy-min-rows", copy_min_rows,
                  "consecutive inserts into one table sent as COPY (0: never)")
      ->capture_default_str();
  sub->add_option("--big-txn-changes", big_txn_changes,
                  "source transactions larger than this stream alone, chunk by chunk")
      ->capture_default_str();
  sub->add_option("--stop-at", stop_at, "stop once every transaction up to this LSN is applied");
  AddDdlFlag(sub, &ddl);
  sub->add_option("--skip-ddl", skip_ddl,
                  "with --ddl replicate: do not replay the DDL of the transaction committed at "
                  "this LSN (after applying an equivalent on the target by hand); its rows are "
                  "still applied");
  sub->add_option("--apply-crash-at", crash_at)->group("");  // test hook
}

void AddDdlFlag(CLI::App* sub, std::string* mode) {
  sub->add_option("--ddl", *mode,
                  "replicate: capture DDL on the source (an event trigger; needs a superuser) "
                  "and replay it on the target in commit order; stop: a schema change stops the "
                  "applier (schema_changed)")
      ->capture_default_str()
      ->check(CLI::IsMember({"replicate", "stop"}));
}

Result<applier::ApplierOptions> ApplyFlags::ToOptions(const std::string& name,
                                                      const std::string& target_conninfo) const {
  applier::ApplierOptions o;
  o.target_conninfo = target_conninfo;
  o.name = name;
  if (apply_jobs < 1 || apply_jobs > 64) {
    return Status::Error(ErrorCode::kUsage,
                         fmt::format("--apply-jobs must be between 1 and 64, not {}", apply_jobs));
  }
  o.jobs = apply_jobs;
  if (on_conflict == "error") {
    o.on_conflict = applier::OnConflict::kError;
  } else if (on_conflict == "skip") {
    o.on_conflict = applier::OnConflict::kSkip;
  } else {
    return Status::Error(
        ErrorCode::kUsage,
        fmt::format("--on-conflict must be error or skip, not \"{}\"", on_conflict));
  }
  if (progress == "auto") {
    o.progress = applier::ProgressMode::kAuto;
  } else if (progress == "origin") {
    o.progress = applier::ProgressMode::kOrigin;
  } else if (progress == "table") {
    o.progress = applier::ProgressMode::kTable;
  } else {
    return Status::Error(
        ErrorCode::kUsage,
        fmt::format("{} must be auto, origin or table, not \"{}\"", progress_flag, progress));
  }
  if (!stop_at.empty()) {
    PGB_ASSIGN_OR_RETURN(o.stop_at, Lsn::Parse(stop_at));
  }
  if (group_rows < 1) return Status::Error(ErrorCode::kUsage, "--group-rows must be at least 1");
  o.group_max_rows = group_rows;
  o.group_max_delay = std::chrono::milliseconds(std::max(group_delay_ms, 1));
  o.copy_min_rows = copy_min_rows == 0 ? SIZE_MAX : copy_min_rows;
  o.big_txn_changes = std::max<size_t>(big_txn_changes, 1);
  o.ddl_replicate = ddl == "replicate";
  o.crash_at = crash_at;
  if (!skip_ddl.empty()) {
    if (!o.ddl_replicate) {
      return Status::Error(ErrorCode::kUsage, "--skip-ddl needs --ddl replicate");
    }
    PGB_ASSIGN_OR_RETURN(o.skip_ddl, Lsn::Parse(skip_ddl));
  }
  return o;
}

}  // namespace pgbaton::tools

// `pgbaton migrate --plan`: what a migration with these flags would do and need, before anything
// exists. Reads the source's catalogue and splits its tables as the copy will (the copy engine's
// own PlanChunks), times the copy's own COPY ... TO STDOUT on the biggest tables for a few
// seconds (bytes discarded), samples the source's WAL rate, counts the connections per side and
// runs preflight. Read-only on both sides: no slot, publication, queue or target object.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/types.h"
#include "tools/initial_copy/copy_options.h"
#include "tools/migrate/plan_model.h"
#include "tools/preflight_checks/preflight.h"

namespace pgbaton::tools::migrate {

struct PlanOptions {
  // The copy's options as migrate would run them: source, target, name, jobs, include/exclude,
  // text, chunk_bytes, no_owner (nothing else is read).
  copy::CopyOptions copy;
  std::string queue_dir;      // shown, and checked for a migration already in it
  int apply_jobs = 1;         // --apply-jobs
  double sample_seconds = 3;  // the WAL window, then the read sample, each this long
  // The read sample's pieces on sources 14 and later (TID ranges, cut as PlanChunks cuts them).
  uint64_t sample_piece_bytes = 8ull << 20;
  // The most the read sample reads, whatever the time (it stops at the first of the two).
  uint64_t sample_max_bytes = 1ull << 30;
  double queue_bytes_per_wal_byte = kQueueBytesPerWalByte;
};

struct PlannedTable {
  std::string schema;  // raw names
  std::string name;
  uint64_t bytes = 0;  // heap size
  size_t chunks = 1;   // ranges the copy splits it into (1: copied whole)
  bool binary = false;
  std::string text_reason;  // why text, when not binary ("c app.pair"; "--text")
};

struct Plan {
  preflight::PreflightReport preflight;  // as `pgbaton preflight` gives it
  std::vector<PlannedTable> tables;      // biggest first, as the copy orders them
  size_t excluded_tables = 0;            // left out by --include/--exclude
  uint64_t table_bytes = 0;
  uint64_t chunk_bytes = 0;  // tables bigger than this are split
  size_t chunks = 0;
  int data_workers = 0;  // copy sessions per side
  ReadSample sample;
  double sample_window_seconds = 0;  // how long the read sample ran
  std::string sample_note;           // how heap bytes were counted, when not exactly
  CopyEstimate copy;
  double wal_window_seconds = 0;
  Lsn wal_from, wal_to;
  double wal_bytes_per_second = 0;
  double queue_bytes_per_wal_byte = 0;
  uint64_t queue_bytes = 0;
  ConnectionPlan connections;
  std::vector<preflight::Finding> blockers;  // preflight's errors and the plan's own
  std::vector<preflight::Finding> warnings;
  std::string queue_dir;
  int jobs = 0;
  int apply_jobs = 0;

  bool ready() const { return blockers.empty(); }
};

// Makes the plan. Never creates or changes anything on either server or on disk. Errors: a side
// that cannot be reached (kConnection, kAuthentication, ...), a failed catalogue query or WAL
// sample; preflight's blockers are not errors but part of the plan.
Result<Plan> MakePlan(const PlanOptions& options);

// The plan as one JSON document (schema_version 1; docs/reference/commands.md lists the fields).
nlohmann::json PlanJson(const Plan& plan);

// The plan for people, several lines ending in a newline.
std::string PlanText(const Plan& plan);

// MakePlan, then the plan on stdout (JSON when `json`). Returns kPreflightFailed when the plan
// has blockers (after printing them), MakePlan's error when there is no plan.
Status RunPlan(const PlanOptions& options, bool json);

}  // namespace pgbaton::tools::migrate

// The cutover workflow behind `pgbaton cutover`: check that the applier is running and close
// behind, fence writers on the old cluster, write a sentinel into the source WAL and wait until
// the applier has applied past it, copy sequence values, re-sync large objects (which logical
// decoding does not carry; tools/initial_copy/large_objects.h), flip writers to the new cluster,
// and report a timeline (each phase in ms and the write pause, fence to flip done). Any failure
// before the flip has finished undoes the fence. See docs/guide/cutover.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/types.h"

namespace pgbaton::tools::cutover {

struct CutoverOptions {
  std::string source_conninfo;  // the old cluster (writers are fenced here)
  std::string target_conninfo;  // the new cluster (the applier's target)
  std::string queue_dir;        // the migration's queue; the timeline is stored with it
  std::string kafka_brokers;    // or its Kafka queue (then queue_dir is empty): brokers, topic
  std::string kafka_topic;
  std::string name = "pgbaton";  // the migration (slot, origin, queue)
  std::string fence;             // "pgbouncer:CONNINFO", "roles:R1,R2" or "readonly"
  std::string flip;              // "pgbouncer", "roles[:R1,R2]" or "command:CMD"
  std::string pgbouncer_ini;     // --flip pgbouncer: the file PgBouncer reads
  std::string pgbouncer_db;      // PgBouncer database to pause; default: the source's dbname
  std::chrono::milliseconds max_lag{1000};   // refuse when the applier is further behind
  uint64_t max_lag_bytes = 16ull << 20;      // refuse when more WAL than this is unapplied
  std::chrono::milliseconds timeout{60000};  // bound of each wait (PAUSE, drain, hook)
  bool dry_run = false;                      // check everything, fence nothing
  bool reverse = false;                      // start a reverse stream (new to old) before the flip
  std::string reverse_queue_dir;             // default: <queue_dir>.reverse
  std::string pgbaton_binary;  // the binary to start the reverse `run` with (/proc/self/exe)
  int large_object_jobs = 4;   // connection pairs comparing and copying large objects
  // Roles and settings changed on the source since pgbaton synced the globals: applied inside
  // the fence (true) rather than refused at the check (exit 83, globals_drift).
  bool sync_globals = false;
  // Test hook (hidden --pause-at): the process SIGSTOPs itself at this point, so that a test can
  // act on the servers there and then SIGCONT it. "after-fence" (fenced, no sentinel yet) or
  // "before-flip" (drained, sequences copied, reverse started). Empty: never.
  std::string pause_at;
};

struct Phase {
  std::string name;  // check, lo-presync, fence, drain, sequences, globals, large-objects,
                     // reverse, flip
  int64_t ms = 0;
  std::string detail;
};

struct CutoverReport {
  std::string id;
  bool ok = false;
  bool dry_run = false;
  std::string fence;  // the strategy's description
  std::string flip;
  std::vector<std::string> plan;  // what a real run does, step by step (dry run)
  std::vector<Phase> phases;
  int64_t write_pause_ms = -1;  // fence start to flip done; -1 when no fence was taken
  bool fence_undone = false;    // a failure after fencing undid the fence
  int64_t lag_ms = -1;          // measured by a probe message before fencing
  int64_t lag_bytes = -1;
  Lsn sentinel_lsn;
  int sequences = 0;
  int64_t large_objects = -1;         // on the source inside the fence (-1: step not reached)
  int64_t large_objects_synced = -1;  // created, replaced or unlinked inside the fence
  std::string reverse_command;        // the reverse stream's command line (password masked)
  int reverse_pid = 0;
  bool reverse_stopped = false;  // a failure after starting the reverse stream stopped it again
  std::string stored_at;         // "queue meta cutover/last" or a file path
  Status error = Status::Ok();

  nlohmann::json ToJson() const;
  std::string ToText() const;
};

// Runs the cutover (or, with dry_run, every check). Fills `report` in every case; the phase that
// failed is in report->phases with detail "failed: <message>". Errors: kApplierNotRunning,
// kLagTooHigh (before fencing: nothing to undo); kFenceFailed; kTimeout (drain); kFlipFailed;
// kNotFound / kPermission from the checks; kUsage (bad --pause-at); connection errors. Every
// error after the fence was taken comes after the fence was undone (report->fence_undone), or
// says that undoing failed and what to do by hand; a reverse stream started before the failure
// is stopped and its slot and publication dropped (report->reverse_stopped).
Status RunCutover(const CutoverOptions& options, CutoverReport* report);

}  // namespace pgbaton::tools::cutover

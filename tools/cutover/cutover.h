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

// One PgBouncer process of the fleet --fence pgbouncer:... covers, and how to flip it.
struct PgBouncerMember {
  std::string admin;     // its admin console's conninfo (dbname=pgbouncer)
  std::string ini;       // flip by rewriting this pgbouncer.ini's entry, then RELOAD; or
  std::string flip_cmd;  // flip by running this shell command (PGBATON_FLIP_* say where), RELOAD
};

// A pooler's state in the report: what the cutover did to it and where it points.
struct PoolerMember {
  std::string name;      // "pgbouncer 2 (127.0.0.1:6433/pgbouncer)" (never a password)
  std::string database;  // the PgBouncer database fenced and flipped
  std::string flip;      // "ini PATH", "command CMD" or "" (no flip of its own)
  // pending (not fenced), paused, flipped (points at the new cluster, still paused), resumed,
  // failed (see error).
  std::string state = "pending";
  std::string points_at = "old";  // old, new, or unknown (its entry could not be read back)
  int flip_attempts = 0;
  std::string error;  // the last failure ("" when none)
};

struct CutoverOptions {
  std::string source_conninfo;  // the old cluster (writers are fenced here)
  std::string target_conninfo;  // the new cluster (the applier's target)
  std::string queue_dir;        // the migration's queue; the timeline is stored with it
  std::string kafka_brokers;    // or its Kafka queue (then queue_dir is empty): brokers, topic
  std::string kafka_topic;
  std::string name = "pgbaton";  // the migration (slot, origin, queue)
  // --fence: "pgbouncer:CONNINFO" (repeatable: a fleet), or one "roles:R1,R2" or "readonly".
  std::vector<std::string> fence;
  std::string flip;  // "pgbouncer", "roles[:R1,R2]" or "command:CMD"; default pgbouncer for a fleet
  // --flip pgbouncer: per --fence pgbouncer: member, in order, its pgbouncer.ini or its flip
  // command (each list empty or one value per member; "" skips a member).
  std::vector<std::string> pgbouncer_ini;
  std::vector<std::string> pgbouncer_flip_cmd;
  std::vector<PgBouncerMember> pgbouncers;  // more members: [[cutover.pgbouncer]] in the config
  std::string pgbouncer_db;  // PgBouncer database to pause; default: the source's dbname
  // A fleet's flip retries failing members this long, then flips every member back.
  std::chrono::milliseconds flip_timeout{10000};
  // Client sessions on the source that bypass the fence (fence verification) are terminated
  // instead of aborting the cutover.
  bool terminate_bypass = false;
  // How long the fence verification watches the source for activity after the fence.
  std::chrono::milliseconds bypass_window{25};
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
  // act on the servers there and then SIGCONT it. "before-fence" (checks done, nothing fenced),
  // "after-fence" (fenced and verified, no sentinel yet) or "before-flip" (drained, sequences
  // copied, reverse started). Empty: never.
  std::string pause_at;
};

struct Phase {
  // check, lo-presync, fence, bypass-check, drain, sequences, globals, large-objects, reverse,
  // bypass-recheck, flip, undo
  std::string name;
  int64_t ms = 0;
  std::string detail;
};

// A client session on the source that could still write while the fence was up.
struct BypassSession {
  int64_t pid = 0;
  std::string user, application, client, state;
  bool terminated = false;
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
  std::vector<PoolerMember> poolers;     // each PgBouncer of the fence (fleet), in --fence order
  std::vector<BypassSession> bypassing;  // sessions the fence verification found
  std::string stored_at;                 // "queue meta cutover/last" or a file path
  Status error = Status::Ok();

  nlohmann::json ToJson() const;
  std::string ToText() const;
};

// Runs the cutover (or, with dry_run, every check). Fills `report` in every case; the phase that
// failed is in report->phases with detail "failed: <message>". Errors: kApplierNotRunning,
// kLagTooHigh (before fencing: nothing to undo); kFenceFailed; kFenceBypassed (a client session
// on the source writes around the fence; without terminate_bypass); kTimeout (drain); kFlipFailed;
// kNotFound / kPermission from the checks; kUsage (bad --pause-at); connection errors. Every
// error after the fence was taken comes after the fence was undone (report->fence_undone), or
// says that undoing failed and what to do by hand; a reverse stream started before the failure
// is stopped and its slot and publication dropped (report->reverse_stopped).
Status RunCutover(const CutoverOptions& options, CutoverReport* report);

}  // namespace pgbaton::tools::cutover

// The arithmetic of `migrate --plan`, apart from the servers so that it can be unit-tested: the
// copy's duration from a measured read sample, the queue's disk from the source's WAL rate, and
// the connections a migration opens on each side, phase by phase. plan.h gathers the inputs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pgbaton::tools::migrate {

// The copy's end-to-end rate (source COPY TO -> pgbaton -> target COPY FROM, with the target's
// early index builds running beside it) over the rate at which the sampled sessions read the
// source alone (the plan writes nothing on the target, so it cannot time the target's half).
// Measured with bench/migrate/plan_calibrate.sh on the project's shared 2-core machine, source 15
// and target 17 on that same machine, --jobs 2, one table of ints and 64-byte text with a primary
// key, binary COPY: 0.201 at 57 MB (sample 731 MB/s, data phase 0.39 s), 0.182 at 238 MB (sample
// 576 MB/s, data phase 2.26 s), 2026-12-05. On separate machines, or with many indexes per table,
// the real ratio differs: the reference page says so.
inline constexpr double kEndToEndOverRead = 0.19;

// What the copy spends besides the data phase, whatever the size: pg_dump's two sections, the
// schema restore, the sequences, the post-data statements left after the data and ANALYZE.
// Measured in the same runs as the copy's total minus its data phase: 0.33 s and 0.35 s for a
// two-table schema; rounded up for schemas with more objects.
inline constexpr double kFixedCopySeconds = 0.5;

// Queue bytes on disk per byte of source WAL, measured with bench/migrate/plan_calibrate.sh:
// `pgbaton stream` (no applier, so nothing is trimmed) drains a 15 source under 10 s of load; the
// queue directory's size against the WAL generated meanwhile. Small-row updates and inserts:
// 0.239; pgbench's tpcb-like right after a checkpoint: 0.012 (its WAL is mostly full-page images,
// which the queue does not hold). The higher figure is used, so the plan errs on the side of
// more disk.
inline constexpr double kQueueBytesPerWalByte = 0.25;

// One session's part of the read sample.
struct SessionSample {
  uint64_t heap_bytes = 0;  // heap bytes of the source covered by the pieces it read
  uint64_t copy_bytes = 0;  // COPY bytes it received
  double seconds = 0;       // the time those pieces took
};

// The read sample: the copy's own COPY ... TO STDOUT on the first pieces of the biggest tables,
// read by several sessions at once, the bytes discarded.
struct ReadSample {
  std::vector<SessionSample> sessions;

  // The rate all sessions read at together: the sum of each session's heap bytes per second
  // (they ran at the same time). 0 when nothing was read.
  double HeapBytesPerSecond() const;
  uint64_t HeapBytes() const;
  uint64_t CopyBytes() const;
};

struct CopyEstimate {
  double read_bytes_per_second = 0;  // the sample's rate, every sampled session together
  double copy_bytes_per_second = 0;  // the copy's expected rate: read rate x end_to_end_over_read
  double data_seconds = 0;           // the data phase: table bytes over the copy's rate
  double seconds = 0;                // the whole copy: data_seconds + fixed seconds
  bool measured = false;             // false: nothing was read (no rows), so no rate
};

// The copy of `table_bytes` heap bytes, from `sample` taken with as many sessions as the copy
// will run (or fewer when there were fewer pieces to read: then no gain from more workers is
// assumed). With nothing sampled, data_seconds is 0 (there was nothing to read).
CopyEstimate EstimateCopy(uint64_t table_bytes, const ReadSample& sample,
                          double end_to_end_over_read = kEndToEndOverRead,
                          double fixed_seconds = kFixedCopySeconds);

// The queue's disk at the end of the copy, when it holds the most: every change made on the
// source during the copy (the applier starts after it), i.e. WAL rate x copy time x ratio.
uint64_t EstimateQueueBytes(double wal_bytes_per_second, double copy_seconds,
                            double queue_bytes_per_wal_byte = kQueueBytesPerWalByte);

// Connections pgbaton holds open on one side at once.
struct SideConnections {
  int sessions = 0;     // ordinary sessions: count against max_connections
  int replication = 0;  // replication connections: count against max_wal_senders
};

struct PhaseConnections {
  std::string phase;  // "schema", "data", "post-data", "catch-up"
  SideConnections source;
  SideConnections target;
};

struct ConnectionPlan {
  std::vector<PhaseConnections> phases;
  SideConnections source_peak;  // the most of each kind in any phase
  SideConnections target_peak;
};

// What a fresh `migrate` opens, from its code: `jobs` (--jobs: the target's index builders and
// post-data sessions), `data_workers` (copy sessions per side: jobs, at most one per chunk) and
// `apply_jobs` (--apply-jobs). Short-lived check connections (preflight, identity) come before
// these and are not counted.
ConnectionPlan CountConnections(int jobs, int data_workers, int apply_jobs);

}  // namespace pgbaton::tools::migrate

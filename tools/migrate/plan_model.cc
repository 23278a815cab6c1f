#include "tools/migrate/plan_model.h"

#include <algorithm>
#include <cmath>

namespace pgbaton::tools::migrate {

double ReadSample::HeapBytesPerSecond() const {
  double rate = 0;
  for (const SessionSample& s : sessions) {
    if (s.seconds > 0) rate += static_cast<double>(s.heap_bytes) / s.seconds;
  }
  return rate;
}

uint64_t ReadSample::HeapBytes() const {
  uint64_t n = 0;
  for (const SessionSample& s : sessions) n += s.heap_bytes;
  return n;
}

uint64_t ReadSample::CopyBytes() const {
  uint64_t n = 0;
  for (const SessionSample& s : sessions) n += s.copy_bytes;
  return n;
}

CopyEstimate EstimateCopy(uint64_t table_bytes, const ReadSample& sample,
                          double end_to_end_over_read, double fixed_seconds) {
  CopyEstimate e;
  e.read_bytes_per_second = sample.HeapBytesPerSecond();
  e.measured = e.read_bytes_per_second > 0;
  e.copy_bytes_per_second = e.read_bytes_per_second * end_to_end_over_read;
  if (e.measured && table_bytes > 0) {
    e.data_seconds = static_cast<double>(table_bytes) / e.copy_bytes_per_second;
  }
  e.seconds = e.data_seconds + fixed_seconds;
  return e;
}

uint64_t EstimateQueueBytes(double wal_bytes_per_second, double copy_seconds,
                            double queue_bytes_per_wal_byte) {
  double bytes = std::max(wal_bytes_per_second, 0.0) * std::max(copy_seconds, 0.0) *
                 std::max(queue_bytes_per_wal_byte, 0.0);
  return static_cast<uint64_t>(std::llround(bytes));
}

ConnectionPlan CountConnections(int jobs, int data_workers, int apply_jobs) {
  jobs = std::max(jobs, 1);
  data_workers = std::max(data_workers, 0);
  apply_jobs = std::max(apply_jobs, 1);
  // Held for the whole copy, once the slot exists. Source: the copy's control session, the
  // metrics sampler's, migrate's progress note's, and the decoder's type lookups and publication
  // check; the decoder's replication connection. Target: the copy's control session and the
  // metrics sampler's.
  const int source_copy = 5;
  const int target_copy = 2;
  ConnectionPlan p;
  // The schema: pg_dump reads inside the exported snapshot (whose replication connection stays
  // open until the data is copied) next to the session that lists the tables in it; psql
  // restores on the target.
  p.phases.push_back({"schema", {source_copy + 2, 2}, {target_copy + 1, 0}});
  // The data: one source and one target session per copy worker, the snapshot's two
  // connections, and on the target --jobs index builders that start on a table as soon as its
  // data is in (tools/initial_copy/post_data.h, EarlyIndexBuilder).
  p.phases.push_back(
      {"data", {source_copy + 1 + data_workers, 2}, {target_copy + data_workers + jobs, 0}});
  // The rest of the post-data statements and ANALYZE: --jobs target sessions.
  p.phases.push_back({"post-data", {source_copy, 1}, {target_copy + jobs, 0}});
  // The applier: a control session and --apply-jobs sessions on the target; the catch-up probe
  // on both sides, the applier's read-position session, the decoder and the metrics sampler.
  p.phases.push_back({"catch-up", {5, 1}, {apply_jobs + 3, 0}});
  for (const PhaseConnections& ph : p.phases) {
    p.source_peak.sessions = std::max(p.source_peak.sessions, ph.source.sessions);
    p.source_peak.replication = std::max(p.source_peak.replication, ph.source.replication);
    p.target_peak.sessions = std::max(p.target_peak.sessions, ph.target.sessions);
    p.target_peak.replication = std::max(p.target_peak.replication, ph.target.replication);
  }
  return p;
}

}  // namespace pgbaton::tools::migrate

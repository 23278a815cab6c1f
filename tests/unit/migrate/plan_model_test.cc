// The estimate model of `migrate --plan` (tools/migrate/plan_model.h): the copy's time from a read
// sample, the queue's disk from the WAL rate, the connections per side per phase.
#include "tools/migrate/plan_model.h"

#include <gtest/gtest.h>

namespace pgbaton::tools::migrate {
namespace {

TEST(PlanModelTest, SessionsThatReadTogetherAddTheirRates) {
  ReadSample s;
  s.sessions = {{.heap_bytes = 100'000'000, .copy_bytes = 90'000'000, .seconds = 2.0},
                {.heap_bytes = 60'000'000, .copy_bytes = 50'000'000, .seconds = 2.0}};
  EXPECT_DOUBLE_EQ(s.HeapBytesPerSecond(), 80e6);
  EXPECT_EQ(s.HeapBytes(), 160'000'000u);
  EXPECT_EQ(s.CopyBytes(), 140'000'000u);
}

TEST(PlanModelTest, CopyTimeIsBytesOverTheEndToEndRatePlusTheFixedPart) {
  ReadSample s;
  s.sessions = {{.heap_bytes = 40'000'000, .copy_bytes = 0, .seconds = 1.0},
                {.heap_bytes = 40'000'000, .copy_bytes = 0, .seconds = 1.0}};
  CopyEstimate e = EstimateCopy(1'000'000'000, s, /*end_to_end_over_read=*/0.5,
                                /*fixed_seconds=*/3.0);
  EXPECT_TRUE(e.measured);
  EXPECT_DOUBLE_EQ(e.read_bytes_per_second, 80e6);
  EXPECT_DOUBLE_EQ(e.copy_bytes_per_second, 40e6);
  EXPECT_DOUBLE_EQ(e.data_seconds, 25.0);
  EXPECT_DOUBLE_EQ(e.seconds, 28.0);
}

TEST(PlanModelTest, NothingSampledMeansNoRateAndOnlyTheFixedPart) {
  CopyEstimate e = EstimateCopy(0, ReadSample{}, 0.5, 2.0);
  EXPECT_FALSE(e.measured);
  EXPECT_EQ(e.data_seconds, 0);
  EXPECT_EQ(e.seconds, 2.0);
  // A session that read nothing in no time adds no rate (and no division by zero).
  ReadSample idle;
  idle.sessions = {{}};
  EXPECT_FALSE(EstimateCopy(1000, idle, 0.5, 2.0).measured);
}

TEST(PlanModelTest, QueueDiskIsWalRateTimesCopyTimeTimesRatio) {
  EXPECT_EQ(EstimateQueueBytes(2e6, 100, 0.25), 50'000'000u);
  EXPECT_EQ(EstimateQueueBytes(0, 100, 0.25), 0u);
  EXPECT_EQ(EstimateQueueBytes(-1, 100, 0.25), 0u);
}

TEST(PlanModelTest, ConnectionsFollowJobsWorkersAndApplyJobs) {
  ConnectionPlan p = CountConnections(/*jobs=*/4, /*data_workers=*/3, /*apply_jobs=*/2);
  ASSERT_EQ(p.phases.size(), 4u);
  EXPECT_EQ(p.phases[1].phase, "data");
  // Data: 3 workers + the snapshot's session + 5 held for the copy; the exporter and the decoder.
  EXPECT_EQ(p.phases[1].source.sessions, 9);
  EXPECT_EQ(p.phases[1].source.replication, 2);
  // Target: 3 workers + 4 index builders + control and metrics.
  EXPECT_EQ(p.phases[1].target.sessions, 9);
  EXPECT_EQ(p.phases[3].phase, "catch-up");
  EXPECT_EQ(p.phases[3].target.sessions, 5);
  EXPECT_EQ(p.source_peak.sessions, 9);
  EXPECT_EQ(p.source_peak.replication, 2);
  EXPECT_EQ(p.target_peak.sessions, 9);
  EXPECT_EQ(p.target_peak.replication, 0);
  // Many apply jobs make the catch-up the target's peak.
  EXPECT_EQ(CountConnections(1, 1, 16).target_peak.sessions, 19);
}

}  // namespace
}  // namespace pgbaton::tools::migrate

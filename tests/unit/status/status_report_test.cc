// `pgbaton status`'s arithmetic (lag, ETA) and its report from a real RocksDB queue in a temp dir:
// rates from the samples a running process records, the last error, the JSON schema's shape.
#include "tools/status/status_report.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "tools/common/metrics_sampler.h"
#include "tools/common/positions.h"

namespace pgbaton::tools::status {
namespace {

using nlohmann::json;

TEST(StatusReportTest, FormatsEta) {
  EXPECT_EQ(FormatEta(std::nullopt, 0), "caught up");
  EXPECT_EQ(FormatEta(0.0, 0), "caught up");
  EXPECT_EQ(FormatEta(std::nullopt, 10), "unknown");
  EXPECT_EQ(FormatEta(4.2, 10), "5s");
  EXPECT_EQ(FormatEta(59.5, 10), "1m00s");
  EXPECT_EQ(FormatEta(3725, 10), "1h02m05s");
}

TEST(StatusReportTest, LagBytesCountsUnreadWalAndUnappliedQueue) {
  SourcePositions s;
  s.slot_exists = true;
  s.slot_active = true;
  s.flush_lsn = Lsn(1000);
  s.sent_lsn = Lsn(900);
  s.confirmed_flush_lsn = Lsn(500);
  EXPECT_EQ(LagBytes(s, Lsn(), Lsn(), false), 100u);
  s.slot_active = false;  // nobody reads: everything after the confirmed position is unread
  EXPECT_EQ(LagBytes(s, Lsn(), Lsn(), false), 500u);
  EXPECT_EQ(LagBytes(std::nullopt, Lsn(800), Lsn(300), true), 500u);
  EXPECT_EQ(LagBytes(std::nullopt, Lsn(800), Lsn(300), false), 0u);
  EXPECT_EQ(LagBytes(s, Lsn(800), Lsn(300), true), 1000u);
  queue::CommitRecord c;
  c.commit_time = PgTimestamp::FromUnixMicros(10'000'000);
  EXPECT_DOUBLE_EQ(LagSeconds(c, PgTimestamp::FromUnixMicros(12'500'000)), 2.5);
  EXPECT_EQ(LagSeconds(c, PgTimestamp::FromUnixMicros(9'000'000)), 0);
  EXPECT_EQ(LagSeconds(std::nullopt, PgTimestamp::Now()), 0);
}

class StatusQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pgbaton-status-unit-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    queue::QueueOptions o;
    o.dir = dir_ + "/q";
    auto q = queue::WorkQueue::Open(o);
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    q_ = std::move(*q);
  }
  void TearDown() override {
    q_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Commit(uint64_t lsn, PgTimestamp t) {
    queue::RecordBatch b;
    queue::CommitRecord c;
    c.commit_lsn = Lsn(lsn);
    c.end_lsn = Lsn(lsn + 40);
    c.xid = Xid{static_cast<uint32_t>(lsn)};
    c.commit_time = t;
    b.commits.push_back(c);
    ASSERT_TRUE(q_->Append(b).ok());
  }
  std::string dir_;
  std::unique_ptr<queue::WorkQueue> q_;
};

TEST_F(StatusQueueTest, QueueAloneRatesFromSamplesAndLastError) {
  PgTimestamp now = PgTimestamp::Now();
  Commit(1000, PgTimestamp{now.micros - 120'000'000});  // two minutes ago: outside the window
  Commit(2000, PgTimestamp{now.micros - 10'000'000});
  Commit(3000, PgTimestamp{now.micros - 5'000'000});
  StatusInputs in;
  in.name = "pgbaton";
  in.queue_location = dir_ + "/q";
  auto r = CollectStatus(q_.get(), in, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->queue_transactions, 3u);
  EXPECT_FALSE(r->lag_known);
  EXPECT_EQ(r->eta_text, "unknown");
  EXPECT_EQ(r->rates_from, "queue");
  EXPECT_DOUBLE_EQ(r->queued_tps, 2.0 / 60);
  // From the end of the transaction before the window to the end of the last one.
  EXPECT_DOUBLE_EQ(r->queued_bytes_per_second, (3040.0 - 1040.0) / 60);
  EXPECT_EQ(r->queue_last_end_lsn, Lsn(3040));
  EXPECT_FALSE(r->last_error.has_value());

  // A running process's samples: 30 s apart, 300 transactions and 60000 bytes applied.
  double t = static_cast<double>(now.UnixMicros()) / 1e6;
  json samples = json::array({{{"t", t - 100},
                               {"pid", 7},
                               {"queued_txns", 0},
                               {"queued_lsn", 0},
                               {"applied_txns", 0},
                               {"applied_lsn", 0},
                               {"source_lsn", 0}},
                              {{"t", t - 31},
                               {"pid", 7},
                               {"queued_txns", 100},
                               {"queued_lsn", 10000},
                               {"applied_txns", 90},
                               {"applied_lsn", 9000},
                               {"source_lsn", 10000}},
                              {{"t", t - 1},
                               {"pid", 7},
                               {"queued_txns", 400},
                               {"queued_lsn", 70000},
                               {"applied_txns", 390},
                               {"applied_lsn", 69000},
                               {"source_lsn", 70000}}});
  ASSERT_TRUE(q_->PutMeta(kRateSamplesMetaKey, samples.dump()).ok());
  RecordLastError(q_.get(), "run",
                  Status::Error(ErrorCode::kAuthentication,
                                "target: password=hunter2 authentication failed", "fix it"));
  r = CollectStatus(q_.get(), in, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rates_from, "samples");
  EXPECT_DOUBLE_EQ(r->rate_span_seconds, 30);
  EXPECT_DOUBLE_EQ(r->queued_tps, 10);
  EXPECT_DOUBLE_EQ(r->queued_bytes_per_second, 2000);
  EXPECT_DOUBLE_EQ(r->applied_tps, 10);
  ASSERT_TRUE(r->last_error.has_value());
  EXPECT_EQ((*r->last_error)["code"], "authentication");
  EXPECT_EQ((*r->last_error)["verb"], "run");
  EXPECT_EQ((*r->last_error)["message"].get<std::string>().find("hunter2"), std::string::npos);

  json j = StatusToJson(*r);
  EXPECT_EQ(j["schema_version"], 1);
  EXPECT_TRUE(j["source"].is_null());
  EXPECT_TRUE(j["target"].is_null());
  ASSERT_EQ(j["stages"].size(), 5u);
  EXPECT_EQ(j["stages"][2]["stage"], "queue");
  EXPECT_EQ(j["stages"][2]["position"], Lsn(3040).ToString());
  EXPECT_TRUE(j["lag"]["bytes"].is_null());
  EXPECT_TRUE(j["rates"]["applied_transactions_per_second"].is_null());  // no --target
  EXPECT_EQ(j["rates"]["from"], "samples");
  EXPECT_EQ(j["eta"]["text"], "unknown");
  std::string text = StatusToText(*r);
  EXPECT_NE(text.find("lag:      unknown"), std::string::npos) << text;
  EXPECT_NE(text.find("authentication failed"), std::string::npos) << text;

  // Samples from a process that stopped long ago do not count as a current rate.
  for (auto& s : samples) s["t"] = s["t"].get<double>() - 600;
  ASSERT_TRUE(q_->PutMeta(kRateSamplesMetaKey, samples.dump()).ok());
  r = CollectStatus(q_.get(), in, nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rates_from, "queue");
}

// Right after a start (after a copy: an empty queue, nothing applied yet) the first samples know
// no position (0). A rate from them would count the cluster's whole WAL history as if it passed
// in the window; the window starts at the first sample that knew every position instead.
TEST_F(StatusQueueTest, RatesNeverCountFromAPositionNotKnownYet) {
  PgTimestamp now = PgTimestamp::Now();
  Commit(500'100'000, PgTimestamp{now.micros - 2'000'000});
  double t = static_cast<double>(now.UnixMicros()) / 1e6;
  auto sample = [&](double age, uint64_t queued_txns, uint64_t queued, uint64_t applied_txns,
                    uint64_t applied, uint64_t source) {
    return json{{"t", t - age},
                {"pid", 8},
                {"queued_txns", queued_txns},
                {"queued_lsn", queued},
                {"applied_txns", applied_txns},
                {"applied_lsn", applied},
                {"source_lsn", source}};
  };
  json samples = json::array({sample(21, 0, 0, 0, 0, 500'000'000),
                              sample(16, 900, 500'040'000, 0, 0, 500'060'000),
                              sample(11, 1000, 500'050'000, 950, 500'030'000, 500'070'000),
                              sample(1, 1200, 500'100'000, 1190, 500'090'000, 500'100'000)});
  ASSERT_TRUE(q_->PutMeta(kRateSamplesMetaKey, samples.dump()).ok());
  StatusInputs in;
  in.name = "pgbaton";
  in.queue_location = dir_ + "/q";
  auto r = CollectStatus(q_.get(), in, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rates_from, "samples");
  EXPECT_DOUBLE_EQ(r->rate_span_seconds, 10);
  EXPECT_DOUBLE_EQ(r->queued_tps, 20);
  EXPECT_DOUBLE_EQ(r->queued_bytes_per_second, 5000);
  EXPECT_DOUBLE_EQ(r->applied_tps, 24);
  EXPECT_DOUBLE_EQ(r->applied_bytes_per_second, 6000);
  ASSERT_TRUE(r->source_bytes_per_second.has_value());
  EXPECT_DOUBLE_EQ(*r->source_bytes_per_second, 3000);
  json j = StatusToJson(*r);
  EXPECT_EQ(j["rates"]["source_wal_bytes_per_second"], 3000.0);
  std::string text = StatusToText(*r);
  EXPECT_NE(text.find("source WAL 2.9 kB/s (last 10 s)"), std::string::npos) << text;

  // A shorter --rate-window leaves out the older samples.
  in.rate_window_seconds = 5;
  r = CollectStatus(q_.get(), in, nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->rate_span_seconds, 10);  // window + one sample period: the 11 s old one
  in.rate_window_seconds = 60;

  // Between two refreshes (--watch): a position the previous refresh did not know gives no rate.
  StatusReport previous;
  previous.time = PgTimestamp{now.micros - 1'000'000};
  r = CollectStatus(q_.get(), in, &previous);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->interval_seconds.has_value());
  EXPECT_FALSE(r->queued_bytes_per_second_interval.has_value());
  EXPECT_NE(StatusToText(*r).find("since last refresh"), std::string::npos);
  EXPECT_NE(StatusToText(*r).find("queued -"), std::string::npos) << StatusToText(*r);
  previous.queue_last_end_lsn = previous.queue_end_seen = Lsn(500'000'040);
  r = CollectStatus(q_.get(), in, &previous);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->queued_bytes_per_second_interval.has_value());
  EXPECT_NEAR(*r->queued_bytes_per_second_interval * *r->interval_seconds, 100'000, 1);
  // The applier trimmed everything: the queue's end is gone, what was queued is not.
  ASSERT_TRUE(q_->Trim(Lsn(500'100'000)).ok());
  StatusReport before_trim = *r;
  before_trim.time = PgTimestamp{PgTimestamp::Now().micros - 1'000'000};
  r = CollectStatus(q_.get(), in, &before_trim);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->queue_last_end_lsn.IsValid());
  EXPECT_EQ(r->queue_end_seen, Lsn(500'100'040));
  ASSERT_TRUE(r->queued_bytes_per_second_interval.has_value());
  EXPECT_EQ(*r->queued_bytes_per_second_interval, 0);
}

}  // namespace
}  // namespace pgbaton::tools::status

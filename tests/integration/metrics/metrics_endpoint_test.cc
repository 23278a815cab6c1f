// The metrics endpoint against a real Prometheus: the series is scraped, moves when the gauge
// moves, and histograms arrive with their buckets. Also what the endpoint itself answers, and the
// loopback-only default.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/metrics.h"
#include "common/metrics_catalog.h"
#include "tests/support/prometheus_server.h"
#include "tools/metrics/metrics_server.h"

namespace pgbaton::tools {
namespace {

using testing::HttpGet;
using testing::PrometheusServer;

// The metrics catalogue in a registry of its own; Serve starts its endpoint on a free loopback
// port, Scrape also a real Prometheus that scrapes it.
class MetricsEndpointTest : public ::testing::Test {
 protected:
  void SetUp() override { catalog_ = metrics::RegisterCatalog(&registry_); }
  // Call it (and Scrape) in ASSERT_NO_FATAL_FAILURE.
  void Serve() {
    auto server = StartMetricsServer("127.0.0.1:0", false, &registry_);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
  }
  void Scrape() {
    ASSERT_NO_FATAL_FAILURE(Serve());
    testing::PrometheusOptions po;
    po.targets = {"127.0.0.1:" + std::to_string(server_->port())};
    auto prom = PrometheusServer::Start(po);
    ASSERT_TRUE(prom.ok()) << prom.status().ToString();
    prom_ = std::move(*prom);
  }

  metrics::Registry registry_;
  metrics::Catalog catalog_;
  std::unique_ptr<MetricsServer> server_;
  std::unique_ptr<PrometheusServer> prom_;
};

TEST_F(MetricsEndpointTest, ServesTheRegistryAsPrometheusText) {
  catalog_.lag_bytes->Set(4242);
  ASSERT_NO_FATAL_FAILURE(Serve());
  int port = server_->port();
  ASSERT_GT(port, 0);
  auto res = HttpGet("127.0.0.1", port, "/metrics");
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(res->body.find("# TYPE pgbaton_lag_bytes gauge\npgbaton_lag_bytes 4242\n"),
            std::string::npos)
      << res->body;
  auto missing = HttpGet("127.0.0.1", port, "/nothing");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
  server_->Stop();
  EXPECT_FALSE(HttpGet("127.0.0.1", port, "/metrics", 1000).ok()) << "still serving after Stop";
}

TEST_F(MetricsEndpointTest, RefusesNonLoopbackWithoutOptIn) {
  auto refused = StartMetricsServer("0.0.0.0:0", false, nullptr);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kUsage);
  EXPECT_NE(refused.status().message().find("not a loopback address"), std::string::npos);
  EXPECT_NE(refused.status().hint().find("--metrics-allow-remote"), std::string::npos);

  metrics::Registry registry;
  registry.AddGauge("pgbaton_test_remote", "x")->Set(1);
  auto allowed = StartMetricsServer("0.0.0.0:0", true, &registry);
  ASSERT_TRUE(allowed.ok()) << allowed.status().ToString();
  auto res = HttpGet("127.0.0.1", (*allowed)->port(), "/metrics");
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_NE(res->body.find("pgbaton_test_remote 1"), std::string::npos);
}

TEST_F(MetricsEndpointTest, PortInUseIsAClearError) {
  auto first = StartMetricsServer("127.0.0.1:0", false, nullptr);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = StartMetricsServer("127.0.0.1:" + std::to_string((*first)->port()), false, nullptr);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), ErrorCode::kIo);
  EXPECT_NE(second.status().message().find(std::to_string((*first)->port())), std::string::npos)
      << second.status().message();
}

TEST_F(MetricsEndpointTest, RealPrometheusScrapesMovingSeries) {
  catalog_.applied_lsn->Set(1000);
  ASSERT_NO_FATAL_FAILURE(Scrape());

  constexpr int kWaitMs = 30000;
  auto up = prom_->WaitForValue(
      "up{job=\"pgbaton\"}", [](double v) { return v == 1; }, kWaitMs);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  ASSERT_TRUE(up->has_value() && **up == 1) << "target never up:\n" << prom_->LogTail();

  // The gauge moves three times; each value must reach Prometheus.
  for (double v : {1000.0, 250000.0, 97500059720.0}) {
    catalog_.applied_lsn->Set(v);
    auto got = prom_->WaitForValue(
        "pgbaton_applied_lsn", [v](double x) { return x == v; }, kWaitMs);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_TRUE(got->has_value()) << "series never scraped";
    EXPECT_EQ(**got, v);
  }

  // Counters with labels and histograms arrive with their labels and buckets.
  catalog_.transactions_total.WithLabels({metrics::kStageApplied})->Increment(7);
  for (int i = 0; i < 5; ++i) catalog_.apply_batch_size->Observe(3);
  auto tx = prom_->WaitForValue(
      "pgbaton_transactions_total{stage=\"applied\"}", [](double x) { return x == 7; }, kWaitMs);
  ASSERT_TRUE(tx.ok()) << tx.status().ToString();
  ASSERT_TRUE(tx->has_value());
  EXPECT_EQ(**tx, 7);
  auto bucket = prom_->WaitForValue(
      "pgbaton_apply_batch_size_bucket{le=\"5\"}", [](double x) { return x == 5; }, kWaitMs);
  ASSERT_TRUE(bucket.ok()) << bucket.status().ToString();
  ASSERT_TRUE(bucket->has_value());
  EXPECT_EQ(**bucket, 5);
  auto below = prom_->QueryValue("pgbaton_apply_batch_size_bucket{le=\"2\"}");
  ASSERT_TRUE(below.ok());
  ASSERT_TRUE(below->has_value());
  EXPECT_EQ(**below, 0);
}

// Every query of the shipped Grafana dashboard parses and runs on a real Prometheus, and the
// dashboard's panels cover every metric of the catalogue.
TEST_F(MetricsEndpointTest, GrafanaDashboardQueriesRun) {
  std::ifstream in(std::string(PGBATON_SOURCE_DIR) + "/docs/grafana/pgbaton.json");
  ASSERT_TRUE(in.good());
  nlohmann::json dash = nlohmann::json::parse(in);
  ASSERT_NO_FATAL_FAILURE(Scrape());
  std::string all_exprs;
  int queries = 0;
  for (const auto& panel : dash["panels"]) {
    for (const auto& target : panel["targets"]) {
      std::string expr = target["expr"];
      all_exprs += expr + "\n";
      std::string q = expr;
      for (size_t pos; (pos = q.find("$job")) != std::string::npos;) q.replace(pos, 4, ".*");
      auto r = prom_->Query(q);
      EXPECT_TRUE(r.ok()) << panel["title"] << ": " << r.status().ToString();
      ++queries;
    }
  }
  EXPECT_GT(queries, 10);
  std::string rendered = registry_.Render();
  for (size_t pos = 0; (pos = rendered.find("# TYPE ", pos)) != std::string::npos;) {
    pos += 7;
    std::string name = rendered.substr(pos, rendered.find(' ', pos) - pos);
    EXPECT_NE(all_exprs.find(name), std::string::npos) << name << " is on no dashboard panel";
  }
}

}  // namespace
}  // namespace pgbaton::tools

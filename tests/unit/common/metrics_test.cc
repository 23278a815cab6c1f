// The metrics registry: values, labels, histograms, concurrency, and the exact text format that
// Prometheus parses.
#include "common/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

#include "common/metrics_catalog.h"

namespace pgbaton::metrics {
namespace {

TEST(MetricsTest, CounterAndGaugeRender) {
  Registry r;
  Counter* c = r.AddCounter("pgbaton_things_total", "Things seen.");
  Gauge* g = r.AddGauge("pgbaton_level", "A level.");
  c->Increment();
  c->Increment(41);
  g->Set(2.5);
  g->Add(-1);
  EXPECT_EQ(c->Value(), 42u);
  EXPECT_DOUBLE_EQ(g->Value(), 1.5);
  EXPECT_EQ(r.Render(),
            "# HELP pgbaton_level A level.\n"
            "# TYPE pgbaton_level gauge\n"
            "pgbaton_level 1.5\n"
            "# HELP pgbaton_things_total Things seen.\n"
            "# TYPE pgbaton_things_total counter\n"
            "pgbaton_things_total 42\n");
}

TEST(MetricsTest, LabelledFamiliesSortAndEscape) {
  Registry r;
  CounterFamily* f = r.AddCounterFamily("pgbaton_events_total", "Events.", {"kind", "table"});
  f->WithLabels({"update", "public.b"})->Increment(2);
  f->WithLabels({"insert", "we\"ird\\name\nx"})->Increment();
  EXPECT_EQ(f->WithLabels({"update", "public.b"}), f->WithLabels({"update", "public.b"}))
      << "same labels, same child";
  EXPECT_EQ(r.Render(),
            "# HELP pgbaton_events_total Events.\n"
            "# TYPE pgbaton_events_total counter\n"
            "pgbaton_events_total{kind=\"insert\",table=\"we\\\"ird\\\\name\\nx\"} 1\n"
            "pgbaton_events_total{kind=\"update\",table=\"public.b\"} 2\n");
}

TEST(MetricsTest, HelpIsEscaped) {
  Registry r;
  r.AddGauge("pgbaton_g", "line one\nback\\slash \"quotes\" stay");
  EXPECT_NE(r.Render().find("# HELP pgbaton_g line one\\nback\\\\slash \"quotes\" stay\n"),
            std::string::npos)
      << r.Render();
}

TEST(MetricsTest, HistogramBucketsAreCumulative) {
  Registry r;
  Histogram* h = r.AddHistogram("pgbaton_batch_seconds", "Batch time.", {0.1, 1, 0.5});
  for (double v : {0.05, 0.1, 0.3, 0.7, 5.0}) h->Observe(v);
  EXPECT_EQ(h->Count(), 5u);
  EXPECT_DOUBLE_EQ(h->Sum(), 6.15);
  EXPECT_EQ(r.Render(),
            "# HELP pgbaton_batch_seconds Batch time.\n"
            "# TYPE pgbaton_batch_seconds histogram\n"
            "pgbaton_batch_seconds_bucket{le=\"0.1\"} 2\n"
            "pgbaton_batch_seconds_bucket{le=\"0.5\"} 3\n"
            "pgbaton_batch_seconds_bucket{le=\"1\"} 4\n"
            "pgbaton_batch_seconds_bucket{le=\"+Inf\"} 5\n"
            "pgbaton_batch_seconds_sum 6.15\n"
            "pgbaton_batch_seconds_count 5\n");
}

TEST(MetricsTest, LabelledHistogramPutsLeLast) {
  Registry r;
  HistogramFamily* f = r.AddHistogramFamily("pgbaton_h", "H.", {"stage"}, {1});
  f->WithLabels({"applied"})->Observe(2);
  std::string out = r.Render();
  EXPECT_NE(out.find("pgbaton_h_bucket{stage=\"applied\",le=\"1\"} 0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("pgbaton_h_bucket{stage=\"applied\",le=\"+Inf\"} 1\n"), std::string::npos);
  EXPECT_NE(out.find("pgbaton_h_sum{stage=\"applied\"} 2\n"), std::string::npos);
  EXPECT_NE(out.find("pgbaton_h_count{stage=\"applied\"} 1\n"), std::string::npos);
}

TEST(MetricsTest, SpecialValues) {
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
  EXPECT_EQ(FormatValue(INFINITY), "+Inf");
  EXPECT_EQ(FormatValue(-INFINITY), "-Inf");
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(-3), "-3");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  // An LSN-sized value prints exactly.
  EXPECT_EQ(FormatValue(static_cast<double>(uint64_t{0x16B374D848})), "97500059720");
}

TEST(MetricsTest, RegistrationIsGetOrCreate) {
  Registry r;
  Counter* a = r.AddCounter("pgbaton_x_total", "X.");
  Counter* b = r.AddCounter("pgbaton_x_total", "X.");
  EXPECT_EQ(a, b);
  a->Increment();
  // Another type under the same name: a detached metric, not exported, no crash.
  Gauge* g = r.AddGauge("pgbaton_x_total", "X.");
  ASSERT_NE(g, nullptr);
  g->Set(99);
  // Labels that do not match the family: a detached child.
  CounterFamily* f = r.AddCounterFamily("pgbaton_y_total", "Y.", {"a"});
  Counter* wrong = f->WithLabels({"1", "2"});
  ASSERT_NE(wrong, nullptr);
  wrong->Increment(7);
  std::string out = r.Render();
  EXPECT_EQ(out.find("99"), std::string::npos) << out;
  EXPECT_EQ(out.find(" 7\n"), std::string::npos) << out;
  EXPECT_NE(out.find("pgbaton_x_total 1\n"), std::string::npos) << out;
}

TEST(MetricsTest, InvalidNamesAreNotExported) {
  Registry r;
  r.AddGauge("pgbaton bad-name", "bad")->Set(1);
  r.AddGaugeFamily("pgbaton_ok", "ok", {"le"})->WithLabels({"x"})->Set(1);
  r.AddGaugeFamily("pgbaton_ok2", "ok", {"__reserved"})->WithLabels({"x"})->Set(1);
  EXPECT_EQ(r.Render(), "");
}

TEST(MetricsTest, ConcurrentUpdatesAreNotLost) {
  Registry r;
  CounterFamily* f = r.AddCounterFamily("pgbaton_c_total", "C.", {"t"});
  Histogram* h = r.AddHistogram("pgbaton_h", "H.", {10, 100});
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Counter* mine = f->WithLabels({std::to_string(t % 2)});
      for (int i = 0; i < kPerThread; ++i) {
        mine->Increment();
        h->Observe(i % 200);
        if (i % 10000 == 0) (void)r.Render();  // renders race with updates
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(f->WithLabels({"0"})->Value() + f->WithLabels({"1"})->Value(),
            uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(h->Count(), uint64_t{kThreads} * kPerThread);
  std::vector<uint64_t> cum = h->CumulativeCounts();
  // i % 200 in 0..10 -> 11 of 200 values; 0..100 -> 101 of 200.
  EXPECT_EQ(cum[0], uint64_t{kThreads} * (kPerThread / 200) * 11);
  EXPECT_EQ(cum[1], uint64_t{kThreads} * (kPerThread / 200) * 101);
}

// Every line of a render is a comment in the expected shape or a sample Prometheus can parse.
void ExpectValidExposition(const std::string& text) {
  std::regex help(R"(^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$)");
  std::regex type(R"(^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram)$)");
  std::regex sample(
      R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\})? ([-+]?[0-9.e+]+|NaN|[+-]Inf)$)");
  std::istringstream in(text);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    EXPECT_TRUE(std::regex_match(line, help) || std::regex_match(line, type) ||
                std::regex_match(line, sample))
        << "bad line: " << line;
  }
  EXPECT_GT(lines, 0);
}

TEST(MetricsCatalogTest, RegistersEveryDocumentedName) {
  Registry r;
  Catalog c = RegisterCatalog(&r);
  c.transactions_total.WithLabels({kStageApplied})->Increment(3);
  c.changes_total.WithLabels({kKindInsert})->Increment();
  c.bytes_total.WithLabels({kStageQueued})->Increment(100);
  c.errors_total.WithLabels({"connection"})->Increment();
  c.copy_tables.WithLabels({kCopyDone})->Set(4);
  c.apply_batch_size->Observe(12);
  c.apply_batch_seconds->Observe(0.02);
  c.source_lsn->Set(1000);
  std::string out = r.Render();
  for (const char* name :
       {"pgbaton_source_lsn", "pgbaton_queue_durable_lsn", "pgbaton_applied_lsn",
        "pgbaton_lag_bytes", "pgbaton_lag_seconds", "pgbaton_transactions_total",
        "pgbaton_changes_total", "pgbaton_bytes_total", "pgbaton_errors_total",
        "pgbaton_queue_size_bytes", "pgbaton_copy_bytes_total", "pgbaton_copy_tables",
        "pgbaton_apply_batch_size", "pgbaton_apply_batch_seconds"}) {
    EXPECT_NE(out.find(std::string("# TYPE ") + name + " "), std::string::npos) << name;
  }
  EXPECT_NE(out.find("pgbaton_transactions_total{stage=\"applied\"} 3\n"), std::string::npos);
  EXPECT_NE(out.find("pgbaton_apply_batch_size_bucket{le=\"20\"} 1\n"), std::string::npos);
  ExpectValidExposition(out);
  // Registering again is harmless and returns the same handles.
  Catalog again = RegisterCatalog(&r);
  EXPECT_EQ(again.source_lsn, c.source_lsn);
  EXPECT_EQ(again.apply_batch_size, c.apply_batch_size);
}

TEST(MetricsCatalogTest, EachDatabaseHasItsOwnSeriesAndOneProcessHasNone) {
  Registry r;
  Catalog app = RegisterCatalog(&r, "app");
  Catalog shop = RegisterCatalog(&r, "Shop \"Data\"");
  app.applied_lsn->Set(5);
  shop.applied_lsn->Set(9);
  app.transactions_total.WithLabels({kStageQueued})->Increment(2);
  shop.transactions_total.WithLabels({kStageQueued})->Increment(3);
  shop.apply_batch_size->Observe(1);
  EXPECT_NE(app.applied_lsn, shop.applied_lsn);
  std::string out = r.Render();
  EXPECT_NE(out.find("pgbaton_applied_lsn{database=\"app\"} 5\n"), std::string::npos) << out;
  EXPECT_NE(out.find("pgbaton_applied_lsn{database=\"Shop \\\"Data\\\"\"} 9\n"), std::string::npos)
      << out;
  EXPECT_NE(out.find("pgbaton_transactions_total{database=\"app\",stage=\"queued\"} 2\n"),
            std::string::npos)
      << out;
  EXPECT_NE(
      out.find("pgbaton_apply_batch_size_bucket{database=\"Shop \\\"Data\\\"\",le=\"1\"} 1\n"),
      std::string::npos)
      << out;
  // No series without a database: a cluster process has no unlabelled pipeline.
  EXPECT_EQ(out.find("\npgbaton_applied_lsn "), std::string::npos) << out;
  ExpectValidExposition(out);
  // The same database again: the same series.
  EXPECT_EQ(RegisterCatalog(&r, "app").applied_lsn, app.applied_lsn);
}

TEST(MetricsCatalogTest, DefaultRegistryHoldsTheCatalog) {
  const Catalog& c = CatalogMetrics();
  c.lag_bytes->Set(17);
  EXPECT_NE(Registry::Default().Render().find("pgbaton_lag_bytes 17\n"), std::string::npos);
  EXPECT_EQ(&CatalogFor(""), &c);
  CatalogFor("billing").lag_bytes->Set(4);
  EXPECT_NE(Registry::Default().Render().find("pgbaton_lag_bytes{database=\"billing\"} 4\n"),
            std::string::npos);
  EXPECT_EQ(CatalogFor("billing").lag_bytes, CatalogFor("billing").lag_bytes);
}

TEST(MetricsTest, ExponentialBuckets) {
  EXPECT_EQ(ExponentialBuckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
}

}  // namespace
}  // namespace pgbaton::metrics

// Metrics registry: counters, gauges and histograms (optionally with labels) that the pipeline
// updates on its hot path and an HTTP endpoint renders in the Prometheus text exposition format.
// Updating a metric is one relaxed atomic operation; looking up a labelled child takes a mutex, so
// hot loops look a child up once and keep the pointer (pointers stay valid for the registry's
// life). The product's metric names live in common/metrics_catalog.h.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace pgbaton::metrics {

// A monotonically increasing integer (events, bytes). Thread-safe, lock-free.
class Counter {
 public:
  void Increment(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down (positions, sizes, lag). Thread-safe, lock-free.
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted into fixed buckets (upper bounds, ascending; +Inf is implicit), plus their
// sum and count. Thread-safe, lock-free; a render concurrent with Observe may see the sum one
// observation ahead of or behind the buckets, never buckets that disagree with the count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double v);

  const std::vector<double>& upper_bounds() const { return bounds_; }
  // Cumulative counts per bound, the last one being +Inf (== Count()).
  std::vector<uint64_t> CumulativeCounts() const;
  double Sum() const { return sum_.load(std::memory_order_relaxed); }
  uint64_t Count() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1 (the +Inf bucket)
  std::atomic<double> sum_{0};
};

// Bucket bounds: `count` bounds start, start*factor, start*factor^2, ...
std::vector<double> ExponentialBuckets(double start, double factor, int count);

enum class MetricType { kCounter, kGauge, kHistogram };

// All children of one metric name, one per combination of label values. WithLabels returns the
// child for `values` (given in the order of the family's label names), creating it on first use;
// a wrong number of values is a programming error: it is logged once and a detached child (never
// rendered) is returned, so callers need no error path. Thread-safe.
template <typename T>
class Family {
 public:
  T* WithLabels(std::initializer_list<std::string_view> values);
  T* WithLabels(const std::vector<std::string>& values);

 private:
  friend class Registry;
  Family(std::string name, std::vector<std::string> label_names, std::vector<double> bounds)
      : name_(std::move(name)), label_names_(std::move(label_names)), bounds_(std::move(bounds)) {}
  T* Get(std::vector<std::string> values);

  std::string name_;
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;  // histograms only
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_;
  std::unique_ptr<T> detached_;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

// A set of metric families and their text rendering. Registration is get-or-create: adding a name
// again with the same type and labels returns the existing metric; with a different type or labels
// it is a programming error, logged once, and a detached metric is returned. Names must match
// [a-zA-Z_:][a-zA-Z0-9_:]* and label names [a-zA-Z_][a-zA-Z0-9_]* (checked the same way).
// Thread-safe.
class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // The process-wide registry the endpoint serves.
  static Registry& Default();

  Counter* AddCounter(std::string_view name, std::string_view help);
  Gauge* AddGauge(std::string_view name, std::string_view help);
  Histogram* AddHistogram(std::string_view name, std::string_view help,
                          std::vector<double> upper_bounds);
  CounterFamily* AddCounterFamily(std::string_view name, std::string_view help,
                                  std::vector<std::string> label_names);
  GaugeFamily* AddGaugeFamily(std::string_view name, std::string_view help,
                              std::vector<std::string> label_names);
  HistogramFamily* AddHistogramFamily(std::string_view name, std::string_view help,
                                      std::vector<std::string> label_names,
                                      std::vector<double> upper_bounds);

  // Every family, sorted by name, children sorted by label values, in the Prometheus text format
  // version 0.0.4 (content type "text/plain; version=0.0.4; charset=utf-8").
  std::string Render() const;

 private:
  struct Entry;
  Entry* FindOrAdd(std::string_view name, std::string_view help, MetricType type,
                   const std::vector<std::string>& label_names, const std::vector<double>& bounds);

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Entry>, std::less<>> entries_;
  std::vector<std::unique_ptr<Entry>> detached_;  // conflicting registrations, never rendered
};

// Text-format helpers, exposed for tests: a label value with \, " and newline escaped; a HELP
// text with \ and newline escaped; a sample value ("+Inf", "-Inf", "NaN", or the shortest
// round-trip decimal).
std::string EscapeLabelValue(std::string_view v);
std::string EscapeHelp(std::string_view v);
std::string FormatValue(double v);

}  // namespace pgbaton::metrics

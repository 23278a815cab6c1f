#include "common/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/log.h"

namespace pgbaton::metrics {

namespace {

bool ValidName(std::string_view name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (allow_colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  // Label names starting with "__" are reserved by Prometheus.
  return allow_colon || name.substr(0, 2) != "__";
}

std::vector<double> SortedBounds(std::vector<double> bounds) {
  std::sort(bounds.begin(), bounds.end());
  bounds.erase(std::unique(bounds.begin(), bounds.end()), bounds.end());
  // +Inf is implicit; NaN is meaningless as a bound.
  bounds.erase(std::remove_if(bounds.begin(), bounds.end(),
                              [](double b) { return std::isnan(b) || std::isinf(b); }),
               bounds.end());
  return bounds;
}

template <typename T>
std::unique_ptr<T> MakeChild(const std::vector<double>& bounds) {
  if constexpr (std::is_same_v<T, Histogram>) {
    return std::make_unique<Histogram>(bounds);
  } else {
    (void)bounds;
    return std::make_unique<T>();
  }
}

std::string_view TypeName(MetricType t) {
  switch (t) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// `{a="x",b="y"}` (or "" without labels); `extra` is appended last (the histogram's le). A label
// whose value is empty is left out: to Prometheus it is the same series (a single-database
// process renders without the database label).
std::string LabelText(const std::vector<std::string>& names, const std::vector<std::string>& values,
                      std::string_view extra_name = {}, std::string_view extra_value = {}) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (values[i].empty()) continue;
    out += out.empty() ? '{' : ',';
    out += names[i];
    out += "=\"";
    out += EscapeLabelValue(values[i]);
    out += '"';
  }
  if (!extra_name.empty()) {
    out += out.empty() ? '{' : ',';
    out += fmt::format("{}=\"{}\"", extra_name, extra_value);
  }
  if (out.empty()) return "";
  out += '}';
  return out;
}

}  // namespace

// ---- Histogram

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(SortedBounds(std::move(upper_bounds))),
      buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double v) {
  // Buckets are "less than or equal": lower_bound finds the first bound >= v.
  size_t i =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  if (std::isnan(v)) i = bounds_.size();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::CumulativeCounts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
    out[i] = total;
  }
  return out;
}

uint64_t Histogram::Count() const { return CumulativeCounts().back(); }

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  std::vector<double> out;
  double v = start;
  for (int i = 0; i < count; ++i) {
    out.push_back(v);
    v *= factor;
  }
  return out;
}

// ---- Family

template <typename T>
T* Family<T>::WithLabels(std::initializer_list<std::string_view> values) {
  std::vector<std::string> v;
  v.reserve(values.size());
  for (auto s : values) v.emplace_back(s);
  return Get(std::move(v));
}

template <typename T>
T* Family<T>::WithLabels(const std::vector<std::string>& values) {
  return Get(values);
}

template <typename T>
T* Family<T>::Get(std::vector<std::string> values) {
  std::lock_guard<std::mutex> lock(mu_);
  if (values.size() != label_names_.size()) {
    if (!detached_) {
      LogError(fmt::format("metric {}: {} label values given for {} labels (a bug in pgbaton)",
                           name_, values.size(), label_names_.size()));
      detached_ = MakeChild<T>(bounds_);
    }
    return detached_.get();
  }
  auto it = children_.find(values);
  if (it == children_.end()) {
    it = children_.emplace(std::move(values), MakeChild<T>(bounds_)).first;
  }
  return it->second.get();
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// ---- Registry

struct Registry::Entry {
  std::string name;
  std::string help;
  MetricType type;
  std::vector<std::string> label_names;
  std::vector<double> bounds;
  std::unique_ptr<CounterFamily> counters;
  std::unique_ptr<GaugeFamily> gauges;
  std::unique_ptr<HistogramFamily> histograms;
};

Registry::Registry() = default;
Registry::~Registry() = default;

Registry& Registry::Default() {
  static Registry* registry = new Registry();  // never destroyed: metrics outlive static dtors
  return *registry;
}

Registry::Entry* Registry::FindOrAdd(std::string_view name, std::string_view help, MetricType type,
                                     const std::vector<std::string>& label_names,
                                     const std::vector<double>& bounds) {
  auto make = [&]() {
    auto e = std::make_unique<Entry>();
    e->name = std::string(name);
    e->help = std::string(help);
    e->type = type;
    e->label_names = label_names;
    e->bounds = SortedBounds(bounds);
    switch (type) {
      case MetricType::kCounter:
        e->counters.reset(new CounterFamily(e->name, label_names, {}));
        break;
      case MetricType::kGauge:
        e->gauges.reset(new GaugeFamily(e->name, label_names, {}));
        break;
      case MetricType::kHistogram:
        e->histograms.reset(new HistogramFamily(e->name, label_names, e->bounds));
        break;
    }
    return e;
  };
  std::lock_guard<std::mutex> lock(mu_);
  bool valid = ValidName(name, true);
  for (const auto& l : label_names) valid = valid && ValidName(l, false) && l != "le";
  if (!valid) {
    LogError(fmt::format("metric {}: invalid metric or label name (a bug in pgbaton)", name));
    detached_.push_back(make());
    return detached_.back().get();
  }
  auto it = entries_.find(name);
  if (it != entries_.end()) {
    Entry* e = it->second.get();
    if (e->type == type && e->label_names == label_names && e->bounds == SortedBounds(bounds)) {
      return e;
    }
    LogError(
        fmt::format("metric {}: registered again with another type or labels (a bug in "
                    "pgbaton); the second registration is not exported",
                    name));
    detached_.push_back(make());
    return detached_.back().get();
  }
  auto e = make();
  Entry* raw = e.get();
  entries_.emplace(std::string(name), std::move(e));
  return raw;
}

Counter* Registry::AddCounter(std::string_view name, std::string_view help) {
  return AddCounterFamily(name, help, {})->WithLabels({});
}
Gauge* Registry::AddGauge(std::string_view name, std::string_view help) {
  return AddGaugeFamily(name, help, {})->WithLabels({});
}
Histogram* Registry::AddHistogram(std::string_view name, std::string_view help,
                                  std::vector<double> upper_bounds) {
  return AddHistogramFamily(name, help, {}, std::move(upper_bounds))->WithLabels({});
}
CounterFamily* Registry::AddCounterFamily(std::string_view name, std::string_view help,
                                          std::vector<std::string> label_names) {
  return FindOrAdd(name, help, MetricType::kCounter, label_names, {})->counters.get();
}
GaugeFamily* Registry::AddGaugeFamily(std::string_view name, std::string_view help,
                                      std::vector<std::string> label_names) {
  return FindOrAdd(name, help, MetricType::kGauge, label_names, {})->gauges.get();
}
HistogramFamily* Registry::AddHistogramFamily(std::string_view name, std::string_view help,
                                              std::vector<std::string> label_names,
                                              std::vector<double> upper_bounds) {
  return FindOrAdd(name, help, MetricType::kHistogram, label_names, upper_bounds)->histograms.get();
}

std::string Registry::Render() const {
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, e] : entries_) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, EscapeHelp(e->help), name,
                       TypeName(e->type));
    switch (e->type) {
      case MetricType::kCounter: {
        std::lock_guard<std::mutex> l(e->counters->mu_);
        for (const auto& [values, c] : e->counters->children_) {
          out += fmt::format("{}{} {}\n", name, LabelText(e->label_names, values), c->Value());
        }
        break;
      }
      case MetricType::kGauge: {
        std::lock_guard<std::mutex> l(e->gauges->mu_);
        for (const auto& [values, g] : e->gauges->children_) {
          out += fmt::format("{}{} {}\n", name, LabelText(e->label_names, values),
                             FormatValue(g->Value()));
        }
        break;
      }
      case MetricType::kHistogram: {
        std::lock_guard<std::mutex> l(e->histograms->mu_);
        for (const auto& [values, h] : e->histograms->children_) {
          std::vector<uint64_t> counts = h->CumulativeCounts();
          const auto& bounds = h->upper_bounds();
          for (size_t i = 0; i <= bounds.size(); ++i) {
            std::string le = i < bounds.size() ? FormatValue(bounds[i]) : "+Inf";
            out += fmt::format("{}_bucket{} {}\n", name,
                               LabelText(e->label_names, values, "le", le), counts[i]);
          }
          std::string labels = LabelText(e->label_names, values);
          out += fmt::format("{}_sum{} {}\n", name, labels, FormatValue(h->Sum()));
          out += fmt::format("{}_count{} {}\n", name, labels, counts.back());
        }
        break;
      }
    }
  }
  return out;
}

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string EscapeHelp(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

}  // namespace pgbaton::metrics

// What a verb used, for its final log line: peak memory and CPU time (the benchmarks read them).
#pragma once

#include <fmt/format.h>
#include <sys/resource.h>

#include <cmath>

#include "common/log.h"

namespace pgbaton::tools {

// `fields` followed by peak_rss_kb and cpu_s (user + system, all threads, so far).
inline LogFields WithResourceUsage(LogFields fields) {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  fields.emplace_back("peak_rss_kb", ru.ru_maxrss);
  double cpu = seconds(ru.ru_utime) + seconds(ru.ru_stime);
  fields.emplace_back("cpu_s", std::round(cpu * 100) / 100);  // two decimals, a JSON number
  return fields;
}

}  // namespace pgbaton::tools

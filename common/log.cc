#include "common/log.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>

#include "common/conninfo.h"

namespace pgbaton {

namespace {

LogOptions g_options;
std::mutex g_mutex;

std::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

std::string NowIso(bool date) {
  auto now = std::chrono::system_clock::now();
  auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  std::time_t t = static_cast<std::time_t>(micros / 1000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  if (date) {
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900,
                       tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                       micros % 1000000);
  }
  return fmt::format("{:02}:{:02}:{:02}.{:03}", tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (micros / 1000) % 1000);
}

void WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return;  // nowhere left to report a logging failure
    off += static_cast<size_t>(n);
  }
}

}  // namespace

LogValue::LogValue(double n) : text_(fmt::format("{}", n)), number_(true) {}

void SetLogOptions(const LogOptions& options) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_options = options;
}

const LogOptions& GetLogOptions() { return g_options; }

bool ParseLogLevel(std::string_view text, LogLevel* out) {
  if (text == "debug")
    *out = LogLevel::kDebug;
  else if (text == "info")
    *out = LogLevel::kInfo;
  else if (text == "warning" || text == "warn")
    *out = LogLevel::kWarning;
  else if (text == "error")
    *out = LogLevel::kError;
  else
    return false;
  return true;
}

bool ParseLogFormat(std::string_view text, LogFormat* out) {
  if (text == "human" || text == "text")
    *out = LogFormat::kHuman;
  else if (text == "json")
    *out = LogFormat::kJson;
  else
    return false;
  return true;
}

void Log(LogLevel level, std::string_view message, const LogFields& fields) {
  if (level < g_options.min_level) return;
  std::string line;
  if (g_options.format == LogFormat::kJson) {
    nlohmann::json j;
    j["ts"] = NowIso(true);
    j["level"] = LevelName(level);
    j["msg"] = ScrubSecrets(message);
    for (const auto& [k, v] : fields) {
      if (v.is_number()) {
        // Parsed back from the text the human format prints, so both formats show one value.
        j[k] = nlohmann::json::parse(v.text(), nullptr, /*allow_exceptions=*/false);
        if (j[k].is_discarded()) j[k] = v.text();
      } else {
        j[k] = ScrubSecrets(v.text());
      }
    }
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  } else {
    line = fmt::format("{} {:<7} {}", NowIso(false), LevelName(level), ScrubSecrets(message));
    for (const auto& [k, v] : fields) {
      std::string value = v.is_number() ? v.text() : ScrubSecrets(v.text());
      bool quote = value.empty() || value.find(' ') != std::string::npos;
      line += quote ? fmt::format(" {}=\"{}\"", k, value) : fmt::format(" {}={}", k, value);
    }
    line += "\n";
  }
  std::lock_guard<std::mutex> lock(g_mutex);
  WriteAll(g_options.fd, line);
}

}  // namespace pgbaton

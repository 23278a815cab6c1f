// Logging: human lines on a terminal, JSON lines for machines (--log-format json). Every line
// goes through ScrubSecrets, so a password that slipped into a message is still masked.
// Thread-safe; lines from several threads never interleave.
#pragma once

#include <concepts>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgbaton {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };
enum class LogFormat { kHuman, kJson };

// A field's value: text, or a number that JSON lines emit as a JSON number (`"jobs":2`, never
// `"jobs":"2"`). Built implicitly from strings and from arithmetic types.
class LogValue {
 public:
  LogValue(std::string text) : text_(std::move(text)) {}  // NOLINT(runtime/explicit)
  LogValue(std::string_view text) : text_(text) {}        // NOLINT(runtime/explicit)
  LogValue(const char* text) : text_(text) {}             // NOLINT(runtime/explicit)
  template <std::integral T>
  requires(!std::same_as<T, bool> && !std::same_as<T, char>) LogValue(T n)
      : text_(std::to_string(n)), number_(true) {}  // NOLINT(runtime/explicit)
  LogValue(double n);                               // NOLINT(runtime/explicit)
  const std::string& text() const { return text_; }
  bool is_number() const { return number_; }

 private:
  std::string text_;
  bool number_ = false;
};

using LogFields = std::vector<std::pair<std::string, LogValue>>;

struct LogOptions {
  LogLevel min_level = LogLevel::kInfo;  // lines below this are dropped
  LogFormat format = LogFormat::kHuman;  // human: "19:26:24.123 info  message key=value"
  int fd = 2;                            // where lines go (stderr)
};

void SetLogOptions(const LogOptions& options);
const LogOptions& GetLogOptions();

// Parses "debug|info|warning|error" and "human|json"; false for anything else.
bool ParseLogLevel(std::string_view text, LogLevel* out);
bool ParseLogFormat(std::string_view text, LogFormat* out);

void Log(LogLevel level, std::string_view message, const LogFields& fields = {});
inline void LogDebug(std::string_view m, const LogFields& f = {}) { Log(LogLevel::kDebug, m, f); }
inline void LogInfo(std::string_view m, const LogFields& f = {}) { Log(LogLevel::kInfo, m, f); }
inline void LogWarning(std::string_view m, const LogFields& f = {}) {
  Log(LogLevel::kWarning, m, f);
}
inline void LogError(std::string_view m, const LogFields& f = {}) { Log(LogLevel::kError, m, f); }

}  // namespace pgbaton

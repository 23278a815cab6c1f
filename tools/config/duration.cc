#include "tools/config/duration.h"

#include <cstdint>

namespace pgbaton::tools {

std::optional<std::chrono::milliseconds> ParseDuration(const std::string& text) {
  size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(text, &pos);
  } catch (...) {
    return std::nullopt;
  }
  std::string unit = text.substr(pos);
  double ms = -1;
  if (v >= 0) {
    if (unit.empty() || unit == "s") {
      ms = v * 1000;
    } else if (unit == "ms") {
      ms = v;
    } else if (unit == "m" || unit == "min") {
      ms = v * 60000;
    }
  }
  if (ms < 0) return std::nullopt;
  return std::chrono::milliseconds(static_cast<int64_t>(ms));
}

}  // namespace pgbaton::tools

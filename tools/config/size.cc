#include "tools/config/size.h"

#include <cctype>
#include <string_view>

namespace pgbaton::tools {

std::optional<uint64_t> ParseSize(const std::string& text) {
  // Digits with an optional fraction, parsed by hand: std::stod would also take "inf", "nan",
  // hexadecimal and leading blanks.
  size_t i = 0;
  uint64_t whole = 0;
  bool digits = false;
  for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
    if (whole > (UINT64_MAX - 9) / 10) return std::nullopt;
    whole = whole * 10 + static_cast<uint64_t>(text[i] - '0');
    digits = true;
  }
  double fraction = 0;
  if (i < text.size() && text[i] == '.') {
    double scale = 0.1;
    for (++i; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
      fraction += scale * (text[i] - '0');
      scale /= 10;
      digits = true;
    }
  }
  if (!digits) return std::nullopt;
  while (i < text.size() && text[i] == ' ') ++i;  // "50 MB" reads as "50MB"
  std::string unit;
  for (; i < text.size(); ++i)
    unit += static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
  int shift = -1;
  if (unit.empty() || unit == "b") {
    shift = 0;
  } else if (unit == "k" || unit == "kb" || unit == "kib") {
    shift = 10;
  } else if (unit == "m" || unit == "mb" || unit == "mib") {
    shift = 20;
  } else if (unit == "g" || unit == "gb" || unit == "gib") {
    shift = 30;
  } else if (unit == "t" || unit == "tb" || unit == "tib") {
    shift = 40;
  }
  if (shift < 0) return std::nullopt;
  const uint64_t scale = uint64_t{1} << shift;
  if (whole > (uint64_t{1} << 63) / scale) return std::nullopt;
  const uint64_t bytes =
      whole * scale + static_cast<uint64_t>(fraction * static_cast<double>(scale));
  if (bytes > (uint64_t{1} << 63)) return std::nullopt;
  return bytes;
}

}  // namespace pgbaton::tools

// Durations given on the command line (--max-lag, --timeout, --interval): "1s", "500ms", "2m"
// ("min" too), or a bare number of seconds; fractions allowed ("1.5s").
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace pgbaton::tools {

// The duration `text` spells, rounded down to a millisecond; none when it is not a duration or
// is negative. The verb says what it expects in its own error.
std::optional<std::chrono::milliseconds> ParseDuration(const std::string& text);

}  // namespace pgbaton::tools

// Sizes given on the command line (--max-copy-rate): a number of bytes with an optional unit,
// "50MB", "1.5GiB", "512kB", "100" (bytes). As in postgresql.conf, kB, MB, GB and TB are powers
// of 1024; KiB, MiB, GiB and TiB say the same unambiguously. Units are case-insensitive.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace pgbaton::tools {

// The number of bytes `text` spells, rounded down; none when it is not a size (no digits, an
// unknown unit, a negative number, more than 2^63 bytes). The verb says what it expects in its
// own error.
std::optional<uint64_t> ParseSize(const std::string& text);

}  // namespace pgbaton::tools

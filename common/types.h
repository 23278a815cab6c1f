// Vocabulary types of the domain: LSNs, transaction ids, relation ids. Strong types so that a
// position is never confused with a count or an OID.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace pgbaton {

// A WAL position. Prints as PostgreSQL does: "16/B374D848" (upper hex, high/low 32 bits).
class Lsn {
 public:
  constexpr Lsn() = default;
  constexpr explicit Lsn(uint64_t value) : value_(value) {}

  // Parses "16/B374D848" (case-insensitive hex, as pg_lsn accepts). Errors: kUsage naming the text.
  static Result<Lsn> Parse(std::string_view text);

  constexpr uint64_t value() const { return value_; }
  constexpr bool IsValid() const { return value_ != 0; }
  std::string ToString() const;

  // Bytes between two positions (0 if `earlier` is not before this one).
  constexpr uint64_t BytesSince(Lsn earlier) const {
    return value_ > earlier.value_ ? value_ - earlier.value_ : 0;
  }

  constexpr auto operator<=>(const Lsn&) const = default;

  static constexpr Lsn Invalid() { return Lsn(); }
  static constexpr Lsn Max() { return Lsn(~uint64_t{0}); }

 private:
  uint64_t value_ = 0;
};

// A source transaction id (32 bits, as pgoutput sends it).
struct Xid {
  uint32_t value = 0;
  constexpr auto operator<=>(const Xid&) const = default;
  std::string ToString() const { return std::to_string(value); }
};

// A relation's OID on the source. Only an identifier inside one stream: the target resolves
// relations and types by name, never by source OID.
struct RelationId {
  uint32_t value = 0;
  constexpr auto operator<=>(const RelationId&) const = default;
  std::string ToString() const { return std::to_string(value); }
};

// Microseconds since the PostgreSQL epoch (2000-01-01 00:00:00 UTC), as the protocol sends times.
struct PgTimestamp {
  int64_t micros = 0;
  constexpr auto operator<=>(const PgTimestamp&) const = default;
  // Microseconds since the Unix epoch.
  constexpr int64_t UnixMicros() const { return micros + kUnixToPgEpochMicros; }
  static constexpr PgTimestamp FromUnixMicros(int64_t unix_micros) {
    return PgTimestamp{unix_micros - kUnixToPgEpochMicros};
  }
  static PgTimestamp Now();
  // ISO 8601 in UTC with microseconds, e.g. "2026-11-23T19:26:24.123456Z".
  std::string ToString() const;

  static constexpr int64_t kUnixToPgEpochMicros = 946684800LL * 1000000LL;
};

}  // namespace pgbaton

template <>
struct std::hash<pgbaton::RelationId> {
  size_t operator()(pgbaton::RelationId id) const noexcept {
    return std::hash<uint32_t>()(id.value);
  }
};
template <>
struct std::hash<pgbaton::Xid> {
  size_t operator()(pgbaton::Xid id) const noexcept { return std::hash<uint32_t>()(id.value); }
};

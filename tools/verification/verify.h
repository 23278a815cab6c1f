// `pgbaton verify`: compares row counts and checksums of every table between source and target,
// each side read in one REPEATABLE READ snapshot. Big tables are split into primary-key ranges
// computed on the source so that a difference is pinned to a range (and, within it, to keys).
// Meaningful only when both sides stand still at the same point: writes fenced during cutover,
// or the target paused at a known LSN with the source read at that point
// (docs/reference/commands.md).
#pragma once

#include <atomic>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/pg.h"
#include "common/status.h"
#include "common/types.h"

namespace pgbaton::tools::verify {

struct VerifyOptions {
  std::vector<std::string> tables;  // "schema.table" (or "table" = public.table); empty: all
  int64_t chunk_rows = 100000;      // tables with more rows are compared per key range
  int max_keys_reported = 10;       // differing keys listed per differing range
  // Polled between ranges; when it turns true verify stops with kInterrupted (null: never).
  const std::atomic<bool>* stop = nullptr;
  // Both connections are already in the snapshots to compare (REPEATABLE READ, the session set
  // up by PrepareSession): `verify --at-lsn` opens them at one source LSN (at_lsn.h).
  bool snapshots_open = false;
};

// One compared range of a table (the whole table when it was not split).
struct RangeResult {
  int64_t first_row = 0;  // ordinal of the range's first row in the source's key order
  int64_t last_row = 0;   // ordinal of its last row (first_row - 1 when empty)
  std::string first_key;  // "aid 1001" on the source ("" for a whole table)
  std::string last_key;   // "aid 2000"
  int64_t source_rows = 0;
  int64_t target_rows = 0;
  std::string source_md5;  // checksum of the range's rows on each side
  std::string target_md5;
  std::vector<std::string> differing_keys;  // "aid=1500 (changed)", "aid=7 (missing on target)"
  bool match() const { return source_rows == target_rows && source_md5 == target_md5; }
};

struct TableResult {
  std::string name;              // "public.accounts" (quoted where needed)
  std::vector<std::string> key;  // key columns ([] when the table has no usable key)
  int64_t source_rows = 0;
  int64_t target_rows = 0;
  int ranges = 0;  // ranges compared
  std::vector<RangeResult> differing;
  bool match() const { return differing.empty(); }
};

struct VerifyReport {
  std::vector<TableResult> tables;
  // --at-lsn: where both sides were read, and how long the applier held for it.
  Lsn source_lsn;
  Lsn target_applied_lsn;
  double applier_paused_ms = 0;
  std::string at;  // "source LSN 0/1A2B3C4 (target applied through ..., ...)" for the text report
  int differing_tables() const;
};

// The session settings that make row text identical on every major (time zone, date, float and
// bytea output); a snapshot opened by the caller must be opened after them.
Status PrepareSession(PgConn* conn);

// Compares the tables. Errors (not differences): kInterrupted when `options.stop` turned true,
// kNotFound for a table missing on either side or
// a column missing on the target (naming them), kUsage for a malformed --tables entry, and the
// usual connection/server errors. Not thread-safe (uses both connections).
Result<VerifyReport> VerifyTables(PgConn* source, PgConn* target, const VerifyOptions& options);

// "table public.accounts: rows 1000..1999 (aid 1001 to 2000) differ: source 1000 rows md5 ab..,
// target 999 rows md5 cd.." lines, then a summary line.
std::string FormatReport(const VerifyReport& report);
std::string FormatReportJson(const VerifyReport& report);
// The report as a JSON object (what FormatReportJson prints).
nlohmann::json ReportJson(const VerifyReport& report);
// The same on one line, with "phase": "verify" (for migrate's JSON lines).
std::string FormatReportJsonLine(const VerifyReport& report);

}  // namespace pgbaton::tools::verify

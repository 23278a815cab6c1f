// Editing PgBouncer's configuration for the cutover flip: find a database's entry in the
// [databases] section and point its host/port/dbname at another cluster, keeping every other
// option of the entry (user, pool_size, ...) and every other line of the file byte for byte.
// Pure string functions: no I/O, so they are unit-tested without a PgBouncer.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace pgbaton::tools::cutover {

// The key=value pairs of a PgBouncer database entry ("host=a port=5432 dbname=app"), in order.
// Values may be single-quoted ('a b', with '' for a quote). Errors: kUsage for an unterminated
// quote.
Result<std::vector<std::pair<std::string, std::string>>> ParseBouncerEntry(const std::string& s);
std::string FormatBouncerEntry(const std::vector<std::pair<std::string, std::string>>& kv);

// The entry of database `db` in `ini` ([databases] section), or kNotFound naming it.
Result<std::string> FindBouncerEntry(const std::string& ini, const std::string& db);

// Returns `ini` with the entry of `db` changed so that each key of `set` has its value (keys
// missing from the entry are appended). Errors: kNotFound when `db` has no entry (a "*" fallback
// entry is not rewritten: the database must be listed by name).
Result<std::string> RewriteBouncerEntry(const std::string& ini, const std::string& db,
                                        const std::map<std::string, std::string>& set);

}  // namespace pgbaton::tools::cutover

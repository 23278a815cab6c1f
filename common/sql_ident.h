// SQL identifiers: the one quoting rule pgbaton uses for every name it puts in SQL (the applier's
// statements, copy, verify, cutover, the replication commands). Every identifier is
// double-quoted, `"` doubled, as libpq's PQescapeIdentifier does: no list of keywords is kept,
// so a name is right whatever PostgreSQL reserves now or later, and no connection is needed (in
// every client encoding PostgreSQL accepts, `"` is never part of a multibyte character). Names
// shown to people are quoted the server's way, only where needed (pg_catalog.quote_ident, e.g.
// catalog::UserTable::display). All functions are pure and thread-safe.
#pragma once

#include <compare>
#include <string>
#include <string_view>

#include "common/status.h"

namespace pgbaton {

// A name in a schema (a table, a type, a sequence), the two parts kept apart so that a dot, a
// quote or a space inside either part never changes where one ends.
struct QualifiedName {
  std::string schema;
  std::string name;
  bool operator==(const QualifiedName&) const = default;
  auto operator<=>(const QualifiedName&) const = default;
};

// "name" with every `"` doubled: `a"b` -> `"a""b"`, `user` -> `"user"`.
std::string QuoteIdent(std::string_view ident);
// "schema"."name", each part quoted by QuoteIdent.
std::string QuoteQualified(std::string_view schema, std::string_view name);
inline std::string QuoteQualified(const QualifiedName& n) {
  return QuoteQualified(n.schema, n.name);
}

// Reads a name as an operator types it on the command line: `schema.table` or `table`, either
// part double-quoted to hold dots, spaces or capitals (`"Shop Data"."a.b"`, `""` for a quote).
// Unquoted parts are taken as written (no case folding). A bare name is in `default_schema`.
// Errors: kUsage naming `what` (the flag) and the text.
Result<QualifiedName> ParseQualifiedName(std::string_view text, std::string_view default_schema,
                                         std::string_view what);

}  // namespace pgbaton

// What the initial copy reads from the source catalog on top of the shared catalogue
// (catalog/source_catalog.h): the tables to copy (leaf relations that hold rows, with their
// columns and whether their types have one binary form), extensions, and
// the --include/--exclude filters. Every query runs on a connection the caller has put inside
// the copy's snapshot, so the list is exactly what that snapshot holds.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/pg.h"
#include "common/sql_ident.h"
#include "common/status.h"

namespace pgbaton::tools::copy {

struct TableInfo {
  uint32_t oid = 0;    // on the source
  std::string schema;  // raw names, unquoted
  std::string name;
  std::string root_schema;  // the partition root (the table itself when not a partition)
  std::string root_name;
  std::vector<std::string> columns;  // raw names of copied columns (no generated ones), in order
  uint64_t bytes = 0;                // heap size on disk (an estimate of what COPY moves)
  bool has_identity = false;         // catalog::UserTable::HasIdentity
  std::string int_key;  // a single-column integer primary key, for key ranges on 12/13 ("" if none)
  // Every column's type has the same binary form on any major: a built-in type (or an array of
  // one) with binary send and receive functions, an enum, or a domain over one of those. Arrays
  // and composites of user types carry the source's type OIDs in binary and are not safe; nor
  // are the reg* types (regclass, regtype, ...), whose binary form is the object's OID on the
  // source where their text form is its name.
  bool binary_safe = false;
  // When not binary_safe: the first column that is not, and its type ("c app.pair").
  std::string text_reason;

  // "schema.name" unquoted: the key used in the queue's metadata and in filters.
  std::string Key() const { return schema + "." + name; }
  std::string RootKey() const { return root_schema + "." + root_name; }
  QualifiedName Root() const { return {root_schema, root_name}; }
};

// Glob filters on "schema.table" (`*`, `?`, `[...]`). A pattern without a dot matches the table
// name in any schema. A table is selected when it matches some --include (or none are given) and
// no --exclude. Partitions are selected by their root's name.
class TableFilter {
 public:
  TableFilter(std::vector<std::string> include, std::vector<std::string> exclude)
      : include_(std::move(include)), exclude_(std::move(exclude)) {}
  bool Selects(const std::string& schema, const std::string& table) const;
  bool filtering() const { return !include_.empty() || !exclude_.empty(); }

 private:
  std::vector<std::string> include_;
  std::vector<std::string> exclude_;
};

struct TableList {
  std::vector<TableInfo> selected;  // biggest first
  std::vector<TableInfo> excluded;  // left out by the filter (pg_dump skips them too)
};

// Every user table that holds rows (catalog::UserTable::Streamed, not an extension's), biggest
// first, split by `filter`. Errors: the connection's (kConnection, kPermission, ...).
Result<TableList> ListTables(PgConn& conn, const TableFilter& filter);

// Extensions installed on the source (except plpgsql) that the target cannot create.
// Errors: kNotFound naming the first missing one, with a hint to install it on the target.
Status CheckExtensions(PgConn& source, PgConn& target);

}  // namespace pgbaton::tools::copy

// The schema half of the initial copy: pg_dump's pre-data section (types, tables, sequences,
// functions) restored on the target before the data, and its post-data section (indexes,
// constraints, triggers) split into entries that are built after the data, in parallel waves.
#pragma once

#include <string>
#include <vector>

#include "common/sql_ident.h"
#include "common/status.h"
#include "tools/initial_copy/catalog.h"
#include "tools/initial_copy/copy_options.h"

namespace pgbaton::tools::copy {

// The major version of the pg_dump at `path` (e.g. 15). Errors: kNotFound when it cannot run.
Result<int> PgDumpMajor(const std::string& path);

// Runs pg_dump --schema-only --section=`section` on the source at `snapshot` and returns the
// SQL. Tables in `excluded` are left out. Errors: kVersion (pg_dump older than the source),
// kSnapshotLost (the snapshot is gone), kServerError with pg_dump's message.
// `sql` (pg_dump output) without the entries of pgbaton's DDL capture triggers (event triggers
// are not in a schema, so --exclude-schema=pgbaton keeps them). Pure.
std::string StripDdlCapture(const std::string& sql);

Result<std::string> DumpSection(const CopyOptions& options, const std::string& snapshot,
                                const std::string& section, const std::vector<TableInfo>& excluded);

// Restores `sql` on the target with psql in one transaction (all or nothing).
// Errors: kServerError with psql's first error and a hint.
Status RestoreInOneTransaction(const CopyOptions& options, const std::string& sql);

// One TOC entry of a post-data dump: "-- Name: ...; Type: INDEX; Schema: ..." and its SQL.
struct PostDataEntry {
  std::string type;     // "INDEX", "CONSTRAINT", "FK CONSTRAINT", "INDEX ATTACH", "TRIGGER", ...
  std::string name;     // as pg_dump prints it
  QualifiedName table;  // the table it is on, when known (both parts empty otherwise)
  std::string sql;
  // The wave it runs in: 0 indexes and unique/primary constraints (parallel), 1 index attaches
  // (in order), 2 everything else (in order).
  int wave = 2;
};

struct PostData {
  std::string preamble;  // SET statements to run on every session first
  std::vector<PostDataEntry> entries;
};

// Splits pg_dump's plain post-data output into its TOC entries.
PostData SplitPostData(const std::string& sql);

}  // namespace pgbaton::tools::copy

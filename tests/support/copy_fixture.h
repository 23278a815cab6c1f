// Helpers for the copy tests: a source schema with many types, a partitioned table, sequences
// and a table bigger than one chunk; row-for-row digests; running `pgbaton copy`; reading the
// queue's metadata.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "tests/support/pg_server.h"
#include "tests/support/pg_test.h"
#include "tests/support/process.h"

namespace pgbaton::testing::copy {

// Creates the test schema and rows in `db` on `server` (the database is created first).
void CreateSourceSchema(PgServer& server, const std::string& db);

// Every user table's "schema.table" on `server`/`db`, sorted.
std::vector<std::string> UserTables(PgServer& server, const std::string& db);

// "rows:md5" of the table's rows as text, ordered: equal digests mean equal contents.
std::string TableDigest(PgServer& server, const std::string& db, const std::string& table);

// Expects every user table of the source to be on the target with the same rows, the same
// sequence values, index names and constraints.
void ExpectSameDatabase(PgServer& source, const std::string& source_db, PgServer& target,
                        const std::string& target_db);

// A fresh queue directory for one test, removed with its sibling files ("<dir>.stream.log" and
// the like) when this goes out of scope, also when an assertion ends the test early. Converts to
// the path where one is expected. Not copyable.
class QueueDir {
 public:
  QueueDir() : path_(MakeTempDir("copy-queue")) {}
  ~QueueDir();
  QueueDir(const QueueDir&) = delete;
  QueueDir& operator=(const QueueDir&) = delete;
  const std::string& path() const { return path_; }
  operator const std::string&() const { return path_; }  // NOLINT(google-explicit-constructor)

 private:
  std::string path_;
};

// Runs `pgbaton --name NAME copy --source .. --target .. --queue-dir .. EXTRA...`.
CommandResult RunCopy(PgServer& source, const std::string& source_db, PgServer& target,
                      const std::string& target_db, const std::string& queue_dir,
                      const std::string& name, const std::vector<std::string>& extra);

// After a copy of database "app" into `queue_dir` (migration "pgbaton"): commits a sentinel row
// (table "sentinel", id 1) on the source, runs `pgbaton stream` until the slot confirmed past
// every transaction before it, then `pgbaton apply --stop-at` the sentinel's end onto `target`.
// Records a fatal failure when the stream does not get there (60 s) or apply fails: call it in
// ASSERT_NO_FATAL_FAILURE.
void StreamAndApplyToSentinel(PgServer& source, PgServer& target, const std::string& queue_dir);

// The queue's metadata under `prefix` (the queue must not be open elsewhere).
std::map<std::string, std::string> QueueMeta(const std::string& queue_dir, const std::string& name,
                                             const std::string& prefix);

}  // namespace pgbaton::testing::copy

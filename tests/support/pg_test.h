// GoogleTest helpers over PgServer that many suites need: start a server of a major or fail the
// test, wait until a replication slot exists, copy a database with pg_dump | psql, stop a command
// at the source's current position, compare tables row for row by a digest of their ordered rows,
// and write to the source in the background like an application. Build on these rather than on
// local copies in each test file.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/pg.h"
#include "common/status.h"
#include "tests/support/pg_server.h"
#include "tests/support/process.h"

namespace pgbaton::testing {

// Starts a fresh server of `major` (the other fields from `options`). On failure records a test
// failure with the reason (e.g. the major is not installed) and returns nullptr: callers stop
// with ASSERT_TRUE(server).
std::unique_ptr<PgServer> StartServer(int major, PgServerOptions options = {});

// A source of `source_major` whose new database "app" holds `schema` (run there), and a target
// of `target_major` with the empty database "app", in `source` and `target`. Records a fatal
// failure when a server does not start or a statement fails: call it in ASSERT_NO_FATAL_FAILURE.
void StartSourceAndTarget(const std::string& schema, std::unique_ptr<PgServer>* source,
                          std::unique_ptr<PgServer>* target, int source_major = 15,
                          int target_major = 17);

// Waits until the replication slot `slot` exists on `server` (any slot when `slot` is empty),
// polling every 100 ms for up to `timeout`; a failure names the slot and the server:
// ASSERT_TRUE(WaitForSlot(*source)) << log.
::testing::AssertionResult WaitForSlot(
    const PgServer& server, const std::string& slot = "",
    std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Polls `done` every 100 ms for up to `seconds`: true as soon as it holds.
bool WaitFor(const std::function<bool()>& done, int seconds);

// The last line of `text` that holds `needle` ("" when none).
std::string LastLineWith(const std::string& text, const std::string& needle);

// pg_dump (--schema-only when `schema_only`) of database `db` on `source`, restored with psql
// into the existing database `db` on `target`, as a DBA would copy it by hand. `process` carries
// the environment (e.g. a password file). Errors: kInternal with the commands' output.
Status DumpAndRestore(const PgServer& source, const PgServer& target, const std::string& db,
                      bool schema_only, const ProcessOptions& process = {});

// `args` (a pgbaton run or apply command line) with --stop-at the current WAL position of
// `source`; a transactional message committed right after it lets the command see a commit past
// that position at once. Records a test failure when the source cannot be queried.
std::vector<std::string> StopAtNow(std::vector<std::string> args, const PgServer& source,
                                   const std::string& db = "app");

// "rows:md5" of `table`'s rows as text, ordered by that text: equal digests mean equal contents.
// `table` goes into the SQL as written (quote a name that needs it). Errors: the query's.
Result<std::string> TableDigest(PgConn& conn, const std::string& table);
// The same on database `db` of `server`; on failure the error's text, which never equals a
// digest, so a comparison of two digests fails and shows why.
std::string TableDigest(const PgServer& server, const std::string& db, const std::string& table);

// "table:rows:md5;" for each of `tables`, in the order given. Errors: the first query's.
Result<std::string> TablesDigest(PgConn& conn, const std::vector<std::string>& tables);
// The same on database `db` of `server`, with the error's text in place of a failed digest.
std::string TablesDigest(const PgServer& server, const std::string& db,
                         const std::vector<std::string>& tables);

// An application writing to the source during a migration: small transactions on one connection
// in a thread of its own, each the SQL `next` returns (given a generator seeded with `seed` and
// the count committed so far), until Stop(). The first error ends the writes and is kept. Stops in
// the destructor, also when an assertion ends the test early. Not copyable.
class BackgroundWriter {
 public:
  using NextSql = std::function<std::string(std::mt19937& rng, int committed)>;
  BackgroundWriter(std::string conninfo, uint32_t seed, NextSql next);
  ~BackgroundWriter() { Stop(); }
  BackgroundWriter(const BackgroundWriter&) = delete;
  BackgroundWriter& operator=(const BackgroundWriter&) = delete;

  // Stops and joins the thread (no-op the second time).
  void Stop();
  // Transactions committed so far.
  int committed() const { return committed_.load(); }
  // The first error ("" when none).
  std::string error();

 private:
  void Loop(const std::string& conninfo, uint32_t seed, const NextSql& next);
  std::atomic<bool> stop_{false};
  std::atomic<int> committed_{0};
  std::mutex mu_;
  std::string error_;
  std::thread thread_;
};

}  // namespace pgbaton::testing

#include "tests/support/pg_test.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <thread>

#include "common/error_code.h"

namespace pgbaton::testing {

std::unique_ptr<PgServer> StartServer(int major, PgServerOptions options) {
  options.major = major;
  auto server = PgServer::Start(options);
  if (!server.ok()) {
    ADD_FAILURE() << "PostgreSQL " << major << ": " << server.status().ToString();
    return nullptr;
  }
  return std::move(server).value();
}

void StartSourceAndTarget(const std::string& schema, std::unique_ptr<PgServer>* source,
                          std::unique_ptr<PgServer>* target, int source_major, int target_major) {
  *source = StartServer(source_major);
  *target = StartServer(target_major);
  ASSERT_TRUE(*source && *target);
  ASSERT_TRUE((*source)->Exec("CREATE DATABASE app").ok());
  ASSERT_TRUE((*source)->Exec(schema, "app").ok());
  ASSERT_TRUE((*target)->Exec("CREATE DATABASE app").ok());
}

::testing::AssertionResult WaitForSlot(const PgServer& server, const std::string& slot,
                                       std::chrono::milliseconds timeout) {
  const std::string sql =
      slot.empty() ? "select count(*) > 0 from pg_replication_slots"
                   : fmt::format(
                         "select count(*) > 0 from pg_replication_slots where slot_name = "
                         "'{}'",
                         slot);
  const auto until = std::chrono::steady_clock::now() + timeout;
  do {
    auto found = server.Query(sql);
    if (found.ok() && *found == "t") return ::testing::AssertionSuccess();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (std::chrono::steady_clock::now() < until);
  return ::testing::AssertionFailure()
         << "no slot " << (slot.empty() ? "" : "\"" + slot + "\" ") << "on the server at port "
         << server.port() << " after " << timeout.count() << " ms";
}

Status DumpAndRestore(const PgServer& source, const PgServer& target, const std::string& db,
                      bool schema_only, const ProcessOptions& process) {
  CommandResult r = RunCommand(
      {"bash", "-c",
       fmt::format("set -o pipefail; pg_dump {}'{}' | psql -q -v ON_ERROR_STOP=1 '{}'",
                   schema_only ? "--schema-only " : "", source.Conninfo(db), target.Conninfo(db))},
      process);
  if (r.exit_code != 0) {
    return Status::Error(ErrorCode::kInternal,
                         "pg_dump | psql failed: " + r.output.substr(0, 2000));
  }
  return Status::Ok();
}

std::vector<std::string> StopAtNow(std::vector<std::string> args, const PgServer& source,
                                   const std::string& db) {
  auto end = source.Query("select pg_current_wal_lsn()", db);
  EXPECT_TRUE(end.ok()) << end.status().ToString();
  Status message = source.Exec("select pg_logical_emit_message(true, 'pgbaton-test', 'end')", db);
  EXPECT_TRUE(message.ok()) << message.ToString();
  args.insert(args.end(), {"--stop-at", end.ok() ? *end : "0/0"});
  return args;
}

Result<std::string> TableDigest(PgConn& conn, const std::string& table) {
  return conn.QueryValue(
      fmt::format("select count(*) || ':' || md5(coalesce(string_agg(x::text, "
                  "E'\\n' order by x::text), '')) from {} x",
                  table));
}

std::string TableDigest(const PgServer& server, const std::string& db, const std::string& table) {
  auto conn = server.Connect(db);
  if (!conn.ok()) return conn.status().ToString();
  auto digest = TableDigest(*conn, table);
  return digest.ok() ? *digest : digest.status().ToString();
}

Result<std::string> TablesDigest(PgConn& conn, const std::vector<std::string>& tables) {
  std::string out;
  for (const std::string& t : tables) {
    PGB_ASSIGN_OR_RETURN(std::string digest, TableDigest(conn, t));
    out += t + ":" + digest + ";";
  }
  return out;
}

std::string TablesDigest(const PgServer& server, const std::string& db,
                         const std::vector<std::string>& tables) {
  auto conn = server.Connect(db);
  if (!conn.ok()) return conn.status().ToString();
  std::string out;
  for (const std::string& t : tables) {
    auto digest = TableDigest(*conn, t);
    out += t + ":" + (digest.ok() ? *digest : digest.status().ToString()) + ";";
  }
  return out;
}

BackgroundWriter::BackgroundWriter(std::string conninfo, uint32_t seed, NextSql next)
    : thread_([this, conninfo = std::move(conninfo), seed, next = std::move(next)] {
        Loop(conninfo, seed, next);
      }) {}

void BackgroundWriter::Loop(const std::string& conninfo, uint32_t seed, const NextSql& next) {
  auto conn = PgConn::Connect(conninfo);
  Status st = conn.status();
  std::mt19937 rng(seed);
  while (st.ok() && !stop_) {
    st = conn->Run(next(rng, committed_.load()));
    if (st.ok()) ++committed_;
  }
  if (!st.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    error_ = st.ToString();
  }
}

void BackgroundWriter::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::string BackgroundWriter::error() {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

bool WaitFor(const std::function<bool()>& done, int seconds) {
  for (int i = 0; i < seconds * 10; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

std::string LastLineWith(const std::string& text, const std::string& needle) {
  size_t at = text.rfind(needle);
  if (at == std::string::npos) return "";
  size_t begin = text.rfind('\n', at);
  begin = begin == std::string::npos ? 0 : begin + 1;
  size_t end = text.find('\n', at);
  return text.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

}  // namespace pgbaton::testing

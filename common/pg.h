// RAII wrappers over libpq: a connection and a result. Every libpq failure is converted to a
// Status here, once (SQLSTATE class 08 and broken connections are retryable), with the
// connection's label ("source", "target") in the message. Not thread-safe: one thread per PgConn.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace pgbaton {

class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(PGresult* res) : res_(res) {}

  int rows() const { return res_ ? PQntuples(res_.get()) : 0; }
  int columns() const { return res_ ? PQnfields(res_.get()) : 0; }
  bool IsNull(int row, int col) const { return PQgetisnull(res_.get(), row, col) != 0; }
  // The text of a field ("" for NULL).
  std::string_view Get(int row, int col) const {
    return {PQgetvalue(res_.get(), row, col),
            static_cast<size_t>(PQgetlength(res_.get(), row, col))};
  }
  std::string GetString(int row, int col) const { return std::string(Get(row, col)); }
  std::optional<std::string> GetOptional(int row, int col) const {
    if (IsNull(row, col)) return std::nullopt;
    return GetString(row, col);
  }
  int64_t GetInt(int row, int col) const;
  bool GetBool(int row, int col) const { return Get(row, col) == "t"; }
  // Column index by name, or -1.
  int ColumnIndex(const char* name) const { return PQfnumber(res_.get(), name); }
  // Affected rows of a command ("INSERT 0 5" gives 5).
  int64_t AffectedRows() const;
  PGresult* raw() const { return res_.get(); }

 private:
  struct Deleter {
    void operator()(PGresult* r) const { PQclear(r); }
  };
  std::unique_ptr<PGresult, Deleter> res_;
};

struct ConnectOptions {
  std::string label = "server";              // named in every message: "source", "target"
  bool replication = false;                  // open a logical replication connection
  std::string application_name = "pgbaton";  // shown in pg_stat_activity
  int connect_timeout_seconds = 10;          // unless the conninfo sets its own
};

class PgConn {
 public:
  PgConn() = default;

  // Connects. Errors: kAuthentication (password, pg_hba), kConnection (retryable) otherwise;
  // the message names the label and the masked host/port/db, never a password.
  static Result<PgConn> Connect(std::string_view conninfo, const ConnectOptions& options = {});

  bool connected() const { return conn_ && PQstatus(conn_.get()) == CONNECTION_OK; }
  // Runs one or more statements; the last result must be a command or rows.
  Result<PgResult> Exec(std::string_view sql);
  // Runs one statement with text parameters (nullopt is NULL).
  Result<PgResult> ExecParams(std::string_view sql,
                              const std::vector<std::optional<std::string>>& params);
  // Exec for statements whose result is not needed.
  Status Run(std::string_view sql) { return Exec(sql).status(); }
  // The first field of the first row, or kNotFound when there is no row.
  Result<std::string> QueryValue(std::string_view sql,
                                 const std::vector<std::optional<std::string>>& params = {});

  // Server major version (e.g. 15, 17) and full number (150018).
  int ServerVersionNum() const { return PQserverVersion(conn_.get()); }
  int ServerMajor() const { return PQserverVersion(conn_.get()) / 10000; }

  // Quotes a literal for this connection (its encoding and standard_conforming_strings).
  // Identifiers need no connection: common/sql_ident.h.
  std::string QuoteLiteral(std::string_view literal) const;

  // Converts the state of this connection plus an optional failed result into a Status.
  Status ErrorFrom(const PGresult* res, std::string_view what) const;

  const std::string& label() const { return label_; }
  const std::string& description() const { return description_; }
  PGconn* raw() const { return conn_.get(); }

 private:
  struct Deleter {
    void operator()(PGconn* c) const { PQfinish(c); }
  };
  // The label the notice processor names: on the heap, so that it stays put when PgConn moves;
  // declared before conn_, so that it outlives the connection.
  std::unique_ptr<std::string> notice_label_;
  std::unique_ptr<PGconn, Deleter> conn_;
  std::string label_;
  std::string description_;  // "host:port/db", safe to print
};

// Maps a SQLSTATE to the catalogue. Class 08 and shutdowns are retryable.
ErrorCode ErrorCodeForSqlState(std::string_view sqlstate, bool* retryable);

}  // namespace pgbaton

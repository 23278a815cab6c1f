#include "common/pg.h"

#include <fmt/format.h>

#include <cstdlib>

#include "common/conninfo.h"
#include "common/log.h"

namespace pgbaton {

namespace {

// libpq error text ends with a newline and sometimes carries "ERROR:  " / "FATAL:  ".
std::string CleanMessage(const char* msg) {
  std::string s = msg != nullptr ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (const char* prefix : {"ERROR:  ", "FATAL:  "}) {
    if (s.rfind(prefix, 0) == 0) s = s.substr(strlen(prefix));
  }
  return ScrubSecrets(s);
}

// Server NOTICE/WARNING messages ("relation ... already exists, skipping", "there is no
// transaction in progress") would otherwise go to stderr through libpq's default processor and
// mix into a verb's output. They are log lines at debug level instead, naming the connection.
void OnNotice(void* arg, const char* message) {
  const std::string* label = static_cast<const std::string*>(arg);
  LogDebug("server notice", {{"server", label != nullptr ? *label : std::string("server")},
                             {"notice", CleanMessage(message)}});
}

}  // namespace

int64_t PgResult::GetInt(int row, int col) const {
  std::string s(Get(row, col));
  return s.empty() ? 0 : std::strtoll(s.c_str(), nullptr, 10);
}

int64_t PgResult::AffectedRows() const {
  const char* n = PQcmdTuples(res_.get());
  return (n != nullptr && *n != '\0') ? std::strtoll(n, nullptr, 10) : 0;
}

ErrorCode ErrorCodeForSqlState(std::string_view s, bool* retryable) {
  *retryable = false;
  if (s.size() != 5) return ErrorCode::kServerError;
  std::string_view cls = s.substr(0, 2);
  if (cls == "08" || s == "57P01" || s == "57P02" || s == "57P03") {
    *retryable = true;
    return ErrorCode::kConnection;
  }
  if (s == "28P01" || s == "28000") return ErrorCode::kAuthentication;
  if (s == "42501") return ErrorCode::kPermission;
  if (s == "53100") return ErrorCode::kDiskFull;
  if (s == "40001" || s == "40P01" || s == "55P03") {
    *retryable = true;
    return ErrorCode::kServerError;
  }
  if (s == "23505") return ErrorCode::kApplyConflict;
  if (s == "42P01" || s == "42883") return ErrorCode::kNotFound;
  if (cls == "22") return ErrorCode::kUnsupportedType;
  if (s == "55006") return ErrorCode::kSlotInUse;
  return ErrorCode::kServerError;
}

Result<PgConn> PgConn::Connect(std::string_view conninfo, const ConnectOptions& options) {
  std::string dsn(conninfo);
  std::string timeout = std::to_string(options.connect_timeout_seconds);
  std::vector<const char*> keys = {"connect_timeout", "fallback_application_name", "dbname"};
  std::vector<const char*> vals = {timeout.c_str(), options.application_name.c_str(), dsn.c_str()};
  if (options.replication) {
    keys.push_back("replication");
    vals.push_back("database");
  }
  keys.push_back(nullptr);
  vals.push_back(nullptr);

  PgConn c;
  c.label_ = options.label;
  c.description_ = DescribeConninfo(conninfo);
  // expand_dbname=1: `dsn` may itself be a conninfo or URI; later keywords do not override it
  // except where it leaves them unset, so a user's own connect_timeout wins.
  c.conn_.reset(PQconnectdbParams(keys.data(), vals.data(), 1));
  if (!c.conn_) {
    return Status::Error(ErrorCode::kInternal, "out of memory allocating a libpq connection");
  }
  if (PQstatus(c.conn_.get()) != CONNECTION_OK) {
    std::string msg = CleanMessage(PQerrorMessage(c.conn_.get()));
    bool auth = msg.find("password authentication failed") != std::string::npos ||
                msg.find("no pg_hba.conf entry") != std::string::npos ||
                msg.find("no password supplied") != std::string::npos ||
                msg.find("authentication failed") != std::string::npos;
    std::string text =
        fmt::format("cannot connect to {} ({}): {}", options.label, c.description_, msg);
    if (auth) {
      return Status::Error(ErrorCode::kAuthentication, text,
                           "check the user and password (PGPASSWORD, ~/.pgpass or the conninfo) "
                           "and the server's pg_hba.conf");
    }
    bool permission = msg.find("must be superuser or replication role") != std::string::npos ||
                      msg.find("permission denied") != std::string::npos;
    if (permission) {
      return Status::Error(
          ErrorCode::kPermission, text,
          "grant the role REPLICATION (ALTER ROLE ... REPLICATION) or use another");
    }
    // The server answered, but the database named is not there: a wrong dbname, not a network
    // problem, so retrying cannot help and the hint is about the database.
    if (msg.find("database \"") != std::string::npos &&
        msg.find("does not exist") != std::string::npos) {
      return Status::Error(
          ErrorCode::kNotFound, text,
          fmt::format("check the dbname in the {} conninfo (psql -l lists that server's "
                      "databases), or CREATE DATABASE it if it is the new, empty target",
                      options.label));
    }
    return Status::Error(ErrorCode::kConnection, text,
                         "check that the server is running and reachable at that host and port",
                         /*retryable=*/true);
  }
  c.notice_label_ = std::make_unique<std::string>(options.label);
  PQsetNoticeProcessor(c.conn_.get(), OnNotice, c.notice_label_.get());
  return c;
}

Status PgConn::ErrorFrom(const PGresult* res, std::string_view what) const {
  std::string prefix = fmt::format("{} ({})", label_, description_);
  if (!connected()) {
    return Status::Error(ErrorCode::kConnection,
                         fmt::format("{}: connection lost during {}: {}", prefix, what,
                                     CleanMessage(PQerrorMessage(conn_.get()))),
                         "check the server; pgbaton resumes where it stopped when run again",
                         /*retryable=*/true);
  }
  const char* state = res != nullptr ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  const char* primary = res != nullptr ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  const char* hint = res != nullptr ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : nullptr;
  bool retryable = false;
  ErrorCode code =
      state != nullptr ? ErrorCodeForSqlState(state, &retryable) : ErrorCode::kServerError;
  std::string msg =
      primary != nullptr ? ScrubSecrets(primary) : CleanMessage(PQerrorMessage(conn_.get()));
  return Status::Error(code,
                       fmt::format("{}: {} failed: {}{}", prefix, what, msg,
                                   state != nullptr ? fmt::format(" (SQLSTATE {})", state) : ""),
                       hint != nullptr ? ScrubSecrets(hint) : "", retryable);
}

Result<PgResult> PgConn::Exec(std::string_view sql) {
  PgResult res(PQexec(conn_.get(), std::string(sql).c_str()));
  ExecStatusType st = res.raw() ? PQresultStatus(res.raw()) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) return res;
  std::string what(sql.substr(0, 60));
  if (sql.size() > 60) what += "...";
  return ErrorFrom(res.raw(), fmt::format("query \"{}\"", what));
}

Result<PgResult> PgConn::ExecParams(std::string_view sql,
                                    const std::vector<std::optional<std::string>>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  PgResult res(PQexecParams(conn_.get(), std::string(sql).c_str(), static_cast<int>(values.size()),
                            nullptr, values.data(), nullptr, nullptr, 0));
  ExecStatusType st = res.raw() ? PQresultStatus(res.raw()) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return res;
  std::string what(sql.substr(0, 60));
  if (sql.size() > 60) what += "...";
  return ErrorFrom(res.raw(), fmt::format("query \"{}\"", what));
}

Result<std::string> PgConn::QueryValue(std::string_view sql,
                                       const std::vector<std::optional<std::string>>& params) {
  PGB_ASSIGN_OR_RETURN(PgResult res, params.empty() ? Exec(sql) : ExecParams(sql, params));
  if (res.rows() == 0 || res.columns() == 0) {
    return Status::Error(ErrorCode::kNotFound,
                         fmt::format("{}: query returned no row: {}", label_, sql.substr(0, 60)));
  }
  return res.GetString(0, 0);
}

std::string PgConn::QuoteLiteral(std::string_view literal) const {
  char* q = PQescapeLiteral(conn_.get(), literal.data(), literal.size());
  std::string out = q != nullptr ? q : "";
  PQfreemem(q);
  return out;
}

}  // namespace pgbaton

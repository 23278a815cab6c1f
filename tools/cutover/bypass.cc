#include "tools/cutover/bypass.h"

#include <fmt/format.h>

#include <thread>

#include "tools/cutover/strategy_support.h"

namespace pgbaton::tools::cutover {

Result<std::string> SourceClock(PgConn& source) {
  return source.QueryValue("select pg_catalog.clock_timestamp()::text");
}

Result<std::vector<BypassSession>> FindBypassing(PgConn& source,
                                                 const std::vector<std::string>& databases,
                                                 const std::string& since) {
  PGB_ASSIGN_OR_RETURN(
      PgResult res,
      source.ExecParams(
          "select pid, coalesce(usename, ''), coalesce(application_name, ''), "
          "coalesce(host(client_addr), 'local socket'), coalesce(state, '') "
          "from pg_catalog.pg_stat_activity "
          "where backend_type = 'client backend' and pid <> pg_catalog.pg_backend_pid() "
          "and datname = any($1::text[]) and coalesce(application_name, '') not like 'pgbaton%' "
          "and (xact_start is not null or state_change > $2::timestamptz) order by pid",
          {ArrayLiteral(databases), since}));
  std::vector<BypassSession> out;
  for (int r = 0; r < res.rows(); ++r) {
    BypassSession s;
    s.pid = res.GetInt(r, 0);
    s.user = res.GetString(r, 1);
    s.application = res.GetString(r, 2);
    s.client = res.GetString(r, 3);
    s.state = res.GetString(r, 4);
    out.push_back(std::move(s));
  }
  return out;
}

Status TerminateBypassing(PgConn& source, std::vector<BypassSession>* sessions,
                          std::chrono::milliseconds timeout) {
  std::vector<std::string> pids;
  for (auto& s : *sessions) {
    PGB_ASSIGN_OR_RETURN(std::string done,
                         source.QueryValue("select pg_catalog.pg_terminate_backend($1::int)::text",
                                           {std::to_string(s.pid)}));
    s.terminated = done == "true" || done == "t";
    pids.push_back(std::to_string(s.pid));
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    PGB_ASSIGN_OR_RETURN(
        std::string left,
        source.QueryValue("select count(*) from pg_catalog.pg_stat_activity where pid = "
                          "any($1::int[])",
                          {ArrayLiteral(pids)}));
    if (left == "0") return Status::Ok();
    if (std::chrono::steady_clock::now() > deadline) {
      return Status::Error(ErrorCode::kTimeout,
                           fmt::format("{} of the {} sessions bypassing the fence are still there "
                                       "{} ms after pg_terminate_backend",
                                       left, pids.size(), timeout.count()),
                           "check pg_stat_activity on the source");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::string DescribeSession(const BypassSession& s) {
  return fmt::format("pid {} user \"{}\" application \"{}\" from {} ({})", s.pid, s.user,
                     s.application, s.client, s.state);
}

Status BypassError(const std::vector<BypassSession>& sessions, const std::string& when) {
  std::string list;
  for (const auto& s : sessions) list += (list.empty() ? "" : "; ") + DescribeSession(s);
  return Status::Error(
      ErrorCode::kFenceBypassed,
      fmt::format("fence bypassed: {} client session{} on source can still write {} without "
                  "going through the fence: {}",
                  sessions.size(), sessions.size() == 1 ? "" : "s", when, list),
      "the fence was undone: writers are back on the old cluster; point those clients at a "
      "fenced pooler (or stop them) and run the cutover again, or pass --terminate-bypass to "
      "end such sessions during the cutover");
}

}  // namespace pgbaton::tools::cutover

#include "tools/cutover/strategies.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/conninfo.h"
#include "common/log.h"
#include "common/sql_ident.h"
#include "tools/cutover/fleet.h"
#include "tools/cutover/strategy_support.h"

namespace pgbaton::tools::cutover {

namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s + ",") {
    if (c == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else if (c != ' ') {
      cur += c;
    }
  }
  return out;
}

// "a, b, c".
std::string RoleList(const std::vector<std::string>& roles) {
  std::string list;
  for (const auto& r : roles) list += (list.empty() ? "" : ", ") + r;
  return list;
}

// kNotFound naming the first of `roles` that does not exist on `conn` (the `side`), with `hint`.
Status CheckRolesExist(PgConn& conn, const std::vector<std::string>& roles, const char* side,
                       const std::string& hint) {
  PGB_ASSIGN_OR_RETURN(
      PgResult res,
      conn.ExecParams("select rolname from pg_catalog.pg_roles where rolname = any($1::text[])",
                      {ArrayLiteral(roles)}));
  for (const auto& r : roles) {
    bool found = false;
    for (int i = 0; i < res.rows(); ++i) found |= res.Get(i, 0) == r;
    if (!found) {
      return Status::Error(ErrorCode::kNotFound,
                           fmt::format("role \"{}\" does not exist on {}", r, side), hint);
    }
  }
  return Status::Ok();
}

// Polls until no session matching `where` (SQL on pg_stat_activity) is left, terminating them
// each round. Errors: kTimeout naming what stayed.
Status TerminateSessions(PgConn& source, const std::string& where,
                         const std::vector<std::optional<std::string>>& params,
                         std::chrono::milliseconds timeout, const std::string& what) {
  auto deadline = Clock::now() + timeout;
  std::string sql = fmt::format(
      "select count(*) filter (where pg_catalog.pg_terminate_backend(pid)), count(*) from "
      "pg_catalog.pg_stat_activity where pid <> pg_catalog.pg_backend_pid() and ({})",
      where);
  while (true) {
    PGB_ASSIGN_OR_RETURN(PgResult res, source.ExecParams(sql, params));
    if (res.GetInt(0, 1) == 0) return Status::Ok();
    if (Clock::now() > deadline) {
      return Status::Error(ErrorCode::kTimeout,
                           fmt::format("{} on source: {} sessions still there after {} ms", what,
                                       res.GetInt(0, 1), timeout.count()),
                           "sessions of a superuser cannot always be terminated; check "
                           "pg_stat_activity");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// ---------------------------------------------------------------------------------- fences ---

class RolesFence : public Fence {
 public:
  RolesFence(std::vector<std::string> roles, const StrategyContext& ctx)
      : roles_(std::move(roles)), ctx_(ctx) {}

  std::string Describe() const override {
    return fmt::format("ALTER ROLE ... NOLOGIN and terminate the sessions of {} on the source",
                       RoleList(roles_));
  }
  std::string Kind() const override { return "roles"; }

  Status Check(PgConn& source) override {
    PGB_RETURN_IF_ERROR(CheckRolesExist(source, roles_, "source",
                                        "--fence roles: lists the roles the application writes "
                                        "with"));
    PGB_ASSIGN_OR_RETURN(std::string may,
                         source.QueryValue("select rolsuper or rolcreaterole from "
                                           "pg_catalog.pg_roles where rolname = current_user"));
    if (may != "t") {
      return Status::Error(ErrorCode::kPermission, "the source role may not ALTER ROLE ... NOLOGIN",
                           "connect to the source as a superuser or a role with CREATEROLE");
    }
    return Status::Ok();
  }

  Status Apply(PgConn& source) override {
    PGB_ASSIGN_OR_RETURN(
        PgResult res,
        source.ExecParams("select rolname from pg_catalog.pg_roles where rolname = any($1::text[]) "
                          "and rolcanlogin",
                          {ArrayLiteral(roles_)}));
    for (int i = 0; i < res.rows(); ++i) {
      std::string role = res.GetString(i, 0);
      Status s = source.Run("alter role " + QuoteIdent(role) + " nologin");
      if (!s.ok()) {
        Status u = Undo(source);
        if (!u.ok()) LogError("could not undo the roles fence", {{"error", u.message()}});
        return FenceFailed(s, fmt::format("ALTER ROLE \"{}\" NOLOGIN", role));
      }
      disabled_.push_back(role);
    }
    Status s = TerminateSessions(source, "usename = any($1::text[])", {ArrayLiteral(roles_)},
                                 ctx_.timeout, "terminating the roles' sessions");
    if (!s.ok()) {
      Status u = Undo(source);
      if (!u.ok()) LogError("could not undo the roles fence", {{"error", u.message()}});
      return FenceFailed(s, "roles fence");
    }
    return Status::Ok();
  }

  Status Undo(PgConn& source) override {
    Status first = Status::Ok();
    while (!disabled_.empty()) {
      Status s = source.Run("alter role " + QuoteIdent(disabled_.back()) + " login");
      if (!s.ok() && first.ok()) first = s;
      if (!s.ok()) break;
      disabled_.pop_back();
    }
    return first;
  }

  const std::vector<std::string>& roles() const { return roles_; }

 private:
  std::vector<std::string> roles_;
  StrategyContext ctx_;
  std::vector<std::string> disabled_;  // roles this fence set NOLOGIN
};

class ReadOnlyFence : public Fence {
 public:
  explicit ReadOnlyFence(const StrategyContext& ctx) : ctx_(ctx) {}

  std::string Describe() const override {
    return "ALTER DATABASE ... SET default_transaction_read_only = on and terminate the "
           "database's client sessions on the source";
  }
  std::string Kind() const override { return "readonly"; }

  Status Check(PgConn& source) override {
    PGB_ASSIGN_OR_RETURN(
        std::string may,
        source.QueryValue("select r.rolsuper or d.datdba = r.oid from pg_catalog.pg_roles r, "
                          "pg_catalog.pg_database d where r.rolname = current_user and "
                          "d.datname = current_database()"));
    if (may != "t") {
      return Status::Error(ErrorCode::kPermission, "the source role may not ALTER DATABASE ... SET",
                           "connect to the source as a superuser or the database owner");
    }
    return Status::Ok();
  }

  Status Apply(PgConn& source) override {
    PGB_ASSIGN_OR_RETURN(database_, source.QueryValue("select current_database()"));
    PGB_ASSIGN_OR_RETURN(
        PgResult prev,
        source.Exec("select s from pg_catalog.pg_db_role_setting r, pg_catalog.pg_database d, "
                    "unnest(r.setconfig) s where r.setdatabase = d.oid and r.setrole = 0 and "
                    "d.datname = current_database() and s like 'default_transaction_read_only=%'"));
    previous_.reset();
    if (prev.rows() > 0) {
      std::string s = prev.GetString(0, 0);
      previous_ = s.substr(s.find('=') + 1);
    }
    Status s = source.Run("alter database " + QuoteIdent(database_) +
                          " set default_transaction_read_only = on");
    if (!s.ok()) return FenceFailed(s, "ALTER DATABASE ... SET default_transaction_read_only");
    set_ = true;
    // Sessions in a write transaction first (they may be about to commit), then the rest, so
    // that new sessions pick up the read-only default.
    s = TerminateSessions(source,
                          "datname = current_database() and backend_type = 'client backend' "
                          "and backend_xid is not null",
                          {}, ctx_.timeout, "terminating write transactions");
    if (s.ok()) {
      s = TerminateSessions(source,
                            "datname = current_database() and backend_type = 'client backend'", {},
                            ctx_.timeout, "terminating client sessions");
    }
    if (!s.ok()) {
      Status u = Undo(source);
      if (!u.ok()) LogError("could not undo the read-only fence", {{"error", u.message()}});
      return FenceFailed(s, "read-only fence");
    }
    return Status::Ok();
  }

  Status Undo(PgConn& source) override {
    if (!set_) return Status::Ok();
    std::string db = QuoteIdent(database_);
    Status s =
        previous_.has_value()
            ? source.Run(fmt::format("alter database {} set default_transaction_read_only "
                                     "= {}",
                                     db, source.QuoteLiteral(*previous_)))
            : source.Run(fmt::format("alter database {} reset default_transaction_read_only", db));
    if (s.ok()) set_ = false;
    return s;
  }

 private:
  StrategyContext ctx_;
  std::string database_;
  std::optional<std::string> previous_;
  bool set_ = false;
};

// ----------------------------------------------------------------------------------- flips ---

class RolesFlip : public Flip {
 public:
  RolesFlip(std::vector<std::string> roles) : roles_(std::move(roles)) {}
  std::string Describe() const override {
    return fmt::format("ALTER ROLE ... LOGIN for {} on the new cluster", RoleList(roles_));
  }
  std::string Kind() const override { return "roles"; }

  Status Check(PgConn&, PgConn& target) override {
    return CheckRolesExist(target, roles_, "target",
                           "create it on the new cluster with NOLOGIN before the cutover "
                           "(pg_dumpall --roles-only, then ALTER ROLE ... NOLOGIN)");
  }

  Status Run(PgConn& target) override {
    for (const auto& r : roles_) {
      Status s = target.Run("alter role " + QuoteIdent(r) + " login");
      if (!s.ok()) {
        // Leave the new cluster as it was: the writers go back to the old one.
        for (const auto& done : enabled_) {
          (void)target.Run("alter role " + QuoteIdent(done) + " nologin");
        }
        return FlipFailed(s, fmt::format("ALTER ROLE \"{}\" LOGIN on target", r));
      }
      enabled_.push_back(r);
    }
    return Status::Ok();
  }

 private:
  std::vector<std::string> roles_;
  std::vector<std::string> enabled_;
};

class CommandFlip : public Flip {
 public:
  CommandFlip(std::string cmd, const StrategyContext& ctx) : cmd_(std::move(cmd)), ctx_(ctx) {}
  std::string Describe() const override { return fmt::format("run the hook: {}", cmd_); }
  std::string Kind() const override { return "command"; }
  Status Check(PgConn&, PgConn&) override {
    if (access("/bin/sh", X_OK) != 0) {
      return Status::Error(ErrorCode::kNotFound, "/bin/sh is missing: cannot run the flip hook");
    }
    return Status::Ok();
  }

  Status Run(PgConn&) override {
    PGB_ASSIGN_OR_RETURN(auto parts, ConninfoParts(ctx_.target_conninfo));
    std::vector<std::string> env = {"PGBATON_TARGET=" + ctx_.target_conninfo,
                                    "PGBATON_SOURCE=" + ctx_.source_conninfo,
                                    "PGBATON_CUTOVER_ID=" + ctx_.cutover_id};
    for (const char* k : {"host", "port", "dbname", "user"}) {
      std::string upper = k;
      for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      env.push_back(fmt::format("PGBATON_TARGET_{}={}", upper, parts.count(k) ? parts[k] : ""));
    }
    Status s = RunShell(cmd_, env, ctx_.timeout, "flip hook");
    if (s.ok()) return s;
    if (s.message().find("did not finish") != std::string::npos) {
      return s.WithHint("the fence was undone; make the hook faster or raise --timeout");
    }
    return s.WithHint(
        "the fence was undone: writers are back on the old cluster; the hook must undo its "
        "own partial changes");
  }

 private:
  std::string cmd_;
  StrategyContext ctx_;
};

}  // namespace

Result<std::map<std::string, std::string>> ConninfoParts(const std::string& conninfo) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (opts == nullptr) {
    std::string msg = err ? err : "out of memory";
    if (err) PQfreemem(err);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    return Status::Error(ErrorCode::kUsage, fmt::format("invalid conninfo: {}", msg));
  }
  std::map<std::string, std::string> out;
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (o->val == nullptr || *o->val == '\0') continue;
    std::string k = o->keyword;
    if (k == "host" || k == "hostaddr" || k == "port" || k == "dbname" || k == "user") {
      out[k] = o->val;
    }
  }
  PQconninfoFree(opts);
  if (!out.count("host") && out.count("hostaddr")) out["host"] = out["hostaddr"];
  return out;
}

Result<std::unique_ptr<Fence>> MakeFence(const std::string& spec, const StrategyContext& ctx) {
  if (spec.rfind("pgbouncer:", 0) == 0) {
    return Status::Error(ErrorCode::kInternal, "--fence pgbouncer: is built by MakeFleet");
  }
  if (spec.rfind("roles:", 0) == 0) {
    auto roles = SplitList(spec.substr(6));
    if (roles.empty()) {
      return Status::Error(ErrorCode::kUsage, "--fence roles: needs at least one role",
                           "e.g. --fence roles:app_rw,app_batch");
    }
    return std::unique_ptr<Fence>(std::make_unique<RolesFence>(roles, ctx));
  }
  if (spec == "readonly") return std::unique_ptr<Fence>(std::make_unique<ReadOnlyFence>(ctx));
  return Status::Error(ErrorCode::kUsage, fmt::format("unknown --fence \"{}\"", spec),
                       "use pgbouncer:CONNINFO, roles:ROLE,... or readonly");
}

Result<std::unique_ptr<Flip>> MakeFlip(const std::string& spec, const StrategyContext& ctx,
                                       Fence* fence, const std::vector<std::string>& roles) {
  if (spec == "pgbouncer") {
    return MakeFleetFlip(fence);
  }
  if (spec == "roles" || spec.rfind("roles:", 0) == 0) {
    std::vector<std::string> list = spec == "roles" ? roles : SplitList(spec.substr(6));
    if (list.empty()) {
      if (auto* rf = dynamic_cast<RolesFence*>(fence)) list = rf->roles();
    }
    if (list.empty()) {
      return Status::Error(ErrorCode::kUsage, "--flip roles needs roles",
                           "use --fence roles:R1,R2 or --flip roles:R1,R2");
    }
    return std::unique_ptr<Flip>(std::make_unique<RolesFlip>(list));
  }
  if (spec.rfind("command:", 0) == 0 && spec.size() > 8) {
    return std::unique_ptr<Flip>(std::make_unique<CommandFlip>(spec.substr(8), ctx));
  }
  return Status::Error(ErrorCode::kUsage, fmt::format("unknown --flip \"{}\"", spec),
                       "use pgbouncer, roles[:ROLE,...] or command:CMD");
}

}  // namespace pgbaton::tools::cutover

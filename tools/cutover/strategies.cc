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
#include "tools/cutover/pgbouncer_ini.h"

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

// A text[] literal for `names`, every element double-quoted.
std::string ArrayLiteral(const std::vector<std::string>& names) {
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : names[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
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

// Runs one PgBouncer admin command (simple query protocol) waiting at most `timeout`.
// Errors: kTimeout, or the console's error.
Status AdminCommand(PgConn& admin, const std::string& command, std::chrono::milliseconds timeout) {
  PGconn* c = admin.raw();
  if (PQsendQuery(c, command.c_str()) != 1) return admin.ErrorFrom(nullptr, command);
  auto deadline = Clock::now() + timeout;
  while (true) {
    if (PQconsumeInput(c) != 1) return admin.ErrorFrom(nullptr, command);
    if (!PQisBusy(c)) break;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      return Status::Error(
          ErrorCode::kTimeout,
          fmt::format("pgbouncer ({}): \"{}\" did not finish within {} ms", admin.description(),
                      command, timeout.count()),
          "a long transaction holds a server connection (PAUSE waits for it; in session pool "
          "mode it waits for every client to disconnect): use pool_mode = transaction, or "
          "raise --timeout");
    }
    pollfd p{PQsocket(c), POLLIN, 0};
    poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 50)));
  }
  Status first = Status::Ok();
  while (PGresult* r = PQgetResult(c)) {
    PgResult res(r);
    ExecStatusType st = PQresultStatus(r);
    if (first.ok() && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      first = admin.ErrorFrom(r, command);
    }
  }
  return first;
}

Result<PgConn> ConnectAdmin(const std::string& conninfo) {
  ConnectOptions co;
  co.label = "pgbouncer admin console";
  co.application_name = "pgbaton cutover";
  auto c = PgConn::Connect(conninfo, co);
  if (!c.ok()) {
    return c.status().WithHint(
        "the fence needs PgBouncer's admin console: dbname=pgbouncer and a user listed in "
        "admin_users");
  }
  return c;
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

Status FenceFailed(const Status& s, const std::string& what) {
  if (s.code() == ErrorCode::kTimeout) return s.WithContext(what);
  return Status::Error(ErrorCode::kFenceFailed, fmt::format("{}: {}", what, s.message()), s.hint());
}

Status FlipFailed(const Status& s, const std::string& what) {
  if (s.code() == ErrorCode::kFlipFailed) return s;
  return Status::Error(ErrorCode::kFlipFailed, fmt::format("{}: {}", what, s.message()),
                       s.hint().empty() ? "the fence was undone: writers are back on the old "
                                          "cluster; fix the cause and run the cutover again"
                                        : s.hint());
}

// ---------------------------------------------------------------------------------- fences ---

class PgBouncerFence : public Fence {
 public:
  PgBouncerFence(std::string admin, std::string db, const StrategyContext& ctx)
      : admin_conninfo_(std::move(admin)), db_(std::move(db)), ctx_(ctx) {}

  std::string Describe() const override {
    return fmt::format("PAUSE pgbouncer database \"{}\" ({})", db_,
                       DescribeConninfo(admin_conninfo_));
  }
  std::string Kind() const override { return "pgbouncer"; }

  Status Check(PgConn&) override {
    PGB_RETURN_IF_ERROR(EnsureConnected());
    PGB_ASSIGN_OR_RETURN(PgResult res, admin_->Exec("SHOW DATABASES"));
    int name_col = res.ColumnIndex("name");
    int paused_col = res.ColumnIndex("paused");
    for (int r = 0; r < res.rows(); ++r) {
      if (res.GetString(r, name_col) != db_) continue;
      if (paused_col >= 0 && res.GetString(r, paused_col) == "1") {
        return Status::Error(
            ErrorCode::kFenceFailed,
            fmt::format("pgbouncer database \"{}\" is already paused", db_),
            fmt::format("RESUME {} on the admin console if no cutover is running", db_));
      }
      return Status::Ok();
    }
    return Status::Error(
        ErrorCode::kNotFound,
        fmt::format("pgbouncer ({}) has no database \"{}\"", admin_->description(), db_),
        "pass --pgbouncer-db with the name clients use");
  }

  Status Apply(PgConn&) override {
    PGB_RETURN_IF_ERROR(EnsureConnected());
    paused_ = true;  // from here on, Undo must RESUME (even a PAUSE still waiting)
    Status s = AdminCommand(*admin_, "PAUSE " + QuoteIdent(db_), ctx_.timeout);
    if (!s.ok()) {
      // The console is still busy with PAUSE: RESUME from a fresh connection.
      admin_.reset();
      Status u = Resume();
      if (!u.ok()) LogError("could not RESUME after a failed PAUSE", {{"error", u.message()}});
      return FenceFailed(s, fmt::format("PAUSE of pgbouncer database \"{}\"", db_));
    }
    return Status::Ok();
  }

  Status Undo(PgConn&) override { return Resume(); }

  Status Resume() {
    if (!paused_) return Status::Ok();
    PGB_RETURN_IF_ERROR(EnsureConnected());
    Status s = AdminCommand(*admin_, "RESUME " + QuoteIdent(db_), ctx_.timeout);
    if (!s.ok() && s.message().find("not paused") == std::string::npos) return s;
    paused_ = false;
    return Status::Ok();
  }

  PgConn* admin() { return admin_ ? &*admin_ : nullptr; }
  Status EnsureConnected() {
    if (admin_ && admin_->connected()) return Status::Ok();
    PGB_ASSIGN_OR_RETURN(PgConn c, ConnectAdmin(admin_conninfo_));
    admin_.emplace(std::move(c));
    return Status::Ok();
  }
  const std::string& db() const { return db_; }
  void set_resumed() { paused_ = false; }

 private:
  std::string admin_conninfo_;
  std::string db_;
  StrategyContext ctx_;
  std::optional<PgConn> admin_;
  bool paused_ = false;
};

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

Status WriteFileAtomically(const std::string& path, const std::string& contents) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return Status::Error(ErrorCode::kIo,
                         fmt::format("cannot stat \"{}\": {}", path, std::strerror(errno)));
  }
  std::string tmp = path + ".pgbaton-tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, st.st_mode & 07777);
  if (fd < 0) {
    return Status::Error(ErrorCode::kIo,
                         fmt::format("cannot write \"{}\": {}", tmp, std::strerror(errno)),
                         "the cutover needs write access to pgbouncer.ini's directory");
  }
  size_t off = 0;
  bool ok = true;
  while (ok && off < contents.size()) {
    ssize_t n = write(fd, contents.data() + off, contents.size() - off);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) off += static_cast<size_t>(n);
  }
  ok = ok && fsync(fd) == 0;
  // Keep the owner so that PgBouncer (another user) can still read it; ignore when not root.
  if (fchown(fd, st.st_uid, st.st_gid) != 0) {
    LogDebug("could not keep the owner of pgbouncer.ini", {{"path", path}});
  }
  fchmod(fd, st.st_mode & 07777);
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    std::string err = std::strerror(errno);
    unlink(tmp.c_str());
    return Status::Error(ErrorCode::kIo, fmt::format("cannot replace \"{}\": {}", path, err));
  }
  return Status::Ok();
}

Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::Error(ErrorCode::kNotFound, fmt::format("cannot read \"{}\"", path),
                         "pass the PgBouncer configuration file with --pgbouncer-ini");
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class PgBouncerFlip : public Flip {
 public:
  PgBouncerFlip(PgBouncerFence* fence, std::string ini, const StrategyContext& ctx)
      : fence_(fence), ini_(std::move(ini)), ctx_(ctx) {}

  std::string Describe() const override {
    return fmt::format("point \"{}\" in {} at the new cluster, RELOAD, RESUME", fence_->db(), ini_);
  }
  std::string Kind() const override { return "pgbouncer"; }

  Status Check(PgConn&, PgConn&) override {
    PGB_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(ini_));
    PGB_RETURN_IF_ERROR(FindBouncerEntry(text, fence_->db()).status());
    if (access(ini_.c_str(), W_OK) != 0) {
      return Status::Error(ErrorCode::kPermission, fmt::format("cannot write \"{}\"", ini_),
                           "run the cutover as a user that may edit pgbouncer.ini");
    }
    PGB_ASSIGN_OR_RETURN(auto parts, ConninfoParts(ctx_.target_conninfo));
    if (!parts.count("host") || !parts.count("port")) {
      return Status::Error(ErrorCode::kUsage,
                           "--flip pgbouncer: the --target conninfo must give host and port",
                           "PgBouncer's entry is rewritten with the target's host, port and "
                           "dbname");
    }
    return Status::Ok();
  }

  Status Run(PgConn& target) override {
    // The new cluster must answer before clients are sent there.
    Status s = target.Run("select 1");
    if (!s.ok()) return FlipFailed(s, "new cluster unreachable at the flip");
    PGB_ASSIGN_OR_RETURN(auto parts, ConninfoParts(ctx_.target_conninfo));
    std::map<std::string, std::string> set;
    for (const char* k : {"host", "port", "dbname"}) {
      if (parts.count(k)) set[k] = parts[k];
    }
    auto old_text = ReadWholeFile(ini_);
    if (!old_text.ok()) return FlipFailed(old_text.status(), "reading pgbouncer.ini");
    auto new_text = RewriteBouncerEntry(*old_text, fence_->db(), set);
    if (!new_text.ok()) return FlipFailed(new_text.status(), "rewriting pgbouncer.ini");
    s = WriteFileAtomically(ini_, *new_text);
    if (!s.ok()) return FlipFailed(s, "writing pgbouncer.ini");
    s = fence_->EnsureConnected();
    if (s.ok()) s = AdminCommand(*fence_->admin(), "RELOAD", ctx_.timeout);
    if (s.ok()) s = VerifyPointed(set);
    if (!s.ok()) {
      // Put the old entry back so that the undo (RESUME) sends clients to the old cluster.
      Status w = WriteFileAtomically(ini_, *old_text);
      if (w.ok() && fence_->EnsureConnected().ok()) {
        w = AdminCommand(*fence_->admin(), "RELOAD", ctx_.timeout);
      }
      if (!w.ok()) LogError("could not restore pgbouncer.ini", {{"error", w.message()}});
      return FlipFailed(s, "pgbouncer RELOAD");
    }
    s = AdminCommand(*fence_->admin(), "RESUME " + QuoteIdent(fence_->db()), ctx_.timeout);
    if (!s.ok()) return FlipFailed(s, "pgbouncer RESUME after pointing at the new cluster");
    fence_->set_resumed();
    return Status::Ok();
  }

 private:
  // After RELOAD, SHOW DATABASES must list the new host and port for the database.
  Status VerifyPointed(const std::map<std::string, std::string>& set) {
    PGB_ASSIGN_OR_RETURN(PgResult res, fence_->admin()->Exec("SHOW DATABASES"));
    int name = res.ColumnIndex("name"), port = res.ColumnIndex("port");
    for (int r = 0; r < res.rows(); ++r) {
      if (res.GetString(r, name) != fence_->db()) continue;
      if (port >= 0 && set.count("port") && res.GetString(r, port) != set.at("port")) {
        return Status::Error(ErrorCode::kFlipFailed,
                             fmt::format("pgbouncer still points \"{}\" at port {} after RELOAD",
                                         fence_->db(), res.GetString(r, port)),
                             "check that --pgbouncer-ini is the file this PgBouncer reads");
      }
      return Status::Ok();
    }
    return Status::Error(ErrorCode::kFlipFailed,
                         fmt::format("pgbouncer lost database \"{}\" after RELOAD", fence_->db()));
  }

  PgBouncerFence* fence_;
  std::string ini_;
  StrategyContext ctx_;
};

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
    pid_t pid = fork();
    if (pid < 0) {
      return Status::Error(ErrorCode::kFlipFailed,
                           fmt::format("cannot start the flip hook: {}", std::strerror(errno)));
    }
    if (pid == 0) {
      setpgid(0, 0);
      dup2(2, 1);  // the hook's output goes to stderr: stdout stays the report (--json)
      for (auto& e : env) putenv(e.data());
      execl("/bin/sh", "sh", "-c", cmd_.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    auto deadline = Clock::now() + ctx_.timeout;
    int status = 0;
    while (true) {
      pid_t r = waitpid(pid, &status, WNOHANG);
      if (r == pid) break;
      if (Clock::now() > deadline) {
        kill(-pid, SIGKILL);
        waitpid(pid, &status, 0);
        return Status::Error(
            ErrorCode::kFlipFailed,
            fmt::format("flip hook did not finish within {} ms: {}", ctx_.timeout.count(), cmd_),
            "the fence was undone; make the hook faster or raise --timeout");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      return Status::Error(
          ErrorCode::kFlipFailed,
          fmt::format("flip hook failed ({}): {}",
                      WIFEXITED(status) ? fmt::format("exit code {}", WEXITSTATUS(status))
                                        : fmt::format("signal {}", WTERMSIG(status)),
                      cmd_),
          "the fence was undone: writers are back on the old cluster; the hook must undo its "
          "own partial changes");
    }
    return Status::Ok();
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

Result<std::unique_ptr<Fence>> MakeFence(const std::string& spec, const StrategyContext& ctx,
                                         const std::string& bouncer_db) {
  if (spec.rfind("pgbouncer:", 0) == 0) {
    std::string admin = spec.substr(10);
    if (admin.empty()) {
      return Status::Error(ErrorCode::kUsage, "--fence pgbouncer: needs the admin conninfo",
                           "e.g. --fence 'pgbouncer:host=127.0.0.1 port=6432 dbname=pgbouncer'");
    }
    return std::unique_ptr<Fence>(std::make_unique<PgBouncerFence>(admin, bouncer_db, ctx));
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
                                       Fence* fence, const std::string& pgbouncer_ini,
                                       const std::vector<std::string>& roles) {
  if (spec == "pgbouncer") {
    auto* bouncer = dynamic_cast<PgBouncerFence*>(fence);
    if (bouncer == nullptr) {
      return Status::Error(ErrorCode::kUsage, "--flip pgbouncer needs --fence pgbouncer:CONNINFO",
                           "the flip RESUMEs the database the fence PAUSEd");
    }
    if (pgbouncer_ini.empty()) {
      return Status::Error(ErrorCode::kUsage, "--flip pgbouncer needs --pgbouncer-ini PATH",
                           "the configuration file whose [databases] entry is rewritten");
    }
    return std::unique_ptr<Flip>(std::make_unique<PgBouncerFlip>(bouncer, pgbouncer_ini, ctx));
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

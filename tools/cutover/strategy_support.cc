#include "tools/cutover/strategy_support.h"

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

#include "common/log.h"

namespace pgbaton::tools::cutover {

namespace {
using Clock = std::chrono::steady_clock;
}  // namespace

Status AdminCommand(PgConn& admin, const std::string& command, std::chrono::milliseconds timeout,
                    const std::atomic<bool>* cancel) {
  PGconn* c = admin.raw();
  if (PQsendQuery(c, command.c_str()) != 1) return admin.ErrorFrom(nullptr, command);
  auto deadline = Clock::now() + timeout;
  while (true) {
    if (PQconsumeInput(c) != 1) return admin.ErrorFrom(nullptr, command);
    if (!PQisBusy(c)) break;
    if (cancel != nullptr && cancel->load()) {
      return Status::Error(ErrorCode::kFenceFailed,
                           fmt::format("pgbouncer ({}): \"{}\" cancelled: another pgbouncer of "
                                       "the fleet failed",
                                       admin.description(), command));
    }
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
    poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 20)));
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

Result<PgConn> ConnectAdmin(const std::string& conninfo) {
  ConnectOptions co;
  co.label = "pgbouncer admin console";
  co.application_name = "pgbaton cutover";
  co.connect_timeout_seconds = 5;
  auto c = PgConn::Connect(conninfo, co);
  if (!c.ok()) {
    return c.status().WithHint(
        "the fence needs PgBouncer's admin console: dbname=pgbouncer and a user listed in "
        "admin_users");
  }
  return c;
}

Result<BouncerEntry> ShowDatabase(PgConn& admin, const std::string& db) {
  PGB_ASSIGN_OR_RETURN(PgResult res, admin.Exec("SHOW DATABASES"));
  int name = res.ColumnIndex("name"), host = res.ColumnIndex("host"),
      port = res.ColumnIndex("port"), database = res.ColumnIndex("database"),
      paused = res.ColumnIndex("paused");
  BouncerEntry e;
  for (int r = 0; r < res.rows(); ++r) {
    if (res.GetString(r, name) != db) continue;
    e.found = true;
    if (host >= 0) e.host = res.GetString(r, host);
    if (port >= 0) e.port = res.GetString(r, port);
    if (database >= 0) e.database = res.GetString(r, database);
    e.paused = paused >= 0 && res.GetString(r, paused) == "1";
    break;
  }
  return e;
}

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

Status RunShell(const std::string& cmd, const std::vector<std::string>& env,
                std::chrono::milliseconds timeout, const std::string& what) {
  // The environment is built before fork: the child only calls async-signal-safe functions.
  std::vector<std::string> envs;
  for (char** e = environ; *e != nullptr; ++e) envs.emplace_back(*e);
  envs.insert(envs.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    return Status::Error(ErrorCode::kFlipFailed,
                         fmt::format("cannot start the {}: {}", what, std::strerror(errno)));
  }
  if (pid == 0) {
    setpgid(0, 0);
    dup2(2, 1);  // the command's output goes to stderr: stdout stays the report (--json)
    execle("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr), envp.data());
    _exit(127);
  }
  auto deadline = Clock::now() + timeout;
  int status = 0;
  while (true) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (Clock::now() > deadline) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      return Status::Error(ErrorCode::kFlipFailed, fmt::format("{} did not finish within {} ms: {}",
                                                               what, timeout.count(), cmd));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Status::Error(
        ErrorCode::kFlipFailed,
        fmt::format("{} failed ({}): {}", what,
                    WIFEXITED(status) ? fmt::format("exit code {}", WEXITSTATUS(status))
                                      : fmt::format("signal {}", WTERMSIG(status)),
                    cmd));
  }
  return Status::Ok();
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

}  // namespace pgbaton::tools::cutover

#include "tools/cutover/reverse.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <map>
#include <thread>
#include <vector>

#include "catalog/source_catalog.h"
#include "common/conninfo.h"
#include "common/pg.h"

namespace pgbaton::tools::cutover {

namespace {

Result<PgConn> Connect(const std::string& conninfo, const std::string& label) {
  ConnectOptions co;
  co.label = label;
  co.application_name = "pgbaton cutover";
  return PgConn::Connect(conninfo, co);
}

std::string Binary(const ReverseOptions& o) {
  if (!o.binary.empty()) return o.binary;
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "pgbaton";
}

// The reverse `run`'s argv. Its conninfos, passwords included, go in its environment
// (PGBATON_SOURCE, PGBATON_TARGET: see Env) where `ps` does not show them. The empty password
// files keep a PGBATON_*_PASSWORD_FILE variable or config key it inherits from this process,
// which names the forward sides' files, from replacing those passwords.
std::vector<std::string> Argv(const ReverseOptions& o) {
  return {Binary(o),
          "--name",
          o.name,
          "run",
          "--queue-dir",
          o.queue_dir,
          "--source-password-file",
          "",
          "--target-password-file",
          ""};
}

std::map<std::string, std::string> Env(const ReverseOptions& o) {
  return {{"PGBATON_SOURCE", o.new_conninfo}, {"PGBATON_TARGET", o.old_conninfo}};
}

std::string Shown(const ReverseOptions& o) {
  std::string out;
  for (const auto& [name, value] : Env(o)) out += name + "='" + MaskConninfo(value) + "' ";
  for (const auto& a : Argv(o)) {
    out += (out.back() == ' ' ? "" : " ") +
           (a.empty() || a.find(' ') != std::string::npos ? "'" + a + "'" : a);
  }
  return out;
}

}  // namespace

std::string DescribeReverse(const ReverseOptions& o) { return Shown(o); }

Status CheckReverse(const ReverseOptions& o) {
  PGB_ASSIGN_OR_RETURN(PgConn fresh, Connect(o.new_conninfo, "target"));
  PGB_ASSIGN_OR_RETURN(PgConn old, Connect(o.old_conninfo, "source"));
  if (old.ServerMajor() < 16 || fresh.ServerMajor() < 16) {
    return Status::Error(
        ErrorCode::kVersion,
        fmt::format("--reverse needs PostgreSQL 16 or newer on both clusters (old {}, new {})",
                    old.ServerMajor(), fresh.ServerMajor()),
        "below 16 the forward decoder cannot skip the reverse applier's changes (origin "
        "'none'): stop pgbaton run after the cutover, then start the reverse stream by hand");
  }
  PGB_ASSIGN_OR_RETURN(std::string level, fresh.QueryValue("show wal_level"));
  if (level != "logical") {
    return Status::Error(ErrorCode::kServerConfig,
                         fmt::format("wal_level is {} on target: the reverse stream needs "
                                     "logical",
                                     level),
                         "set wal_level = logical on the new cluster and restart it");
  }
  PGB_ASSIGN_OR_RETURN(PgResult slot,
                       fresh.ExecParams("select 1 from pg_catalog.pg_replication_slots where "
                                        "slot_name = $1",
                                        {o.name}));
  if (slot.rows() > 0) {
    return Status::Error(ErrorCode::kSlotInUse,
                         fmt::format("replication slot \"{}\" already exists on target", o.name),
                         "drop it (pgbaton cleanup --name ...) or use another --name");
  }
  return Status::Ok();
}

Result<ReverseStarted> StartReverse(const ReverseOptions& o) {
  PGB_ASSIGN_OR_RETURN(PgConn fresh, Connect(o.new_conninfo, "target"));
  ReverseStarted out;
  Result<bool> created = catalog::EnsurePublication(fresh, o.name, {});
  if (!created.ok()) return created.status().WithContext("the reverse publication on target");
  out.created_publication = *created;
  PGB_RETURN_IF_ERROR(fresh
                          .ExecParams("select pg_catalog.pg_create_logical_replication_slot($1, "
                                      "'pgoutput')",
                                      {o.name})
                          .status()
                          .WithContext("creating the reverse slot on target"));
  out.command = Shown(o);
  out.log_path = o.queue_dir + ".log";
  std::vector<std::string> argv = Argv(o);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  // The environment is built before fork: a forked child of a threaded process may only call
  // async-signal-safe functions.
  std::map<std::string, std::string> env = Env(o);
  std::vector<std::string> env_strings;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry(*e);
    if (!env.contains(entry.substr(0, entry.find('=')))) env_strings.push_back(std::move(entry));
  }
  for (const auto& [name, value] : env) env_strings.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return Status::Error(ErrorCode::kIo, "cannot fork the reverse stream");
  if (pid == 0) {
    setsid();
    int fd = open(out.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, 0);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    // Keep nothing else of the cutover's (its callers' pipes would stay open while it runs).
    for (int f = 3; f < 1024; ++f) close(f);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  // Its own session: the cutover's exit (or a terminal's hangup) leaves it running.
  out.pid = static_cast<int>(pid);
  return out;
}

Status StopReverse(const ReverseOptions& o, const ReverseStarted& started,
                   std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  if (started.pid > 0) {
    // The reverse run is this process's child (StartReverse forked it): reap it here.
    pid_t pid = static_cast<pid_t>(started.pid);
    kill(pid, SIGTERM);
    auto deadline = Clock::now() + timeout;
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
      if (Clock::now() > deadline) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  PGB_ASSIGN_OR_RETURN(PgConn fresh, Connect(o.new_conninfo, "target"));
  // The walsender may hold the slot for a moment after its client is gone.
  auto deadline = Clock::now() + timeout;
  while (true) {
    PGB_ASSIGN_OR_RETURN(PgResult slot,
                         fresh.ExecParams("select active from pg_catalog.pg_replication_slots "
                                          "where slot_name = $1",
                                          {o.name}));
    if (slot.rows() == 0) break;
    if (!slot.GetBool(0, 0)) {
      Status s =
          fresh.ExecParams("select pg_catalog.pg_drop_replication_slot($1)", {o.name}).status();
      if (s.ok()) break;
    }
    if (Clock::now() > deadline) {
      return Status::Error(
          ErrorCode::kTimeout,
          fmt::format("replication slot \"{}\" on target is still active after "
                      "stopping the reverse stream",
                      o.name),
          fmt::format("drop it by hand: select pg_drop_replication_slot('{}')", o.name));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (started.created_publication) {
    PGB_RETURN_IF_ERROR(catalog::DropPublication(fresh, o.name)
                            .WithContext("dropping the reverse publication on target"));
  }
  return Status::Ok();
}

}  // namespace pgbaton::tools::cutover

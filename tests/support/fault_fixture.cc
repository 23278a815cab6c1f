#include "tests/support/fault_fixture.h"

#include <fmt/format.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "common/pg.h"
#include "tests/support/pg_test.h"

namespace pgbaton::testing::faults {
namespace {
const std::vector<std::string> kPgbenchTables = {"pgbench_accounts", "pgbench_branches",
                                                 "pgbench_tellers", "pgbench_history"};

Status Shell(const std::string& script) {
  CommandResult r = RunCommand({"bash", "-c", "set -o pipefail; " + script});
  if (r.exit_code != 0) {
    return Status::Error(ErrorCode::kInternal, "command failed: " + r.output.substr(0, 2000));
  }
  return Status::Ok();
}
}  // namespace

int FaultRounds() {
  const char* v = std::getenv("PGBATON_FAULT_ROUNDS");
  int n = v != nullptr ? std::atoi(v) : 0;
  return n > 0 ? n : 3;
}

Result<std::string> Digest(const std::string& conninfo, const std::vector<std::string>& extra) {
  ConnectOptions co;
  co.label = "digest";
  PGB_ASSIGN_OR_RETURN(PgConn c, PgConn::Connect(conninfo, co));
  std::vector<std::string> tables = kPgbenchTables;
  tables.insert(tables.end(), extra.begin(), extra.end());
  return pgbaton::testing::TablesDigest(c, tables);
}

Result<std::unique_ptr<FaultEnv>> FaultEnv::Create(const std::string& name) {
  auto env = std::make_unique<FaultEnv>();
  PgServerOptions so;
  so.major = 15;
  PGB_ASSIGN_OR_RETURN(env->source, PgServer::Start(so));
  PgServerOptions to;
  to.major = 17;
  PGB_ASSIGN_OR_RETURN(env->target, PgServer::Start(to));
  PGB_RETURN_IF_ERROR(env->source->Exec("create database app"));
  PGB_RETURN_IF_ERROR(env->target->Exec("create database app"));
  env->dir = MakeTempDir("pgbaton-faults-" + name);
  // Tables and keys only; the data comes later, through the migration (Fill).
  PGB_RETURN_IF_ERROR(Shell(fmt::format(
      "pgbench -q -i -I dtp -s 1 -h 127.0.0.1 -p {} -U postgres app", env->source->port())));
  PGB_RETURN_IF_ERROR(
      env->source->Exec("alter table pgbench_history add column hid bigserial primary key", "app"));
  PGB_RETURN_IF_ERROR(pgbaton::testing::DumpAndRestore(*env->source, *env->target, "app",
                                                       /*schema_only=*/true));
  PGB_ASSIGN_OR_RETURN(env->source_proxy, TcpProxy::Start(env->source->port()));
  PGB_ASSIGN_OR_RETURN(env->target_proxy, TcpProxy::Start(env->target->port()));
  return env;
}

FaultEnv::~FaultEnv() {
  source_proxy.reset();
  target_proxy.reset();
  if (!dir.empty()) RemoveTree(dir);
}

std::string FaultEnv::SourceViaProxy() const {
  return fmt::format("host=127.0.0.1 port={} user=postgres dbname=app", source_proxy->port());
}
std::string FaultEnv::TargetViaProxy() const {
  return fmt::format("host=127.0.0.1 port={} user=postgres dbname=app", target_proxy->port());
}

std::vector<std::string> FaultEnv::RunArgs(const std::vector<std::string>& extra) const {
  std::vector<std::string> a = {
      PgbatonBinary(),  "run",         "--source",     SourceViaProxy(), "--target",
      TargetViaProxy(), "--queue-dir", dir + "/queue", "--apply-jobs",   "2"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

ChildProcess FaultEnv::StartLoad(int seconds) const {
  ProcessOptions po;
  po.stdout_path = dir + "/pgbench.log";
  return ChildProcess({"pgbench", "-n", "-c", "2", "-T", std::to_string(seconds), "-h", "127.0.0.1",
                       "-p", std::to_string(source->port()), "-U", "postgres", "app"},
                      po);
}

Status FaultEnv::Fill() const {
  return Shell(
      fmt::format("pgbench -q -i -I g -s 1 -h 127.0.0.1 -p {} -U postgres app", source->port()));
}

Status FaultEnv::WaitIdentical(int max_seconds) const {
  std::string last_s, last_t;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(max_seconds);
  while (std::chrono::steady_clock::now() < until) {
    auto s = Digest(SourceDirect());
    auto t = Digest(TargetDirect());
    if (s.ok() && t.ok()) {
      if (*s == *t) return Status::Ok();
      last_s = *s;
      last_t = *t;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return Status::Error(ErrorCode::kVerifyMismatch,
                       "source and target differ:\n source " + last_s + "\n target " + last_t);
}

Result<std::string> FaultEnv::SourceLsn() const {
  return source->Query("select pg_current_wal_lsn()", "app");
}

void Supervisor::Start() {
  ProcessOptions po;
  po.stdout_path = fmt::format("{}.{}.log", log_prefix_, ++starts_);
  child_ = ChildProcess(args_, po);
}

Status Supervisor::Check() {
  if (child_.running()) return Status::Ok();
  int code = child_.exit_code();
  if (code == ExitCodeOf(ErrorCode::kConnection)) {
    // What an operator (or systemd's Restart=on-failure) does with the retryable code.
    ++operator_restarts_;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    Start();
    return Status::Ok();
  }
  return Status::Error(ErrorCode::kInternal, fmt::format("run exited with {} (signal {}):\n{}",
                                                         code, child_.term_signal(), LastLog()));
}

void Supervisor::KillHard() { child_.Kill(); }

int Supervisor::StopGracefully() {
  child_.Signal(SIGTERM);
  return child_.Wait(60000);
}

int Supervisor::InterruptTwice() {
  child_.Signal(SIGTERM);
  // A pending signal is not queued twice: let the first be delivered before sending the second.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  child_.Signal(SIGTERM);
  return child_.Wait(60000);
}

std::string Supervisor::LastLog() const {
  std::string s = ReadFile(fmt::format("{}.{}.log", log_prefix_, starts_));
  return s.size() > 3000 ? s.substr(s.size() - 3000) : s;
}

}  // namespace pgbaton::testing::faults

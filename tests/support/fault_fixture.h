// Shared pieces of the fault tests: a source (PostgreSQL 15) and a target (17) whose schema comes
// from pg_dump --schema-only, pgbench tables and load, TCP proxies in front of both servers, a
// supervised `pgbaton run` that an "operator" restarts when it exits with a retryable error, and
// a row-for-row comparison (md5 of each table's ordered rows).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "tests/support/pg_server.h"
#include "tests/support/process.h"
#include "tests/support/tcp_proxy.h"

namespace pgbaton::testing::faults {

// Rounds per fault: PGBATON_FAULT_ROUNDS, default 3.
int FaultRounds();

// "table:rows:md5;..." of the pgbench tables (and any extra `tables`) on `conninfo`.
Result<std::string> Digest(const std::string& conninfo,
                           const std::vector<std::string>& extra_tables = {});

struct FaultEnv {
  std::unique_ptr<PgServer> source;
  std::unique_ptr<PgServer> target;
  std::unique_ptr<TcpProxy> source_proxy;
  std::unique_ptr<TcpProxy> target_proxy;
  std::string dir;  // queue and logs

  // Source 15, target 17, database "app", pgbench tables (pgbench_history gets a primary key),
  // the target's schema from pg_dump --schema-only | psql, proxies in front of both.
  static Result<std::unique_ptr<FaultEnv>> Create(const std::string& name);
  ~FaultEnv();

  std::string SourceDirect() const { return source->Conninfo("app"); }
  std::string TargetDirect() const { return target->Conninfo("app"); }
  std::string SourceViaProxy() const;
  std::string TargetViaProxy() const;
  // `pgbaton run` through the proxies (plus `extra` flags).
  std::vector<std::string> RunArgs(const std::vector<std::string>& extra = {}) const;
  // pgbench -n -c 2 -T seconds against the source, in the background (it may fail when the
  // source crashes; callers do not rely on its exit code).
  ChildProcess StartLoad(int seconds) const;
  // pgbench -i -I g -s 1 (truncate + fill) on the source.
  Status Fill() const;
  // Polls until source and target digests match, or `max_seconds` pass (then returns the last
  // pair in the error). Liveness bound only: nothing measures how fast.
  Status WaitIdentical(int max_seconds) const;
  // The source's pg_current_wal_lsn().
  Result<std::string> SourceLsn() const;
};

// A `pgbaton run` kept running like an operator would: when it exits with kConnection (10, the
// retryable code) it is started again; any other exit is recorded as a failure.
class Supervisor {
 public:
  Supervisor(std::vector<std::string> args, std::string log_prefix)
      : args_(std::move(args)), log_prefix_(std::move(log_prefix)) {}
  void Start();
  // Checks the process: restarts it after exit code 10; returns an error for any other exit.
  Status Check();
  void KillHard();       // SIGKILL (a crash)
  int StopGracefully();  // SIGTERM and wait; the exit code
  int InterruptTwice();  // two SIGTERMs at once ("stop now") and wait; the exit code
  int operator_restarts() const { return operator_restarts_; }
  std::string LastLog() const;

 private:
  std::vector<std::string> args_;
  std::string log_prefix_;
  ChildProcess child_;
  int starts_ = 0;
  int operator_restarts_ = 0;
};

}  // namespace pgbaton::testing::faults

// A real PgBouncer for tests (Debian's /usr/sbin/pgbouncer): started as the unprivileged test
// user on a free loopback port with a generated pgbouncer.ini (auth_type = trust with an
// auth_file, the given [databases] entries, admin_users), stopped in the destructor. Admin()
// runs a console command. If PgBouncer is not installed, Start() fails saying so: never a silent
// pass.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/pg.h"
#include "common/status.h"
#include "tests/support/process.h"

namespace pgbaton::testing {

struct PgBouncerOptions {
  // [databases] entries: name -> "host=127.0.0.1 port=N dbname=D user=U".
  std::map<std::string, std::string> databases;
  std::vector<std::string> users = {"postgres"};  // listed in the auth_file (trust)
  std::string admin_user = "postgres";
  std::string pool_mode = "transaction";  // the PAUSE fence needs transaction (or statement)
  int default_pool_size = 20;
  int max_client_conn = 200;
  std::string binary = "/usr/sbin/pgbouncer";
};

class PgBouncer {
 public:
  // Starts PgBouncer and waits (up to 20 s) until the admin console answers.
  static Result<std::unique_ptr<PgBouncer>> Start(const PgBouncerOptions& options);
  ~PgBouncer();

  int port() const { return port_; }
  // The generated configuration file (writable by the test, readable by PgBouncer).
  const std::string& ini_path() const { return ini_path_; }
  // A client conninfo through PgBouncer.
  std::string Conninfo(const std::string& dbname, const std::string& user = "postgres") const;
  // The admin console's conninfo (dbname=pgbouncer).
  std::string AdminConninfo() const;
  // Runs one admin console command (SHOW DATABASES, PAUSE db, RESUME db, RELOAD, ...).
  Result<PgResult> Admin(const std::string& command) const;
  // The `paused` column of SHOW DATABASES for `db` (false when absent).
  Result<bool> Paused(const std::string& db) const;
  // The port SHOW DATABASES lists for `db` (-1 when absent).
  Result<int> BackendPort(const std::string& db) const;
  std::string LogTail(size_t bytes = 4000) const;
  // Kills the process (SIGKILL), as a crash would; its files stay (the ini can still be read).
  void Kill() { process_.Kill(); }

 private:
  PgBouncer() = default;
  std::string dir_;
  std::string ini_path_;
  int port_ = 0;
  ChildProcess process_;
};

}  // namespace pgbaton::testing

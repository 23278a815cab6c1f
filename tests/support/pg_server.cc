#include "tests/support/pg_server.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/support/process.h"

namespace pgbaton::testing {

namespace {

// A CA and a server certificate signed by it, valid for 127.0.0.1 and localhost.
Status MakeCertificates(const std::string& dir) {
  std::filesystem::create_directories(dir);
  WriteFile(dir + "/san.ext", "subjectAltName = IP:127.0.0.1, DNS:localhost\n");
  const std::vector<std::vector<std::string>> steps = {
      {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
       "/CN=pgbaton test CA", "-keyout", dir + "/ca.key", "-out", dir + "/ca.crt"},
      {"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout",
       dir + "/server.key", "-out", dir + "/server.csr"},
      {"openssl", "x509", "-req", "-in", dir + "/server.csr", "-CA", dir + "/ca.crt", "-CAkey",
       dir + "/ca.key", "-CAcreateserial", "-days", "2", "-extfile", dir + "/san.ext", "-out",
       dir + "/server.crt"},
  };
  for (const auto& argv : steps) {
    CommandResult r = RunCommand(argv);
    if (r.exit_code != 0) {
      return Status::Error(ErrorCode::kInternal,
                           fmt::format("openssl failed making test certificates: {}", r.output),
                           "install openssl (scripts/setup)");
    }
  }
  std::filesystem::permissions(dir + "/server.key", std::filesystem::perms::owner_read |
                                                        std::filesystem::perms::owner_write);
  GiveToTestUser(dir);
  return Status::Ok();
}

}  // namespace

std::string PgServer::BinDir(int major) {
  std::string dir;
  if (major == 15) {
    dir = "/usr/lib/postgresql/15/bin";
  } else {
    dir = fmt::format("{}/test-servers/node_modules/pg{}/native/bin", DepsDir(), major);
  }
  return std::filesystem::exists(dir + "/postgres") ? dir : "";
}

Result<std::unique_ptr<PgServer>> PgServer::Start(const PgServerOptions& options) {
  std::unique_ptr<PgServer> s(new PgServer());
  s->options_ = options;
  s->bin_dir_ = BinDir(options.major);
  if (s->bin_dir_.empty()) {
    return Status::Error(
        ErrorCode::kNotFound,
        fmt::format("PostgreSQL {} binaries not found (looked in {})", options.major,
                    options.major == 15 ? "/usr/lib/postgresql/15/bin"
                                        : DepsDir() + "/test-servers/node_modules"),
        "run scripts/setup, which installs every test server");
  }
  s->root_dir_ = MakeTempDir(fmt::format("pgbaton-pg{}", options.major));
  s->data_dir_ = s->root_dir_ + "/data";
  GiveToTestUser(s->root_dir_);

  ProcessOptions as_user;
  as_user.as_test_user = true;
  if (options.standby_of != nullptr) return StartStandby(std::move(s), as_user);
  std::vector<std::string> initdb = {s->bin_dir_ + "/initdb",
                                     "-D",
                                     s->data_dir_,
                                     "-U",
                                     "postgres",
                                     "-A",
                                     "trust",
                                     "-E",
                                     "UTF8",
                                     "--locale=C",
                                     "--no-sync"};
  std::string pwfile;
  if (!options.superuser_password.empty()) {
    pwfile = s->root_dir_ + "/pw";
    WriteFile(pwfile, options.superuser_password + "\n");
    GiveToTestUser(pwfile);
    initdb.push_back("--pwfile=" + pwfile);
  }
  CommandResult r = RunCommand(initdb, as_user);
  if (r.exit_code != 0) {
    return Status::Error(ErrorCode::kInternal, fmt::format("initdb for PostgreSQL {} failed: {}",
                                                           options.major, r.output));
  }
  if (!pwfile.empty()) std::filesystem::remove(pwfile);

  std::map<std::string, std::string> conf = {
      {"listen_addresses", "'127.0.0.1'"},
      {"unix_socket_directories", "'" + s->root_dir_ + "'"},
      {"wal_level", "logical"},
      {"max_wal_senders", "10"},
      {"max_replication_slots", "10"},
      {"max_connections", "60"},
      {"shared_buffers", "64MB"},
      {"fsync", "off"},  // tests kill processes, not the machine: no need to sync
      {"full_page_writes", "off"},
      {"logging_collector", "off"},
      {"log_min_messages", "warning"},
  };
  for (const auto& [k, v] : options.settings) conf[k] = v;
  std::string extra;
  for (const auto& [k, v] : conf) extra += fmt::format("{} = {}\n", k, v);
  {
    std::ofstream out(s->data_dir_ + "/postgresql.conf", std::ios::app);
    out << "\n# pgbaton test settings\n" << extra;
  }
  if (options.ssl) {
    PGB_RETURN_IF_ERROR(MakeCertificates(s->root_dir_ + "/tls"));
    std::ofstream out(s->data_dir_ + "/postgresql.conf", std::ios::app);
    out << fmt::format(
        "ssl = on\nssl_cert_file = '{0}/tls/server.crt'\n"
        "ssl_key_file = '{0}/tls/server.key'\n",
        s->root_dir_);
  }
  std::string hba = options.hba_prefix;
  if (options.ssl) {
    hba +=
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\n"
        "local replication all trust\nhostssl replication all 127.0.0.1/32 trust\n";
  } else if (!options.superuser_password.empty()) {
    hba +=
        "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
        "local replication all trust\nhost replication all 127.0.0.1/32 scram-sha-256\n";
  } else {
    hba +=
        "local all all trust\nhost all all 127.0.0.1/32 trust\n"
        "local replication all trust\nhost replication all 127.0.0.1/32 trust\n";
  }
  WriteFile(s->data_dir_ + "/pg_hba.conf", hba);
  GiveToTestUser(s->data_dir_);

  // Retry on a port race with another test.
  Status started;
  for (int attempt = 0; attempt < 5; ++attempt) {
    s->port_ = FreePort();
    started = s->StartAgain();
    if (started.ok()) return s;
  }
  return started;
}

Result<std::unique_ptr<PgServer>> PgServer::StartStandby(std::unique_ptr<PgServer> s,
                                                         const ProcessOptions& as_user) {
  const PgServer& primary = *s->options_.standby_of;
  if (primary.major() != s->options_.major) {
    return Status::Error(ErrorCode::kInternal, "a standby must be of its primary's major");
  }
  ProcessOptions po = as_user;
  if (!primary.options_.superuser_password.empty()) {
    po.env["PGPASSWORD"] = primary.options_.superuser_password;
  }
  CommandResult r = RunCommand({s->bin_dir_ + "/pg_basebackup", "-D", s->data_dir_, "-h",
                                "127.0.0.1", "-p", std::to_string(primary.port()), "-U", "postgres",
                                "-X", "stream", "-R", "--no-sync", "--checkpoint=fast"},
                               po);
  if (r.exit_code != 0) {
    return Status::Error(ErrorCode::kInternal,
                         fmt::format("pg_basebackup of PostgreSQL {} on port {} failed: {}",
                                     primary.major(), primary.port(), r.output));
  }
  std::string extra = fmt::format(
      "\n# pgbaton test standby settings\nunix_socket_directories = '{}'\n"
      "hot_standby = on\n",
      s->root_dir_);
  for (const auto& [k, v] : s->options_.settings) extra += fmt::format("{} = {}\n", k, v);
  {
    std::ofstream out(s->data_dir_ + "/postgresql.conf", std::ios::app);
    out << extra;
  }
  s->options_.ssl = primary.options_.ssl;
  s->options_.superuser_password = primary.options_.superuser_password;
  GiveToTestUser(s->data_dir_);
  Status started;
  for (int attempt = 0; attempt < 5; ++attempt) {
    s->port_ = FreePort();
    started = s->StartAgain();
    if (started.ok()) return s;
  }
  return started;
}

PgServer::~PgServer() {
  if (running_) {
    if (!Stop().ok()) Kill();
  }
  RemoveTree(root_dir_);
}

std::string PgServer::Conninfo(const std::string& dbname, const std::string& user) const {
  // Quoted as libpq reads a value: names with spaces and quotes are test cases too.
  auto quote = [](const std::string& v) {
    std::string out = "'";
    for (char ch : v) {
      if (ch == '\'' || ch == '\\') out += '\\';
      out += ch;
    }
    return out + "'";
  };
  std::string c =
      fmt::format("host=127.0.0.1 port={} user={} dbname={}", port_, quote(user), quote(dbname));
  if (!options_.superuser_password.empty() && user == "postgres") {
    c += " password=" + options_.superuser_password;
  }
  return c;
}

Result<PgConn> PgServer::Connect(const std::string& dbname, const std::string& user) const {
  ConnectOptions o;
  o.label = fmt::format("test server {}", options_.major);
  return PgConn::Connect(Conninfo(dbname, user), o);
}

Status PgServer::Exec(const std::string& sql, const std::string& dbname) const {
  PGB_ASSIGN_OR_RETURN(PgConn c, Connect(dbname));
  return c.Run(sql);
}

Result<std::string> PgServer::Query(const std::string& sql, const std::string& dbname) const {
  PGB_ASSIGN_OR_RETURN(PgConn c, Connect(dbname));
  return c.QueryValue(sql);
}

Status PgServer::StartAgain() {
  ProcessOptions as_user;
  as_user.as_test_user = true;
  std::string log = root_dir_ + "/server.log";
  // The postmaster outlives pg_ctl and would inherit a capture pipe, so that reading it would
  // never end: pg_ctl's own output goes to a file instead.
  std::string out = root_dir_ + "/pg_ctl.out";
  as_user.stdout_path = out;
  std::filesystem::remove(out);
  CommandResult r = RunCommand({bin_dir_ + "/pg_ctl", "-D", data_dir_, "-l", log, "-w", "-t", "60",
                                "-o", fmt::format("-p {}", port_), "start"},
                               as_user);
  r.output = ReadFile(out);
  if (r.exit_code != 0) {
    return Status::Error(ErrorCode::kInternal,
                         fmt::format("PostgreSQL {} did not start on port {}: {}\n{}",
                                     options_.major, port_, r.output, LogTail()));
  }
  running_ = true;
  return Status::Ok();
}

Status PgServer::Stop() {
  ProcessOptions as_user;
  as_user.as_test_user = true;
  CommandResult r = RunCommand(
      {bin_dir_ + "/pg_ctl", "-D", data_dir_, "-m", "fast", "-w", "-t", "60", "stop"}, as_user);
  if (r.exit_code != 0) {
    return Status::Error(ErrorCode::kInternal, fmt::format("pg_ctl stop failed: {}", r.output));
  }
  running_ = false;
  return Status::Ok();
}

void PgServer::Kill() {
  std::string pidfile = ReadFile(data_dir_ + "/postmaster.pid");
  pid_t pid = static_cast<pid_t>(std::atol(pidfile.c_str()));
  if (pid > 0) {
    kill(pid, SIGKILL);
    // Wait for the postmaster and its children to be gone so the port and shared memory free up.
    for (int i = 0; i < 500 && kill(pid, 0) == 0; ++i) usleep(10000);
    usleep(200000);
  }
  running_ = false;
}

std::string PgServer::LogTail(size_t bytes) const {
  std::string log = ReadFile(root_dir_ + "/server.log");
  return log.size() > bytes ? log.substr(log.size() - bytes) : log;
}

}  // namespace pgbaton::testing

#include "tests/support/cutover_fixture.h"

#include <fmt/format.h>
#include <signal.h>

#include <cstdlib>

#include "tests/support/pg_test.h"

namespace pgbaton::testing::cutover {
namespace {
std::string Describe(const Result<std::string>& r) { return r.ok() ? *r : r.status().message(); }
}  // namespace

Status Migration::Start(int source_major, int target_major, bool with_bouncer,
                        const std::string& roles_sql) {
  PgServerOptions so;
  so.major = source_major;
  PGB_ASSIGN_OR_RETURN(source, PgServer::Start(so));
  PgServerOptions to;
  to.major = target_major;
  PGB_ASSIGN_OR_RETURN(target, PgServer::Start(to));
  for (PgServer* s : {source.get(), target.get()}) {
    PGB_RETURN_IF_ERROR(s->Exec("create database app"));
    if (!roles_sql.empty()) PGB_RETURN_IF_ERROR(s->Exec(roles_sql));
  }
  // pgbench's data is deterministic; pgbench_history gets a key (and so a sequence the writers
  // use); probe is the probe's table.
  const std::string ddl =
      "alter table pgbench_history add column id bigserial primary key;"
      "create table probe (id bigserial primary key, n bigint not null, "
      "at timestamptz not null default clock_timestamp());"
      "grant all on all tables in schema public to public;"
      "grant all on all sequences in schema public to public;";
  // Debian's pg_dump 15 cannot dump a newer server: then both sides are built the same way.
  bool dump = source->major() <= 15;
  for (PgServer* s : {source.get(), target.get()}) {
    if (dump && s == target.get()) break;
    CommandResult init = RunCommand({"pgbench", "-i", "-q", "-s", "1", s->Conninfo("app")});
    if (init.exit_code != 0) {
      return Status::Error(ErrorCode::kInternal, "pgbench -i failed: " + init.output);
    }
    PGB_RETURN_IF_ERROR(s->Exec(ddl, "app"));
  }
  if (dump) {
    PGB_RETURN_IF_ERROR(testing::DumpAndRestore(*source, *target, "app", /*schema_only=*/false));
  }
  queue_dir = testing::MakeTempDir("pgbaton-cutover-q");
  run_log = queue_dir + ".run.log";
  ProcessOptions po;
  po.stdout_path = run_log;
  std::vector<std::string> run_argv = {
      PgbatonBinary(),         "run",         "--source", source->Conninfo("app"), "--target",
      target->Conninfo("app"), "--queue-dir", queue_dir,  "--group-delay-ms",      "100"};
  if (getenv("PGBATON_TEST_RUN_GDB") != nullptr) {
    run_argv.insert(run_argv.begin(), {"gdb", "-batch", "-ex", "run", "-ex", "bt", "--args"});
  }
  run = ChildProcess(run_argv, po);
  // Ready when the walsender streams (a slot is also active while it is being created) and the
  // applier's sessions are connected to the target.
  auto ready = [&] {
    auto a = source->Query(
        "select count(*) from pg_stat_replication where application_name like 'pgbaton%' and "
        "state = 'streaming'",
        "app");
    auto b = target->Query(
        "select count(*) from pg_stat_activity where application_name like 'pgbaton applier%'",
        "app");
    return a.ok() && *a == "1" && b.ok() && *b != "0";
  };
  for (int i = 0; i < 600 && !ready(); ++i) {
    if (!run.running()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!ready()) {
    return Status::Error(
        ErrorCode::kTimeout,
        fmt::format("pgbaton run did not start streaming (running: {}, signal {}, slots: {}): {}",
                    run.running(), run.term_signal(),
                    Describe(source->Query("select string_agg(slot_name || ' ' || active, ',') "
                                           "from pg_replication_slots")),
                    testing::ReadFile(run_log)));
  }
  if (with_bouncer) {
    testing::PgBouncerOptions bo;
    bo.databases["app"] = fmt::format("host=127.0.0.1 port={} dbname=app", source->port());
    bo.users = {"postgres", "app_rw"};
    PGB_ASSIGN_OR_RETURN(bouncer, testing::PgBouncer::Start(bo));
  }
  return Status::Ok();
}

void Migration::StopRun() {
  bool ended = !run.running() && (run.exit_code() != -1 || run.term_signal() != 0);
  if (ended && !run_stopped_) {
    // `pgbaton run` never ends by itself without --stop-at: say so where the test log shows it.
    std::fprintf(stderr, "pgbaton run had ended by itself: exit code %d, signal %d; its log:\n%s\n",
                 run.exit_code(), run.term_signal(), testing::ReadFile(run_log).c_str());
  }
  run_stopped_ = true;
  run.Signal(SIGTERM);
  if (run.Wait(10000) == -2) run.Kill();
}

Migration::~Migration() {
  StopRun();
  bouncer.reset();
  if (!queue_dir.empty()) {
    testing::RemoveTree(queue_dir);
    testing::RemoveTree(queue_dir + ".reverse");
  }
}

namespace {

std::vector<std::string> CutoverArgv(const Migration& m, const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {
      PgbatonBinary(),           "cutover",     "--source", m.source->Conninfo("app"), "--target",
      m.target->Conninfo("app"), "--queue-dir", m.queue_dir};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

// State 'T' in /proc/PID/stat: the process is stopped (SIGSTOP).
bool Stopped(pid_t pid) {
  std::string stat = testing::ReadFile(fmt::format("/proc/{}/stat", pid));
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'T';
}

}  // namespace

CommandResult Migration::Cutover(const std::vector<std::string>& extra) const {
  ProcessOptions po;
  po.stderr_path = queue_dir + ".cutover.err";
  CommandResult r = RunCommand(CutoverArgv(*this, extra), po);
  r.output += "\nstderr:\n" + testing::ReadFile(po.stderr_path);
  AppendRunState(&r);
  return r;
}

CommandResult Migration::CutoverPausedAt(const std::vector<std::string>& extra,
                                         const std::string& point,
                                         const std::function<void()>& action, bool* paused) const {
  std::vector<std::string> argv = CutoverArgv(*this, extra);
  argv.insert(argv.end(), {"--pause-at", point});
  ProcessOptions po;
  po.stdout_path = queue_dir + ".cutover.out";
  po.stderr_path = queue_dir + ".cutover.err";
  ChildProcess cutover(argv, po);
  *paused = false;
  for (int i = 0; i < 1200 && !*paused && cutover.running(); ++i) {
    *paused = Stopped(cutover.pid());
    if (!*paused) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (*paused) {
    action();
    cutover.Signal(SIGCONT);
  }
  if (cutover.Wait(120000) == -2) cutover.Kill();
  CommandResult r;
  r.exit_code = cutover.exit_code();
  r.signal = cutover.term_signal();
  r.output = testing::ReadFile(po.stdout_path) + "\nstderr:\n" + testing::ReadFile(po.stderr_path);
  AppendRunState(&r);
  return r;
}

void Migration::AppendRunState(CommandResult* r) const {
  auto& self = const_cast<Migration&>(*this);
  if (r->exit_code != 0) {
    bool running = self.run.running();
    r->output +=
        fmt::format("\n(pgbaton run running: {}, exit code {}, signal {}); run log:\n{}", running,
                    self.run.exit_code(), self.run.term_signal(), testing::ReadFile(run_log));
  }
}

void ReverseStream::Stop() {
  if (pid_ <= 0) return;
  if (kill(pid_, SIGTERM) == 0) {
    for (int i = 0; i < 100 && kill(pid_, 0) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (kill(pid_, 0) == 0) kill(pid_, SIGKILL);
  }
  pid_ = -1;
}

Probe::Probe(std::function<std::string()> conninfo, std::string)
    : conninfo_(std::move(conninfo)), thread_([this] { Loop(); }) {}

Probe::~Probe() { Stop(); }

void Probe::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::set<int64_t> Probe::acknowledged() {
  std::lock_guard<std::mutex> l(mu_);
  return acked_;
}

std::string Probe::first_error() {
  std::lock_guard<std::mutex> l(mu_);
  return first_error_;
}

void Probe::Loop() {
  int64_t n = 0;
  std::optional<PgConn> conn;
  auto last_ack = std::chrono::steady_clock::now();
  while (!stop_) {
    if (!conn || !conn->connected()) {
      ConnectOptions co;
      co.label = "probe";
      co.connect_timeout_seconds = 5;
      auto c = PgConn::Connect(conninfo_(), co);
      if (!c.ok()) {
        errors_++;
        std::lock_guard<std::mutex> l(mu_);
        if (first_error_.empty()) first_error_ = c.status().message();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      conn.emplace(std::move(*c));
    }
    ++n;
    auto r = conn->Exec(fmt::format("insert into probe (n) values ({})", n));
    auto now = std::chrono::steady_clock::now();
    if (r.ok()) {
      int64_t gap = std::chrono::duration_cast<std::chrono::milliseconds>(now - last_ack).count();
      if (gap > largest_gap_ms_) largest_gap_ms_ = gap;
      last_ack = now;
      std::lock_guard<std::mutex> l(mu_);
      acked_.insert(n);
    } else {
      errors_++;
      std::lock_guard<std::mutex> l(mu_);
      if (first_error_.empty()) first_error_ = r.status().message();
      conn.reset();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
}

Result<std::set<int64_t>> Ids(PgServer& server, const std::string& table) {
  PGB_ASSIGN_OR_RETURN(PgConn c, server.Connect("app"));
  PGB_ASSIGN_OR_RETURN(
      PgResult r, c.Exec(fmt::format("select {} from {}", table == "probe" ? "n" : "id", table)));
  std::set<int64_t> out;
  for (int i = 0; i < r.rows(); ++i) out.insert(r.GetInt(i, 0));
  return out;
}

}  // namespace pgbaton::testing::cutover

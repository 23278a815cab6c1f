// A password given on the command line is not visible in `ps`: a real `pgbaton copy` and
// `pgbaton run` against servers that demand scram-sha-256, with the password inside --source and
// --target in URI and key/value form (with a space and a quote in it, one as `--flag=value`).
// /proc/PID/cmdline of pgbaton and of the pg_dump and psql children it starts must not hold the
// password, and the migration must still work (the children got it through their environment).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/pg_server.h"
#include "tests/support/pg_test.h"
#include "tests/support/process.h"

namespace pgbaton::testing {
namespace {

constexpr const char* kPgBin = "/usr/lib/postgresql/15/bin";

// /proc/PID/cmdline with the NULs between arguments shown as spaces ("" when gone).
std::string Cmdline(pid_t pid) {
  std::string c = ReadFile(fmt::format("/proc/{}/cmdline", pid));
  for (char& ch : c) {
    if (ch == '\0') ch = ' ';
  }
  return c;
}

// Children of `parent`: pid -> command name.
std::map<pid_t, std::string> ChildrenOf(pid_t parent) {
  std::map<pid_t, std::string> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat = ReadFile(e.path().string() + "/stat");
    size_t open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close + 4 > stat.size()) {
      continue;
    }
    // "pid (comm) state ppid ..."
    pid_t ppid = std::atoi(stat.c_str() + close + 4);
    if (ppid == parent) out[std::stoi(name)] = stat.substr(open + 1, close - open - 1);
  }
  return out;
}

std::string Digest(const PgServer& s) { return TableDigest(s, "app", "items"); }

// A pg_dump or psql that waits a second before it becomes the real one: the same argv, the same
// environment, long enough alive for the test to read its /proc/PID/cmdline every time.
std::string SlowWrapper(const std::string& dir, const std::string& program) {
  std::string path = dir + "/" + program;
  WriteFile(path, fmt::format("#!/bin/sh\nsleep 1\nexec {}/{} \"$@\"\n", kPgBin, program));
  ::chmod(path.c_str(), 0755);
  return path;
}

TEST(ArgvSecrets, CopyAndRunKeepPasswordsOutOfEveryCommandLine) {
  ASSERT_EQ(std::getenv("PGPASSWORD"), nullptr) << "the test needs libpq to find no password";
  const std::string marker = fmt::format("Mk{}q", ::getpid());
  // A superuser password: loopback TCP then asks every role for scram-sha-256.
  auto source = StartServer(15, {.superuser_password = "Su" + marker});
  auto target = StartServer(17, {.superuser_password = "Tu" + marker});
  ASSERT_TRUE(source && target);
  std::string dir = MakeTempDir("pgbaton-argv-pw");
  // A role of each side with a password holding a space and a quote.
  const std::string password = "se cret'" + marker;
  for (PgServer* s : {source.get(), target.get()}) {
    ASSERT_TRUE(s->Exec(fmt::format("create role mover login superuser replication password "
                                    "'se cret''{}'",
                                    marker))
                    .ok());
    ASSERT_TRUE(s->Exec("create database app owner mover").ok());
  }
  ASSERT_TRUE(source
                  ->Exec("create table items (id int primary key, v text); "
                         "insert into items select g, md5(g::text) from generate_series(1, 2000) g",
                         "app")
                  .ok());
  // Source as a URI (the password percent-encoded), target as key=value (the password quoted).
  const std::string src_uri =
      fmt::format("postgresql://mover:se%20cret%27{}@127.0.0.1:{}/app", marker, source->port());
  const std::string tgt_kv =
      fmt::format("host=127.0.0.1 port={} user=mover dbname=app password='se cret\\'{}'",
                  target->port(), marker);
  ProcessOptions po;
  po.env = {{"PGPASSFILE", dir + "/no-such-pgpass"}};  // the password comes from the flags only
  po.stdout_path = dir + "/copy.out";
  po.stderr_path = dir + "/copy.err";

  // copy: pgbaton and each pg_dump / psql it starts.
  std::string pg_dump = SlowWrapper(dir, "pg_dump"), psql = SlowWrapper(dir, "psql");
  ChildProcess copy({PgbatonBinary(), "copy", "--source", src_uri, "--target", tgt_kv,
                     "--queue-dir", dir + "/queue", "--pg-dump", pg_dump, "--psql", psql},
                    po);
  std::map<std::string, std::set<pid_t>> seen;  // command name -> children seen
  std::string copy_cmdline;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
  while (copy.running() && std::chrono::steady_clock::now() < deadline) {
    for (const auto& [pid, comm] : ChildrenOf(copy.pid())) {
      std::string c = Cmdline(pid);
      if (c.empty()) continue;  // gone meanwhile
      // The wrapper (sh) or, after its exec, the real program: either way the argv pgbaton gave.
      seen[c.find("pg_dump") != std::string::npos ? "pg_dump"
           : c.find("psql") != std::string::npos  ? "psql"
                                                  : comm]
          .insert(pid);
      EXPECT_EQ(c.find(marker), std::string::npos) << comm << " child's command line: " << c;
      EXPECT_EQ(c.find("se%20cret"), std::string::npos) << comm << " child's command line: " << c;
      EXPECT_EQ(c.find("se cret"), std::string::npos) << comm << " child's command line: " << c;
      // By now pgbaton is well past parsing its flags.
      copy_cmdline = Cmdline(copy.pid());
      EXPECT_EQ(copy_cmdline.find(marker), std::string::npos) << copy_cmdline;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(copy.Wait(1000), 0) << ReadFile(po.stdout_path) << ReadFile(po.stderr_path);
  EXPECT_GE(seen["pg_dump"].size(), 2u) << "pg_dump --version and the dump itself were not caught";
  EXPECT_GE(seen["psql"].size(), 1u) << "the schema restore was not caught";
  // What was read is pgbaton's own command line, scrubbed in place: same shape, stars instead.
  EXPECT_NE(copy_cmdline.find("copy --source postgresql://mover:"), std::string::npos)
      << copy_cmdline;
  EXPECT_NE(copy_cmdline.find("password='"), std::string::npos) << copy_cmdline;
  EXPECT_NE(copy_cmdline.find("****"), std::string::npos) << copy_cmdline;
  EXPECT_EQ(Digest(*source), Digest(*target));

  // run, with --source=URI as one argument: stream and apply changes made after the copy.
  ProcessOptions run_po = po;
  run_po.stdout_path = dir + "/run.out";
  run_po.stderr_path = dir + "/run.err";
  ChildProcess run({PgbatonBinary(), "run", "--source=" + src_uri, "--target", tgt_kv,
                    "--queue-dir", dir + "/queue"},
                   run_po);
  ASSERT_TRUE(source
                  ->Exec("insert into items select g, 'new' from generate_series(2001, 2500) g; "
                         "update items set v = 'changed' where id % 7 = 0; "
                         "delete from items where id % 11 = 0",
                         "app")
                  .ok());
  bool same = false;
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!same && run.running() && std::chrono::steady_clock::now() < deadline) {
    same = Digest(*source) == Digest(*target);
    if (!same) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(same) << "source " << Digest(*source) << ", target " << Digest(*target) << "\n"
                    << ReadFile(run_po.stderr_path);
  // The run applied through its own connections: it is past parsing, and its argv is scrubbed.
  std::string run_cmdline = Cmdline(run.pid());
  ASSERT_FALSE(run_cmdline.empty());
  EXPECT_EQ(run_cmdline.find(marker), std::string::npos) << run_cmdline;
  EXPECT_EQ(run_cmdline.find("se%20cret"), std::string::npos) << run_cmdline;
  EXPECT_EQ(run_cmdline.find("se cret"), std::string::npos) << run_cmdline;
  EXPECT_NE(run_cmdline.find("run --source=postgresql://mover:******"), std::string::npos)
      << run_cmdline;
  EXPECT_NE(run_cmdline.find("--queue-dir"), std::string::npos) << run_cmdline;
  // Nor does any log line carry it.
  run.Signal(SIGTERM);
  EXPECT_EQ(run.Wait(30000), 0) << ReadFile(run_po.stderr_path);
  for (const std::string& f :
       {po.stdout_path, po.stderr_path, run_po.stdout_path, run_po.stderr_path}) {
    EXPECT_EQ(ReadFile(f).find(marker), std::string::npos) << f;
  }
  RemoveTree(dir);
}

}  // namespace
}  // namespace pgbaton::testing

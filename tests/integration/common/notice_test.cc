// Server NOTICEs (`... does not exist, skipping`) on a pgbaton connection are debug log lines
// naming the connection, never loose lines on stderr in the middle of a verb's output (they
// were: libpq's default notice processor prints them there, and they showed up in cutover's).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "common/log.h"
#include "common/pg.h"
#include "tests/support/pg_server.h"
#include "tests/support/pg_test.h"

namespace pgbaton::testing {
namespace {

std::string DrainPipe(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

TEST(ServerNoticeTest, NoticesAreDebugLogLinesNotStderr) {
  auto server = StartServer(17);
  ASSERT_TRUE(server);

  int log_pipe[2], err_pipe[2];
  ASSERT_EQ(pipe(log_pipe), 0);
  ASSERT_EQ(pipe(err_pipe), 0);
  fcntl(log_pipe[0], F_SETFL, O_NONBLOCK);
  fcntl(err_pipe[0], F_SETFL, O_NONBLOCK);
  LogOptions saved_log = GetLogOptions();
  LogOptions lo;
  lo.min_level = LogLevel::kDebug;
  lo.fd = log_pipe[1];
  SetLogOptions(lo);
  int saved_err = dup(2);
  ASSERT_GE(saved_err, 0);
  dup2(err_pipe[1], 2);

  ConnectOptions co;
  co.label = "target";
  auto conn = PgConn::Connect(server->Conninfo(), co);
  Status ran = conn.ok() ? conn->Run("DROP TABLE IF EXISTS no_such_table_here") : conn.status();

  fflush(stderr);
  dup2(saved_err, 2);
  close(saved_err);
  SetLogOptions(saved_log);
  std::string err = DrainPipe(err_pipe[0]), log = DrainPipe(log_pipe[0]);
  for (int fd : {log_pipe[0], log_pipe[1], err_pipe[0], err_pipe[1]}) close(fd);

  ASSERT_TRUE(ran.ok()) << ran.ToString();
  EXPECT_EQ(err.find("NOTICE"), std::string::npos) << "stderr: " << err;
  EXPECT_NE(log.find("server notice"), std::string::npos) << log;
  EXPECT_NE(log.find("server=target"), std::string::npos) << log;
  EXPECT_NE(log.find("no_such_table_here"), std::string::npos) << log;
}

}  // namespace
}  // namespace pgbaton::testing

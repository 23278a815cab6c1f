// A RocksDB queue writer (queue_crash_writer) is killed with SIGKILL in the middle of its appends,
// three times; every transaction it reported durable must be there, whole, and nothing torn.
#include <gtest/gtest.h>
#include <signal.h>

#include "tests/integration/queue/crash_check.h"

namespace pgbaton::queue::crash {
namespace {

TEST(QueueCrashTest, RocksDbWriterKilledMidAppend) {
  std::string root = MakeTempDir("pgbaton-crash");
  std::string dir = root + "/q", report = root + "/report";
  for (int round = 0; round < 3; ++round) {
    ChildProcess child({PGBATON_CRASH_WRITER, "--rocksdb", dir, report}, OutputTo(root + "/out"));
    WaitForProgress(&child, report, 150);
    child.Signal(SIGKILL);
    child.Wait(10000);
    QueueOptions o;
    o.dir = dir;
    ExpectAllReportedPresent(Reported(report), CheckQueue(o));
    o.read_only = true;  // the read-only view sees the same
    ExpectAllReportedPresent(Reported(report), CheckQueue(o));
  }
  EXPECT_GE(Reported(report).size(), 450u);
  RemoveTree(root);
}

}  // namespace
}  // namespace pgbaton::queue::crash

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
    {
      // Another process holds the queue: a second writer is refused and told who holds it.
      QueueOptions w;
      w.dir = dir;
      auto second = WorkQueue::Open(w);
      ASSERT_FALSE(second.ok());
      EXPECT_EQ(second.status().code(), ErrorCode::kQueueLocked);
      EXPECT_NE(second.status().message().find("(pid " + std::to_string(child.pid()) + ")"),
                std::string::npos)
          << second.status().message();
    }
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

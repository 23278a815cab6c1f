// A Kafka queue writer (queue_crash_writer) is killed with SIGKILL mid-stream, with the broker
// restarted (and once killed) meanwhile; every transaction reported durable must be there, whole.
#include <gtest/gtest.h>
#include <signal.h>

#include "tests/integration/queue/crash_check.h"

namespace pgbaton::queue::crash {
namespace {

TEST(QueueCrashTest, KafkaWriterKilledAndBrokerRestartedMidStream) {
  auto broker = KafkaBroker::Start();
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  std::string root = MakeTempDir("pgbaton-crash");
  std::string report = root + "/report";
  QueueOptions o;
  o.kafka_brokers = (*broker)->Brokers();
  o.kafka_topic = "crash";
  for (int round = 0; round < 2; ++round) {
    ChildProcess child({PGBATON_CRASH_WRITER, "--kafka", o.kafka_brokers, o.kafka_topic, report},
                       OutputTo(root + "/out"));
    WaitForProgress(&child, report, 50);
    if (round == 0) {
      ASSERT_TRUE((*broker)->Stop().ok());
      std::this_thread::sleep_for(500ms);
      ASSERT_TRUE((*broker)->StartAgain().ok()) << (*broker)->LogTail();
      WaitForProgress(&child, report, 50);
    }
    child.Signal(SIGKILL);
    child.Wait(10000);
    ExpectAllReportedPresent(Reported(report), CheckQueue(o));
  }
  // Killed while the broker is down: appends in flight are not reported, and nothing is lost.
  ChildProcess child({PGBATON_CRASH_WRITER, "--kafka", o.kafka_brokers, o.kafka_topic, report},
                     OutputTo(root + "/out"));
  WaitForProgress(&child, report, 20);
  (*broker)->Kill();
  std::this_thread::sleep_for(300ms);
  child.Signal(SIGKILL);
  child.Wait(10000);
  ASSERT_TRUE((*broker)->StartAgain().ok()) << (*broker)->LogTail();
  ExpectAllReportedPresent(Reported(report), CheckQueue(o));
  RemoveTree(root);
}

}  // namespace
}  // namespace pgbaton::queue::crash

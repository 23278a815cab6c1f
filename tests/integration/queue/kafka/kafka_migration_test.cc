// A whole migration over a real Kafka broker, with every verb on the Kafka queue flags: `copy`
// (killed once mid-data and resumed, so the tables carry two sync LSNs, recorded in the meta
// topic) while a writer runs, `stream` and `apply` as two processes, a table created on source
// and target mid-stream (the applier meets a relation it has not seen), `status`, and a cutover
// (read-only fence, command flip) whose sentinel table is also new to the applier. Source and
// target must then be equal row for row: nothing lost, nothing applied twice.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "queue/work_queue.h"
#include "tests/support/copy_fixture.h"
#include "tests/support/kafka_broker.h"
#include "tests/support/pg_server.h"
#include "tests/support/pg_test.h"
#include "tests/support/process.h"

namespace pgbaton::testing {
namespace {

constexpr const char* kSchema = R"SQL(
CREATE TABLE acc (id int PRIMARY KEY, bal int NOT NULL, note text);
INSERT INTO acc SELECT i, 0, repeat('n', 50) FROM generate_series(1, 30000) i;
CREATE TABLE small (k text PRIMARY KEY, v int);
CREATE TABLE other (id int PRIMARY KEY, v int);
)SQL";

using copy::TableDigest;

// Options that send the command's stderr to `path` (stdout is captured).
ProcessOptions StderrTo(const std::string& path) {
  ProcessOptions o;
  o.stderr_path = path;
  return o;
}

TEST(KafkaMigrationTest, ResumedCopyNewTableAndCutoverOverKafka) {
  auto broker = KafkaBroker::Start();
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  const std::string brokers = (*broker)->Brokers();
  const std::string topic = "k1";
  std::unique_ptr<PgServer> src, dst;
  ASSERT_NO_FATAL_FAILURE(StartSourceAndTarget(kSchema, &src, &dst));
  const std::string source = src->Conninfo("app"), target = dst->Conninfo("app");
  const std::vector<std::string> kafka = {"--kafka-brokers", brokers, "--kafka-topic", topic};
  auto with_kafka = [&](std::vector<std::string> argv) {
    argv.insert(argv.end(), kafka.begin(), kafka.end());
    return argv;
  };

  // Small transactions on every table until told to stop.
  BackgroundWriter writer(src->Conninfo("app"), 7, [](std::mt19937& rng, int committed) {
    int id = 1 + static_cast<int>(rng() % 30000);
    return fmt::format(
        "BEGIN; UPDATE acc SET bal = bal + 1 WHERE id = {0}; "
        "INSERT INTO small VALUES ('k{1}', 1) ON CONFLICT (k) DO UPDATE SET v = small.v + 1; "
        "INSERT INTO other VALUES ({2}, {0}) ON CONFLICT (id) DO UPDATE SET v = excluded.v; "
        "COMMIT",
        id, rng() % 100, committed % 500);
  });

  // The copy records its progress and sync LSNs in the Kafka meta topic. Killed once the big
  // table is done: the small ones are copied again at a later snapshot while the writer writes.
  std::vector<std::string> copy =
      with_kafka({PgbatonBinary(), "copy", "--source", source, "--target", target, "--jobs", "1",
                  "--chunk-bytes", "262144", "--progress", "json"});
  std::vector<std::string> crash = copy;
  crash.insert(crash.end(), {"--crash-at", "table:public.acc"});
  CommandResult killed = RunCommand(crash);
  EXPECT_EQ(killed.signal, SIGKILL) << killed.output;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CommandResult resumed = RunCommand(copy);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;

  {
    queue::QueueOptions qo;
    qo.kafka_brokers = brokers;
    qo.kafka_topic = topic;
    qo.read_only = true;
    qo.create_if_missing = false;
    auto q = queue::WorkQueue::Open(qo);
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    auto meta = (*q)->ListMeta("sync_lsn/");
    ASSERT_TRUE(meta.ok()) << meta.status().ToString();
    ASSERT_EQ(meta->size(), 3u);
    std::set<std::string> lsns;
    for (const auto& [k, v] : *meta) lsns.insert(v);
    EXPECT_EQ(lsns.size(), 2u) << "the tables should carry the first and the resumed snapshot";
  }

  ProcessOptions spo, apo;
  std::string logs = MakeTempDir("kafka-migration");
  spo.stdout_path = logs + "/stream.log";
  apo.stdout_path = logs + "/apply.log";
  ChildProcess stream(with_kafka({PgbatonBinary(), "stream", "--source", source}), spo);
  ChildProcess apply(
      with_kafka({PgbatonBinary(), "apply", "--target", target, "--group-delay-ms", "50"}), apo);
  auto logs_text = [&] {
    return "stream:\n" + ReadFile(spo.stdout_path) + "\napply:\n" + ReadFile(apo.stdout_path);
  };

  // Mid-stream, a new table on both sides; its rows come through Kafka.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const char* fresh = "CREATE TABLE fresh (id int PRIMARY KEY, v text)";
  ASSERT_TRUE(dst->Exec(fresh, "app").ok());
  ASSERT_TRUE(src->Exec(fresh, "app").ok());
  ASSERT_TRUE(
      src->Exec("INSERT INTO fresh SELECT i, md5(i::text) FROM generate_series(1, 500) i", "app")
          .ok());
  ASSERT_TRUE(src->Exec("UPDATE fresh SET v = 'changed' WHERE id % 7 = 0", "app").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  writer.Stop();
  ASSERT_EQ(writer.error(), "");
  EXPECT_GT(writer.committed(), 20);

  const std::vector<std::string> tables = {"public.acc", "public.small", "public.other",
                                           "public.fresh"};
  auto same = [&] {
    for (const auto& t : tables) {
      if (TableDigest(*src, "app", t) != TableDigest(*dst, "app", t)) return false;
    }
    return true;
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (!same() && apply.running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(same()) << "the target did not catch up (apply running: " << apply.running() << ")\n"
                      << logs_text();

  // status reads the same Kafka queue.
  CommandResult status =
      RunCommand(with_kafka({PgbatonBinary(), "status", "--json"}), StderrTo("/dev/null"));
  EXPECT_EQ(status.exit_code, 0) << status.output;

  // A dry run first: it creates pgbaton.cutover_sentinel, so the real run's CREATE ... IF NOT
  // EXISTS draws NOTICEs from both servers, which must not reach the cutover's output.
  CommandResult dry = RunCommand(
      with_kafka({PgbatonBinary(), "cutover", "--source", source, "--target", target, "--fence",
                  "readonly", "--flip", "command:true", "--max-lag", "10s", "--dry-run"}));
  EXPECT_EQ(dry.exit_code, 0) << dry.output << "\n" << logs_text();

  // The cutover's sentinel table is new to the applier too.
  CommandResult cut = RunCommand(
      with_kafka({PgbatonBinary(), "cutover", "--source", source, "--target", target, "--fence",
                  "readonly", "--flip", "command:true", "--max-lag", "10s", "--json"}),
      StderrTo(logs + "/cutover.err"));
  EXPECT_EQ(cut.exit_code, 0) << cut.output << "\n"
                              << ReadFile(logs + "/cutover.err") << "\n"
                              << logs_text();
  EXPECT_EQ(ReadFile(logs + "/cutover.err").find("NOTICE"), std::string::npos)
      << ReadFile(logs + "/cutover.err");
  auto report = nlohmann::json::parse(cut.output, nullptr, false);
  ASSERT_FALSE(report.is_discarded()) << cut.output;
  EXPECT_EQ(report["ok"], true);
  EXPECT_EQ(report["stored_at"], "kafka topic \"k1.meta\" key m/cutover/last") << cut.output;
  EXPECT_TRUE(report["write_pause_ms"].is_number_integer()) << cut.output;
  EXPECT_FALSE(report["sentinel_lsn"].get<std::string>().empty()) << cut.output;

  stream.Signal(SIGTERM);
  apply.Signal(SIGTERM);
  if (stream.Wait(15000) == -2) stream.Kill();
  if (apply.Wait(15000) == -2) apply.Kill();
  for (const auto& t : tables) {
    EXPECT_EQ(TableDigest(*src, "app", t), TableDigest(*dst, "app", t)) << t;
  }
  EXPECT_EQ(TableDigest(*src, "app", "pgbaton.cutover_sentinel"),
            TableDigest(*dst, "app", "pgbaton.cutover_sentinel"));
  EXPECT_EQ(ReadFile(apo.stdout_path).find("is not in kafka topic"), std::string::npos)
      << logs_text();
  // The applier skipped the changes already in the re-copied tables' rows: the resumed copy's
  // sync LSNs reached it through the meta topic.
  std::smatch m;
  std::string apply_log = ReadFile(apo.stdout_path);
  ASSERT_TRUE(std::regex_search(apply_log, m, std::regex("filtered_by_sync_lsn=([0-9]+)")))
      << logs_text();
  EXPECT_GT(std::stoll(m[1].str()), 0) << logs_text();
  RemoveTree(logs);
}

}  // namespace
}  // namespace pgbaton::testing

// The Kafka WorkQueue against a real one-node KRaft broker (tests/support/kafka_broker.h): the
// WorkQueueConformance suite (tests/support/queue/work_queue_conformance.h), and what only this
// backend meets: queue inspect reading the topic, a broker restart mid-stream, no broker at all.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "queue/kafka_client.h"
#include "queue/work_queue.h"
#include "tests/support/kafka_broker.h"
#include "tests/support/queue/work_queue_conformance.h"
#include "tests/support/queue_records.h"

namespace pgbaton::queue {
namespace {

using namespace std::chrono_literals;
using pgbaton::testing::KafkaBroker;
using testing::AddTxn;
using testing::MakeRelation;
using testing::ReadAll;
using testing::WorkQueueConformance;

constexpr char kTopic[] = "pgbaton_test";
constexpr char kMetaTopic[] = "pgbaton_test.meta";

QueueOptions OptionsFor(const KafkaBroker& broker) {
  QueueOptions o;
  o.kafka_brokers = broker.Brokers();
  o.kafka_topic = kTopic;
  o.kafka_timeout_ms = 20000;
  return o;
}

// The backend of the conformance suite: a broker per test; the raw writes are messages produced
// to the meta topic as another build would have written them.
class KafkaBackend : public testing::QueueBackend {
 public:
  static std::unique_ptr<testing::QueueBackend> Make() { return std::make_unique<KafkaBackend>(); }
  Status Start() override {
    PGB_ASSIGN_OR_RETURN(broker_, KafkaBroker::Start());
    return Status::Ok();
  }
  QueueOptions Options() const override { return OptionsFor(*broker_); }
  QueueOptions MissingQueueOptions() const override {
    QueueOptions o = Options();
    o.kafka_topic = "pgbaton_other";
    o.read_only = true;
    return o;
  }
  Status SetStoredFormatVersion(const std::string& version) override {
    return ProduceMeta("s/format_version", version);
  }
  Result<std::string> StoredFormatVersion() override {
    PGB_ASSIGN_OR_RETURN(auto consumer, kafka::Consumer::Create(broker_->Brokers(), 10000));
    int64_t low, high;
    PGB_RETURN_IF_ERROR(consumer->Watermarks(kMetaTopic, &low, &high));
    PGB_RETURN_IF_ERROR(consumer->Assign(kMetaTopic, RD_KAFKA_OFFSET_BEGINNING));
    std::string version;
    PGB_RETURN_IF_ERROR(consumer->ReadUntil(high, [&](kafka::Message& m, bool*) {
      if (m.key == "s/format_version") version = m.value;
      return Status::Ok();
    }));
    return version;
  }
  Status PutStoredRelation(RelationId id, uint32_t version, const std::string& bytes) override {
    return ProduceMeta(fmt::format("r/{}/{}", id.value, version), bytes);
  }

 private:
  Status ProduceMeta(const std::string& key, const std::string& value) {
    PGB_ASSIGN_OR_RETURN(auto producer, kafka::Producer::Create(broker_->Brokers(), 10000));
    PGB_RETURN_IF_ERROR(producer->Produce(kMetaTopic, key, &value));
    return producer->Flush(kMetaTopic, nullptr);
  }

  std::unique_ptr<KafkaBroker> broker_;
};

INSTANTIATE_TEST_SUITE_P(Kafka, WorkQueueConformance,
                         ::testing::Values(testing::BackendParam{"Kafka", &KafkaBackend::Make}));

class KafkaQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto b = KafkaBroker::Start();
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    broker_ = std::move(b).value();
  }
  std::unique_ptr<WorkQueue> Open() {
    auto q = WorkQueue::Open(OptionsFor(*broker_));
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    return q.ok() ? std::move(q).value() : nullptr;
  }
  std::unique_ptr<KafkaBroker> broker_;
};

// pgbaton queue inspect reads the topic from another process.
TEST_F(KafkaQueueTest, QueueInspectReadsTheTopic) {
  auto q = Open();
  ASSERT_TRUE(q);
  RecordBatch b;
  b.relations = {MakeRelation(1)};
  AddTxn(&b, 100, 0x1000);
  AddTxn(&b, 101, 0x2000, 5);
  AddTxn(&b, 102, 0x1'0000'0000ull);
  ASSERT_TRUE(q->Append(b).ok());

  auto out = pgbaton::testing::RunCommand({pgbaton::testing::PgbatonBinary(), "queue", "inspect",
                                           "--kafka-brokers", broker_->Brokers(), "--kafka-topic",
                                           kTopic, "--json", "--from", "0/1000"});
  ASSERT_EQ(out.exit_code, 0) << out.output;
  std::vector<nlohmann::json> lines;
  std::istringstream in(out.output);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] == '{') lines.push_back(nlohmann::json::parse(line));
  }
  ASSERT_EQ(lines.size(), 2u) << out.output;
  EXPECT_EQ(lines[0]["commit_lsn"], "0/2000");
  EXPECT_EQ(lines[0]["changes"].size(), 5u);
  EXPECT_EQ(lines[0]["changes"][0]["relation"], "public.t1");
  EXPECT_EQ(lines[1]["commit_lsn"], "1/0");
}

TEST_F(KafkaQueueTest, BrokerRestartMidStreamLosesNothingReportedDurable) {
  auto q = Open();
  ASSERT_TRUE(q);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> durable{0};
  std::atomic<int> failures{0};
  std::thread writer([&] {
    for (uint64_t i = 1; !stop && i < 100000; ++i) {
      RecordBatch b;
      AddTxn(&b, static_cast<uint32_t>(i), i * 16, 3);
      Status s = q->Append(b);
      if (!s.ok()) {
        ++failures;
        ADD_FAILURE() << s.ToString();
        return;
      }
      durable = i;
    }
  });
  // The writer is stopped and joined on every way out, also when an assertion returns early.
  struct JoinWriter {
    std::atomic<bool>* stop;
    std::thread* writer;
    ~JoinWriter() {
      *stop = true;
      if (writer->joinable()) writer->join();
    }
  } join_writer{&stop, &writer};
  std::this_thread::sleep_for(1s);
  ASSERT_TRUE(broker_->Stop().ok());
  uint64_t at_stop = durable;
  std::this_thread::sleep_for(1s);
  ASSERT_TRUE(broker_->StartAgain().ok()) << broker_->LogTail();
  // 20 more appends after the restart, within a deadline (the writer blocks in Append while the
  // broker is away; a writer that never recovers must fail the test, not hang it).
  auto until = std::chrono::steady_clock::now() + 120s;
  while (durable < at_stop + 20 && failures == 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(50ms);
  }
  const uint64_t reached = durable;
  stop = true;
  writer.join();
  ASSERT_EQ(failures, 0);
  ASSERT_GE(reached, at_stop + 20) << "the writer did not append 20 transactions within 120 s of "
                                      "the broker's restart ("
                                   << reached - at_stop << " since the stop)\n"
                                   << broker_->LogTail();
  uint64_t n = durable;
  auto all = ReadAll(q.get());
  ASSERT_GE(all.size(), n);
  for (uint64_t i = 0; i < n; ++i) {
    ASSERT_EQ(all[i].commit.commit_lsn, Lsn((i + 1) * 16)) << i;  // no gap, no duplicate
    ASSERT_EQ(all[i].chunks.size(), 1u);
    ASSERT_EQ(all[i].chunks[0].changes.size(), 3u);
  }
}

TEST(KafkaQueueNoBrokerTest, UnreachableBrokerFailsWithinTheTimeout) {
  QueueOptions o;
  o.kafka_brokers = "127.0.0.1:" + std::to_string(pgbaton::testing::FreePort());
  o.kafka_topic = "t";
  o.kafka_timeout_ms = 2000;
  auto start = std::chrono::steady_clock::now();
  auto q = WorkQueue::Open(o);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().code(), ErrorCode::kKafka);
  EXPECT_NE(q.status().message().find(o.kafka_brokers), std::string::npos) << q.status().message();
  EXPECT_LT(std::chrono::steady_clock::now() - start,
            30s);  // a bound against hanging, not a timing
}

}  // namespace
}  // namespace pgbaton::queue

// The Kafka WorkQueue against a real one-node KRaft broker (tests/support/kafka_broker.h).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "queue/codec.h"
#include "queue/kafka_client.h"
#include "queue/work_queue.h"
#include "tests/support/kafka_broker.h"
#include "tests/unit/queue/test_records.h"

namespace pgbaton::queue {
namespace {

using namespace std::chrono_literals;
using pgbaton::testing::KafkaBroker;
using testing::AddTxn;
using testing::MakeInsert;
using testing::MakeRelation;

struct ReadTxn {
  CommitRecord commit;
  std::vector<ChangeChunk> chunks;
};

std::vector<ReadTxn> ReadAll(WorkQueue* q, Lsn after = Lsn::Invalid()) {
  std::vector<ReadTxn> out;
  auto cursor = q->ReadFrom(after);
  EXPECT_TRUE(cursor.ok()) << cursor.status().ToString();
  if (!cursor.ok()) return out;
  while (true) {
    auto r = (*cursor)->Next(0ms);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || !*r) break;
    ReadTxn t{(*r)->commit(), {}};
    ChangeChunk c;
    while (true) {
      auto more = (*r)->NextChunk(&c);
      EXPECT_TRUE(more.ok()) << more.status().ToString();
      if (!more.ok() || !*more) break;
      t.chunks.push_back(c);
    }
    out.push_back(std::move(t));
  }
  return out;
}

ChangeChunk Chunk(uint32_t xid, uint32_t seq, std::string v, uint32_t subxid = 0) {
  ChangeChunk c;
  c.xid = Xid{xid};
  c.subxid = Xid{subxid ? subxid : xid};
  c.seq = seq;
  c.changes = {MakeInsert(1, seq, std::move(v))};
  return c;
}

CommitRecord Commit(uint32_t xid, uint64_t lsn) {
  CommitRecord c;
  c.xid = Xid{xid};
  c.commit_lsn = Lsn(lsn);
  c.end_lsn = Lsn(lsn + 8);
  return c;
}

class KafkaQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto b = KafkaBroker::Start();
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    broker_ = std::move(b).value();
  }
  QueueOptions Options(bool read_only = false) {
    QueueOptions o;
    o.kafka_brokers = broker_->Brokers();
    o.kafka_topic = "pgbaton_test";
    o.read_only = read_only;
    o.kafka_timeout_ms = 20000;
    return o;
  }
  std::unique_ptr<WorkQueue> Open(bool read_only = false) {
    auto q = WorkQueue::Open(Options(read_only));
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    return q.ok() ? std::move(q).value() : nullptr;
  }
  std::unique_ptr<KafkaBroker> broker_;
};

TEST_F(KafkaQueueTest, AppendReadInOrderRelationsAndMetadata) {
  auto q = Open();
  ASSERT_TRUE(q);
  EXPECT_EQ(*q->LastCommitLsn(), Lsn::Invalid());
  RecordBatch b1, b2;
  b1.relations = {MakeRelation(1), MakeRelation(2)};
  AddTxn(&b1, 100, 0x1000);
  AddTxn(&b1, 101, 0x2000, 5);
  AddTxn(&b2, 102, 0x1'0000'0000ull);
  b2.relations = {MakeRelation(1, 2)};
  ASSERT_TRUE(q->Append(b1).ok());
  ASSERT_TRUE(q->Append(b2).ok());
  ASSERT_TRUE(q->PutMeta("sync/public.a", "0/10").ok());
  ASSERT_TRUE(q->PutMeta("sync/public.b", "0/20").ok());
  ASSERT_TRUE(q->DeleteMeta("sync/public.a").ok());
  EXPECT_EQ(*q->LastCommitLsn(), Lsn(0x1'0000'0000ull));

  auto all = ReadAll(q.get());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].commit.commit_lsn, Lsn(0x1000));
  EXPECT_EQ(all[1].commit, b1.commits[1]);
  ASSERT_EQ(all[1].chunks.size(), 1u);
  EXPECT_EQ(all[1].chunks[0], b1.chunks[1]);
  EXPECT_EQ(ReadAll(q.get(), Lsn(0x1000)).size(), 2u);
  EXPECT_EQ(ReadAll(q.get(), Lsn(0x2000)).size(), 1u);

  // A second process's view: a read-only queue finds descriptors and metadata without a scan.
  auto r = Open(true);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r->LastCommitLsn(), Lsn(0x1'0000'0000ull));
  EXPECT_EQ(*r->LastEndLsn(), Lsn(0x1'0000'0008ull));
  EXPECT_EQ(*r->FirstCommitLsn(), Lsn(0x1000));
  EXPECT_EQ(*r->GetRelation(RelationId{1}, 2), b2.relations[0]);
  EXPECT_EQ(r->ListRelations()->size(), 3u);
  auto meta = *r->ListMeta("sync/");
  ASSERT_EQ(meta.size(), 1u);
  EXPECT_EQ(meta["sync/public.b"], "0/20");
  EXPECT_FALSE(r->GetMeta("sync/public.a")->has_value());
  EXPECT_GT(*r->SizeBytes(), 0u);

  // pgbaton queue inspect reads the same topic from another process.
  auto out = pgbaton::testing::RunCommand({pgbaton::testing::PgbatonBinary(), "queue", "inspect",
                                           "--kafka-brokers", broker_->Brokers(), "--kafka-topic",
                                           "pgbaton_test", "--json", "--from", "0/1000"});
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

// A reader opened before the writer adds a relation (a table created mid-stream, cutover's
// sentinel table) finds its descriptor, and metadata written later, by re-reading the meta
// topic's tail. The reader's first load ends at the topic's end; the end-of-partition event
// librdkafka queues after that must not end the next read early (it did: GetRelation failed
// with "relation 9 version 1 is not in kafka topic").
TEST_F(KafkaQueueTest, ReaderFindsRelationsAndMetadataWrittenAfterItOpened) {
  auto w = Open();
  ASSERT_TRUE(w);
  RecordBatch b1;
  b1.relations = {MakeRelation(1)};
  AddTxn(&b1, 100, 0x1000);
  ASSERT_TRUE(w->Append(b1).ok());
  auto r = Open(true);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r->GetRelation(RelationId{1}, 1), b1.relations[0]);
  std::this_thread::sleep_for(500ms);  // lets the end-of-partition event reach the reader

  for (uint32_t id = 9; id < 12; ++id) {
    RecordBatch b;
    b.relations = {MakeRelation(id)};
    AddTxn(&b, 100 + id, 0x1000 + id * 0x100);
    ASSERT_TRUE(w->Append(b).ok());
    auto rel = r->GetRelation(RelationId{id}, 1);
    ASSERT_TRUE(rel.ok()) << rel.status().ToString();
    EXPECT_EQ(*rel, b.relations[0]);
    ASSERT_TRUE(w->PutMeta(fmt::format("sync_lsn/public.t{}", id), "0/10").ok());
    std::this_thread::sleep_for(300ms);
    auto meta = r->ListMeta("sync_lsn/");
    ASSERT_TRUE(meta.ok()) << meta.status().ToString();
    EXPECT_EQ(meta->size(), id - 8) << "metadata written after the reader opened is listed";
  }
}

TEST_F(KafkaQueueTest, InterleavedChunksAbortsDiscardAndWriterRestart) {
  auto q = Open();
  ASSERT_TRUE(q);
  RecordBatch b1;  // xid 7 and 8 open, interleaved
  b1.chunks = {Chunk(7, 0, "a"), Chunk(8, 0, "b"), Chunk(7, 1, "c", 70)};
  ASSERT_TRUE(q->Append(b1).ok());
  RecordBatch b2;  // 9 commits while 7 and 8 stay open
  AddTxn(&b2, 9, 100);
  ASSERT_TRUE(q->Append(b2).ok());
  // The writer restarts without discarding: it must rebuild 7 and 8 from the topic.
  q.reset();
  q = Open();
  ASSERT_TRUE(q);
  EXPECT_EQ(*q->LastCommitLsn(), Lsn(100));
  RecordBatch b3;
  b3.chunks = {Chunk(8, 1, "d")};
  b3.commits = {Commit(8, 200)};
  b3.aborts = {{Xid{7}, Xid{70}}};
  ASSERT_TRUE(q->Append(b3).ok());
  RecordBatch b4;
  b4.chunks = {Chunk(7, 2, "e")};
  b4.commits = {Commit(7, 300)};
  ASSERT_TRUE(q->Append(b4).ok());

  auto all = ReadAll(q.get());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[1].commit.commit_lsn, Lsn(200));
  ASSERT_EQ(all[1].chunks.size(), 2u);
  EXPECT_EQ(all[1].chunks[0], b1.chunks[1]);
  EXPECT_EQ(all[1].chunks[1], b3.chunks[0]);
  ASSERT_EQ(all[2].chunks.size(), 2u);  // subxid 70 aborted
  EXPECT_EQ(all[2].chunks[0], b1.chunks[0]);
  EXPECT_EQ(all[2].chunks[1], b4.chunks[0]);
  // Starting after 100 or 200 must still find chunks written before those commits.
  auto tail = ReadAll(q.get(), Lsn(200));
  ASSERT_EQ(tail.size(), 1u);
  EXPECT_EQ(tail[0].chunks.size(), 2u);
  EXPECT_EQ(ReadAll(q.get(), Lsn(100)).size(), 2u);

  // Discard: chunks of an unfinished xid 11 vanish; the resent xid 11 is read whole.
  RecordBatch b5;
  b5.chunks = {Chunk(11, 0, "lost")};
  ASSERT_TRUE(q->Append(b5).ok());
  q.reset();
  q = Open();
  ASSERT_TRUE(q->DiscardUncommitted().ok());
  RecordBatch b6;
  b6.chunks = {Chunk(11, 0, "resent")};
  b6.commits = {Commit(11, 400)};
  ASSERT_TRUE(q->Append(b6).ok());
  tail = ReadAll(q.get(), Lsn(300));
  ASSERT_EQ(tail.size(), 1u);
  ASSERT_EQ(tail[0].chunks.size(), 1u);
  EXPECT_EQ(tail[0].chunks[0], b6.chunks[0]);
  // A resent commit is skipped.
  RecordBatch dup;
  AddTxn(&dup, 11, 400);
  ASSERT_TRUE(q->Append(dup).ok());
  EXPECT_EQ(ReadAll(q.get(), Lsn(300)).size(), 1u);
}

TEST_F(KafkaQueueTest, LargeTransactionIsReadBackBeyondTheCacheBudget) {
  auto q = Open();
  ASSERT_TRUE(q);
  std::mt19937_64 rng(3);
  std::vector<ChangeChunk> chunks;
  for (uint32_t i = 0; i < 40; ++i) {  // 40 MiB of incompressible chunks, over several appends
    std::string v(1 << 20, '\0');
    for (char& ch : v) ch = static_cast<char>(rng());
    chunks.push_back(Chunk(5, i, std::move(v)));
    RecordBatch b;
    b.chunks = {chunks.back()};
    if (i % 10 == 5) AddTxn(&b, 1000 + i, 100 + i);  // small transactions commit meanwhile
    ASSERT_TRUE(q->Append(b).ok());
  }
  RecordBatch c;
  c.commits = {Commit(5, 1000)};
  ASSERT_TRUE(q->Append(c).ok());
  auto all = ReadAll(q.get(), Lsn(200));
  ASSERT_EQ(all.size(), 1u);
  ASSERT_EQ(all[0].chunks.size(), 40u);
  for (size_t i = 0; i < chunks.size(); ++i) EXPECT_TRUE(all[0].chunks[i] == chunks[i]) << i;
}

TEST_F(KafkaQueueTest, TrimHidesTransactionsAndNewFormatIsRefused) {
  auto q = Open();
  for (int i = 1; i <= 5; ++i) {
    RecordBatch b;
    AddTxn(&b, i, 100 * i);
    ASSERT_TRUE(q->Append(b).ok());
  }
  ASSERT_TRUE(q->Trim(Lsn(300)).ok());
  EXPECT_EQ(*q->FirstCommitLsn(), Lsn(400));
  auto all = ReadAll(q.get());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].commit.commit_lsn, Lsn(400));
  q.reset();
  {
    auto p = kafka::Producer::Create(broker_->Brokers(), 10000);
    ASSERT_TRUE(p.ok());
    std::string v = std::to_string(kFormatVersion + 1);
    ASSERT_TRUE((*p)->Produce("pgbaton_test.meta", "s/format_version", &v).ok());
    ASSERT_TRUE((*p)->Flush("pgbaton_test.meta", nullptr).ok());
  }
  auto again = WorkQueue::Open(Options());
  EXPECT_EQ(again.status().code(), ErrorCode::kQueueFormat) << again.status().ToString();
  QueueOptions other = Options();
  other.kafka_topic = "pgbaton_other";
  other.read_only = true;
  EXPECT_EQ(WorkQueue::Open(other).status().code(), ErrorCode::kNotFound);
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

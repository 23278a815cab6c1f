// The streaming loop with a scripted replication source (the golden captures, framed as the
// walsender frames them) and the fake queue: confirmation never passes what the queue holds,
// keepalives are answered, transactions are grouped per Append, and a reconnect in the middle
// of a transaction neither loses nor doubles anything.
#include <gtest/gtest.h>

#include <thread>

#include "decoder/replication.h"
#include "decoder/stream.h"
#include "tests/unit/decoder/golden_util.h"

namespace pgbaton::decoder::testing {
namespace {

using std::chrono::milliseconds;

std::string Frame(char kind, uint64_t a, uint64_t b, std::string_view rest) {
  std::string s(1, kind);
  auto put = [&](uint64_t v) {
    for (int i = 7; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  put(a);
  put(b);
  put(0);
  s.append(rest);
  return s;
}
std::string XLog(const CapturedMessage& m) {
  return Frame('w', m.wal_start.value(), m.wal_start.value(), m.payload);
}
std::string KeepaliveMsg(uint64_t end, bool reply) {
  std::string s = Frame('k', end, 0, "");
  s.resize(17);  // 'k', wal_end, time
  s.push_back(reply ? 1 : 0);
  return s;
}

// The server side of one session: sends the script from `from`, checks every status update
// against what the queue holds.
struct Script {
  std::vector<std::string> msgs;
  FakeWorkQueue* queue = nullptr;
  std::atomic<bool>* stop = nullptr;
  size_t fail_after = SIZE_MAX;  // first session: a broken connection after this many
  int sessions = 0;
  std::vector<Lsn> starts;
  int statuses = 0, replies = 0;
  bool reply_pending = false;
  bool late_reply = false;
  bool over_confirmed = false;
  // After each commit the server sends nothing for 20 ms: an idle stream between transactions.
  bool idle_after_commit = false;
};

class ScriptSource : public ReplicationSource {
 public:
  explicit ScriptSource(Script* s) : s_(s) {}
  Result<std::optional<std::string_view>> Receive(milliseconds wait) override {
    if (s_->reply_pending) s_->late_reply = true;  // asked for a reply, got none first
    if (std::chrono::steady_clock::now() < idle_until_) {
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
          wait, idle_until_ - std::chrono::steady_clock::now()));
      return std::optional<std::string_view>();
    }
    if (s_->sessions == 1 && sent_ == s_->fail_after) {
      return Status::Error(ErrorCode::kConnection, "source: connection lost", "", true);
    }
    if (pos_ >= s_->msgs.size()) {
      s_->stop->store(true);
      return std::optional<std::string_view>();
    }
    ++sent_;
    const std::string& m = s_->msgs[pos_++];
    if (m[0] == 'k' && m.back() == 1) s_->reply_pending = true;
    // XLogData: 'w', three 8-byte LSNs and times, then the pgoutput message.
    // Commit, stream commit, commit prepared.
    if (s_->idle_after_commit && m[0] == 'w' && m.size() > 25 &&
        (m[25] == 'C' || m[25] == 'c' || m[25] == 'K')) {
      idle_until_ = std::chrono::steady_clock::now() + milliseconds(20);
    }
    return std::optional<std::string_view>(m);
  }
  Status SendStatus(Lsn write, Lsn flush, bool) override {
    ++s_->statuses;
    if (s_->reply_pending) ++s_->replies;
    s_->reply_pending = false;
    if (flush > *s_->queue->LastEndLsn()) s_->over_confirmed = true;
    EXPECT_GE(write, flush);
    return Status::Ok();
  }

 private:
  Script* s_;
  size_t pos_ = 0;
  size_t sent_ = 0;
  std::chrono::steady_clock::time_point idle_until_{};
};

SourceFactory Factory(Script* s) {
  return [s](Lsn start) -> Result<std::unique_ptr<ReplicationSource>> {
    ++s->sessions;
    s->starts.push_back(start);
    // Like the server, every session resends from the beginning of what is not confirmed;
    // sending everything again is the harder case (the loop must drop what it already has).
    return std::unique_ptr<ReplicationSource>(new ScriptSource(s));
  };
}

class StreamLoopTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    auto msgs = ReadCaptureFile(CapturePath(GetParam(), "stream.bin"));
    ASSERT_TRUE(msgs.ok());
    for (size_t i = 0; i < msgs->size(); ++i) {
      script_.msgs.push_back(XLog((*msgs)[i]));
      if (i % 50 == 25) script_.msgs.push_back(KeepaliveMsg((*msgs)[i].wal_start.value(), true));
    }
    auto types = GoldenTypes();
    ASSERT_TRUE(AssembleCapture(*msgs, &reference_, &types).ok());
    script_.queue = &queue_;
    script_.stop = &stop_;
    options_.batch_max_delay = milliseconds(1000);  // group by size and count only
    options_.batch_max_commits = 5;
    options_.initial_backoff = milliseconds(1);
  }
  void ExpectSameAsReference() {
    ASSERT_EQ(queue_.committed.size(), reference_.committed.size());
    for (size_t i = 0; i < queue_.committed.size(); ++i) {
      EXPECT_EQ(queue_.committed[i].commit, reference_.committed[i].commit);
      EXPECT_EQ(queue_.committed[i].Changes(), reference_.committed[i].Changes());
    }
  }

  Script script_;
  FakeWorkQueue queue_, reference_;
  std::atomic<bool> stop_{false};
  StreamOptions options_;
  StaticTypeResolver types_ = GoldenTypes();
};

TEST_P(StreamLoopTest, StreamsEverythingAndConfirmsOnlyWhatIsQueued) {
  StreamStats stats;
  Status s = RunStream(&queue_, &types_, Factory(&script_), options_, &stop_, &stats);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ExpectSameAsReference();
  EXPECT_FALSE(script_.over_confirmed);
  EXPECT_FALSE(script_.late_reply) << "a keepalive asking for a reply was not answered at once";
  EXPECT_GT(script_.replies, 10);
  EXPECT_EQ(stats.confirmed, *queue_.LastEndLsn());
  // Group commit: several transactions per Append.
  EXPECT_LT(queue_.appends, static_cast<int>(reference_.committed.size()));
  EXPECT_EQ(stats.transactions, reference_.committed.size());
}

TEST_P(StreamLoopTest, AnIdleStreamIsAppendedAtOnceNotABatchDelayLater) {
  // A batch delay of an hour: only the idle flush can append while the stream lasts.
  script_.idle_after_commit = true;
  options_.batch_max_delay = std::chrono::hours(1);
  options_.batch_max_commits = 1000;
  options_.idle_flush_delay = milliseconds(1);
  StreamStats stats;
  const auto start = std::chrono::steady_clock::now();
  Status s = RunStream(&queue_, &types_, Factory(&script_), options_, &stop_, &stats);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ExpectSameAsReference();
  // Each commit is followed by a pause of the server: the transactions are appended as they
  // come (20 appends for 20 transactions on the 13 capture, 19 on the 15-18 ones, whose
  // streamed and prepared transactions end differently), against one or two appends for the
  // whole capture with the idle flush off (below).
  EXPECT_GE(queue_.appends * 4, static_cast<int>(reference_.committed.size()) * 3);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::minutes(5));
}

TEST_P(StreamLoopTest, WithTheIdleFlushOffTransactionsWaitForTheBatch) {
  script_.idle_after_commit = true;
  options_.batch_max_delay = std::chrono::hours(1);
  options_.batch_max_commits = 1000;
  options_.idle_flush_delay = std::chrono::hours(1);  // not below the batch delay: off
  StreamStats stats;
  Status s = RunStream(&queue_, &types_, Factory(&script_), options_, &stop_, &stats);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ExpectSameAsReference();
  EXPECT_LE(queue_.appends, 2);
}

TEST_P(StreamLoopTest, ReconnectInTheMiddleLosesAndDoublesNothing) {
  // Break the first session in the middle of the streamed transaction (and of others).
  script_.fail_after = script_.msgs.size() / 2;
  StreamStats stats;
  Status s = RunStream(&queue_, &types_, Factory(&script_), options_, &stop_, &stats);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(script_.sessions, 2);
  EXPECT_EQ(stats.reconnects, 1u);
  EXPECT_GE(queue_.discards, 2) << "partial transactions must be discarded before resuming";
  ASSERT_EQ(script_.starts.size(), 2u);
  EXPECT_FALSE(script_.starts[0].IsValid());
  EXPECT_TRUE(script_.starts[1].IsValid()) << "the second session starts at the queue's end";
  EXPECT_GT(stats.skipped, 0u) << "resent transactions must be dropped";
  ExpectSameAsReference();
  EXPECT_FALSE(script_.over_confirmed);
}

TEST_P(StreamLoopTest, RelationsOfADroppedBatchAreQueuedAfterAReconnect) {
  // Break the first session so early that its batch, holding the first relation descriptors,
  // never reaches the queue: the next session's changes must still find their descriptors.
  script_.fail_after = 12;
  options_.batch_max_commits = 1000;
  StreamStats stats;
  Status s = RunStream(&queue_, &types_, Factory(&script_), options_, &stop_, &stats);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(stats.reconnects, 1u);
  ExpectSameAsReference();
  for (const auto& txn : queue_.committed) {
    for (const auto& change : txn.Changes()) {
      if (change.kind == queue::ChangeKind::kMessage ||
          change.kind == queue::ChangeKind::kTruncate) {
        continue;
      }
      EXPECT_TRUE(queue_.GetRelation(change.relation, change.relation_version).ok())
          << "relation " << change.relation.value << " version " << change.relation_version
          << " is referenced by commit " << txn.commit.commit_lsn.ToString()
          << " but not in the queue";
    }
  }
}

TEST_P(StreamLoopTest, RestartResumesFromTheQueue) {
  // A first run that stops half-way, then a second run on the same queue (a process restart).
  script_.fail_after = script_.msgs.size() / 3;
  options_.max_consecutive_failures = 1;
  Status first = RunStream(&queue_, &types_, Factory(&script_), options_, &stop_);
  EXPECT_EQ(first.code(), ErrorCode::kConnection);
  size_t had = queue_.committed.size();
  EXPECT_GT(had, 0u);
  Status second = RunStream(&queue_, &types_, Factory(&script_), options_, &stop_);
  ASSERT_TRUE(second.ok()) << second.ToString();
  EXPECT_EQ(script_.starts.back(), queue_.committed[had - 1].commit.end_lsn);
  ExpectSameAsReference();
}

TEST_P(StreamLoopTest, AppendFailureStopsWithoutConfirming) {
  queue_.fail_appends = 1000;
  Status s = RunStream(&queue_, &types_, Factory(&script_), options_, &stop_);
  EXPECT_EQ(s.code(), ErrorCode::kIo);
  EXPECT_TRUE(queue_.committed.empty());
  EXPECT_FALSE(script_.over_confirmed);
}

INSTANTIATE_TEST_SUITE_P(Majors, StreamLoopTest, ::testing::Values(13, 15, 17, 18),
                         [](const auto& info) { return "pg" + std::to_string(info.param); });

TEST(StreamLoopErrorsTest, FatalFactoryErrorIsReturned) {
  FakeWorkQueue q;
  std::atomic<bool> stop{false};
  auto types = GoldenTypes();
  int calls = 0;
  SourceFactory f = [&](Lsn) -> Result<std::unique_ptr<ReplicationSource>> {
    ++calls;
    return Status::Error(ErrorCode::kSlotMissing,
                         "slot \"pgbaton\" on source (h:1/d) does not exist");
  };
  Status s = RunStream(&q, &types, f, {}, &stop);
  EXPECT_EQ(s.code(), ErrorCode::kSlotMissing);
  EXPECT_EQ(calls, 1);
}

TEST(StreamLoopErrorsTest, MalformedMessageNamesTheLsn) {
  FakeWorkQueue q;
  std::atomic<bool> stop{false};
  auto types = GoldenTypes();
  Script script;
  script.queue = &q;
  script.stop = &stop;
  script.msgs.push_back(Frame('w', 0x16B374D8, 0x16B374D8, std::string("I\0\0", 3)));
  Status s = RunStream(&q, &types, Factory(&script), {}, &stop);
  EXPECT_EQ(s.code(), ErrorCode::kProtocol);
  EXPECT_NE(s.message().find("insert message at offset 1"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("at LSN 0/16B374D8"), std::string::npos) << s.message();
  EXPECT_FALSE(s.hint().empty());
}

TEST(StreamLoopErrorsTest, GivesUpAfterRepeatedConnectionFailures) {
  FakeWorkQueue q;
  std::atomic<bool> stop{false};
  auto types = GoldenTypes();
  int calls = 0;
  SourceFactory f = [&](Lsn) -> Result<std::unique_ptr<ReplicationSource>> {
    ++calls;
    return Status::Error(ErrorCode::kConnection, "cannot connect to source", "", true);
  };
  StreamOptions o;
  o.initial_backoff = milliseconds(1);
  o.max_backoff = milliseconds(4);
  o.max_consecutive_failures = 5;
  Status s = RunStream(&q, &types, f, o, &stop);
  EXPECT_EQ(s.code(), ErrorCode::kConnection);
  EXPECT_EQ(calls, 5);
  EXPECT_NE(s.hint().find("gave up after 5 attempts"), std::string::npos);
}

}  // namespace
}  // namespace pgbaton::decoder::testing

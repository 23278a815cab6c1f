// The coordinator-to-session channel: order, the byte bound, close and failure.
#include "applier/channel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace pgbaton::applier {
namespace {

std::shared_ptr<TxnWork> WorkOf(size_t bytes) {
  auto w = std::make_shared<TxnWork>();
  w->bytes = bytes;
  return w;
}

TEST(ChannelTest, ItemsComeOutInOrderWithTheirFields) {
  SharedState shared;
  Channel ch(&shared, 1000);
  ASSERT_TRUE(ch.Push(Item::Work(3, 2, WorkOf(10))));
  ASSERT_TRUE(ch.Push(Item::Commit(3, GroupCommit{Lsn(0x100), PgTimestamp{}, 4, 9})));
  Item it;
  ASSERT_TRUE(ch.Pop(&it));
  EXPECT_EQ(it.kind, Item::Kind::kWork);
  EXPECT_EQ(it.group, 3u);
  EXPECT_EQ(it.wait_for, 2u);
  EXPECT_EQ(it.bytes, 10u);
  ASSERT_NE(it.work, nullptr);
  ASSERT_TRUE(ch.Pop(&it));
  EXPECT_EQ(it.kind, Item::Kind::kCommit);
  EXPECT_EQ(it.commit.lsn, Lsn(0x100));
  EXPECT_EQ(it.commit.txns, 4u);
  EXPECT_EQ(it.commit.changes, 9u);
  EXPECT_EQ(it.bytes, 0u);
  ch.Close();
  EXPECT_FALSE(ch.Pop(&it));
}

TEST(ChannelTest, PushWaitsWhileFullAndAnItemAlwaysFitsAnEmptyChannel) {
  SharedState shared;
  Channel ch(&shared, 100);
  ASSERT_TRUE(ch.Push(Item::Work(1, 0, WorkOf(500))));  // larger than the channel: still taken
  std::atomic<bool> pushed{false};
  std::thread producer([&] {
    EXPECT_TRUE(ch.Push(Item::Work(2, 0, WorkOf(1))));
    pushed = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(pushed.load());
  Item it;
  ASSERT_TRUE(ch.Pop(&it));
  EXPECT_EQ(it.group, 1u);
  producer.join();
  EXPECT_TRUE(pushed.load());
  ASSERT_TRUE(ch.Pop(&it));
  EXPECT_EQ(it.group, 2u);
}

TEST(ChannelTest, CloseDrainsWhatIsQueuedFirst) {
  SharedState shared;
  Channel ch(&shared, 100);
  ASSERT_TRUE(ch.Push(Item::Commit(1, GroupCommit{})));
  ch.Close();
  Item it;
  EXPECT_TRUE(ch.Pop(&it));
  EXPECT_FALSE(ch.Pop(&it));
}

TEST(ChannelTest, AFailedRunWakesBothEndsAndKeepsTheFirstError) {
  SharedState shared;
  Channel full(&shared, 10);
  Channel empty(&shared, 10);
  ASSERT_TRUE(full.Push(Item::Work(1, 0, WorkOf(10))));
  std::thread producer([&] { EXPECT_FALSE(full.Push(Item::Work(2, 0, WorkOf(1)))); });
  std::thread consumer([&] {
    Item it;
    EXPECT_FALSE(empty.Pop(&it));
  });
  std::thread waiter([&] { EXPECT_FALSE(shared.WaitCommitted(5)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  shared.Fail(Status::Error(ErrorCode::kConnection, "first"));
  shared.Fail(Status::Error(ErrorCode::kInternal, "second"));
  producer.join();
  consumer.join();
  waiter.join();
  EXPECT_TRUE(shared.Failed());
  EXPECT_EQ(shared.error.code(), ErrorCode::kConnection);
  Item it;
  EXPECT_FALSE(full.Pop(&it));  // a failed run hands out nothing more
}

TEST(SharedStateTest, WaitCommittedReturnsOnceTheGroupCommitted) {
  SharedState shared;
  EXPECT_TRUE(shared.WaitCommitted(0));
  std::thread waiter([&] { EXPECT_TRUE(shared.WaitCommitted(2)); });
  for (uint64_t g = 1; g <= 2; ++g) {
    std::lock_guard<std::mutex> l(shared.mu);
    shared.committed = g;
    shared.cv.notify_all();
  }
  waiter.join();
}

}  // namespace
}  // namespace pgbaton::applier

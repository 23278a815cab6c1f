// The identity checks that need no server: source == target, and a live source compared with the
// queue's record (another cluster, another database, a re-created database), binding on first
// use, the high-water mark and the "has streamed" rule that decides whether a slot may be created.
#include "tools/common/identity.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

namespace pgbaton::tools {
namespace {

DatabaseIdentity Db(std::string sysid, std::string name, std::string oid,
                    std::string where = "127.0.0.1:5432/app") {
  return {std::move(sysid), std::move(name), std::move(oid), std::move(where)};
}

class IdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pgbaton-identity-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    queue::QueueOptions qo;
    qo.dir = dir_ + "/queue";
    auto q = queue::WorkQueue::Open(qo);
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    queue_ = std::move(*q);
    check_ = QueueCheck(qo, "stream");
  }
  void TearDown() override {
    queue_.reset();
    std::filesystem::remove_all(dir_);
  }
  Status Check(const DatabaseIdentity& source, bool bind) {
    LiveSides live;
    live.source = source;
    check_.bind = bind;
    return CheckQueue(check_, live, queue_.get());
  }

  std::string dir_;
  std::unique_ptr<queue::WorkQueue> queue_;
  MigrationCheck check_;
};

TEST(IdentityDistinctTest, SameClusterAndDatabaseIsRefusedOtherDatabaseIsNot) {
  Status same = CheckDistinct(Db("7001", "app", "16384"), Db("7001", "app", "16384", "localhost"));
  EXPECT_EQ(same.code(), ErrorCode::kSourceIsTarget);
  EXPECT_NE(same.message().find("--source and --target are the same database: \"app\""),
            std::string::npos)
      << same.message();
  EXPECT_FALSE(same.hint().empty());
  EXPECT_TRUE(CheckDistinct(Db("7001", "app", "16384"), Db("7001", "app2", "16390")).ok());
  EXPECT_TRUE(CheckDistinct(Db("7001", "app", "16384"), Db("7002", "app", "16384")).ok());
  // No system identifier readable: the same server address and OID decide.
  EXPECT_EQ(CheckDistinct(Db("", "app", "16384"), Db("", "app", "16384")).code(),
            ErrorCode::kSourceIsTarget);
  EXPECT_TRUE(CheckDistinct(Db("", "app", "16384"), Db("", "app", "16384", "h2:5432/app")).ok());
}

TEST_F(IdentityTest, FirstUseBindsAndLaterUsesCompare) {
  ASSERT_TRUE(Check(Db("7001", "app", "16384"), /*bind=*/false).ok());
  EXPECT_FALSE(queue_->GetMeta(kIdentitySourceKey)->has_value()) << "only bind records";
  ASSERT_TRUE(Check(Db("7001", "app", "16384"), /*bind=*/true).ok());
  EXPECT_TRUE(queue_->GetMeta(kIdentitySourceKey)->has_value());
  EXPECT_TRUE(Check(Db("7001", "app", "16384"), true).ok());

  Status other_cluster = Check(Db("7002", "app", "16384"), true);
  EXPECT_EQ(other_cluster.code(), ErrorCode::kIdentityMismatch);
  EXPECT_NE(other_cluster.message().find("is another cluster than the one queue"),
            std::string::npos)
      << other_cluster.message();

  Status recreated = Check(Db("7001", "app", "16999"), true);
  EXPECT_EQ(recreated.code(), ErrorCode::kIdentityMismatch);
  EXPECT_NE(recreated.message().find("database \"app\" on source (127.0.0.1:5432/app) was dropped "
                                     "and re-created since queue"),
            std::string::npos)
      << recreated.message();
  EXPECT_NE(recreated.message().find("OID 16999, recorded 16384"), std::string::npos);

  Status other_db = Check(Db("7001", "app3", "16500"), true);
  EXPECT_EQ(other_db.code(), ErrorCode::kIdentityMismatch);
  EXPECT_NE(other_db.message().find("is database \"app3\", but queue"), std::string::npos)
      << other_db.message();
  EXPECT_NE(other_db.hint().find("cleanup"), std::string::npos) << other_db.hint();

  // A refusal records nothing: the first record stays.
  EXPECT_TRUE(Check(Db("7001", "app", "16384"), true).ok());
}

TEST_F(IdentityTest, HighWaterSurvivesATrimAndSaysTheQueueHasStreamed) {
  EXPECT_FALSE(*QueueHasStreamed(queue_.get()));
  EXPECT_FALSE(QueueHighWater(queue_.get())->IsValid());
  ASSERT_TRUE(queue_->PutMeta(queue::WorkQueue::kHighWaterEndKey, "0/3000060").ok());
  EXPECT_EQ(QueueHighWater(queue_.get())->ToString(), "0/3000060");
  EXPECT_TRUE(*QueueHasStreamed(queue_.get()));
}

TEST_F(IdentityTest, ARecordedSlotSaysTheQueueHasStreamed) {
  ASSERT_TRUE(RecordSlot(queue_.get(), "pgbaton", Lsn(0x3000000)).ok());
  EXPECT_TRUE(*QueueHasStreamed(queue_.get()));
}

}  // namespace
}  // namespace pgbaton::tools

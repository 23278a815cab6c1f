// `pgbaton queue inspect` run as a process against a queue that this test keeps open for writing.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "queue/work_queue.h"
#include "tests/support/process.h"
#include "tests/support/queue_records.h"

namespace pgbaton::queue {
namespace {

using pgbaton::testing::MakeTempDir;
using pgbaton::testing::PgbatonBinary;
using pgbaton::testing::RemoveTree;
using pgbaton::testing::RunCommand;
using testing::MakeRelation;
using testing::Text;

std::vector<nlohmann::json> JsonLines(const std::string& out) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

class InspectTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("pgbaton-inspect") + "/q"; }
  void TearDown() override { RemoveTree(dir_.substr(0, dir_.size() - 2)); }
  std::string dir_;
};

TEST_F(InspectTest, JsonAndHumanOutputWhileAWriterRuns) {
  QueueOptions o;
  o.dir = dir_;
  auto q = std::move(WorkQueue::Open(o)).value();
  RecordBatch b;
  RelationDescriptor rel = MakeRelation(16384);
  rel.name = "accounts";
  b.relations = {rel};
  ChangeChunk chunk;
  chunk.xid = chunk.subxid = Xid{731};
  Change ins;
  ins.kind = ChangeKind::kInsert;
  ins.relation = RelationId{16384};
  ins.relation_version = 1;
  ins.new_tuple = Tuple{Text("1"), Value{ValueKind::kNull, ""}};
  Change upd = ins;
  upd.kind = ChangeKind::kUpdate;
  upd.old_tuple = Tuple{Text("1")};
  upd.old_is_key_only = true;
  upd.new_tuple = Tuple{Text("1"), Value{ValueKind::kUnchangedToast, ""}};
  Change del;
  del.kind = ChangeKind::kDelete;
  del.relation = RelationId{16384};
  del.relation_version = 1;
  del.old_tuple = Tuple{Text("1")};
  Change trunc;
  trunc.kind = ChangeKind::kTruncate;
  trunc.truncated = {RelationId{16384}};
  trunc.truncated_versions = {1};
  trunc.truncate_flags = kTruncateCascade;
  chunk.changes = {ins, upd, del, trunc};
  b.chunks = {chunk};
  CommitRecord c;
  c.xid = Xid{731};
  c.commit_lsn = *Lsn::Parse("16/B374D848");
  c.end_lsn = *Lsn::Parse("16/B374D880");
  c.commit_time = PgTimestamp::FromUnixMicros(1795462800000000LL);
  c.change_count = 4;
  b.commits = {c};
  ASSERT_TRUE(q->Append(b).ok());
  RecordBatch b2;
  testing::AddTxn(&b2, 732, 0x17'00000000ull);
  ASSERT_TRUE(q->Append(b2).ok());

  auto r = RunCommand({PgbatonBinary(), "queue", "inspect", "--queue-dir", dir_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto lines = JsonLines(r.output);
  ASSERT_EQ(lines.size(), 2u) << r.output;
  const auto& t = lines[0];
  EXPECT_EQ(t["commit_lsn"], "16/B374D848");
  EXPECT_EQ(t["end_lsn"], "16/B374D880");
  EXPECT_EQ(t["xid"], 731);
  EXPECT_EQ(t["origin"], "");
  EXPECT_EQ(t["commit_time"], PgTimestamp::FromUnixMicros(1795462800000000LL).ToString());
  ASSERT_EQ(t["changes"].size(), 4u);
  EXPECT_EQ(t["changes"][0]["kind"], "insert");
  EXPECT_EQ(t["changes"][0]["relation"], "public.accounts");
  EXPECT_EQ(t["changes"][0]["new"][0]["name"], "id");
  EXPECT_EQ(t["changes"][0]["new"][0]["kind"], "text");
  EXPECT_EQ(t["changes"][0]["new"][0]["value"], "1");
  EXPECT_EQ(t["changes"][0]["new"][1]["kind"], "null");
  EXPECT_EQ(t["changes"][1]["kind"], "update");
  EXPECT_EQ(t["changes"][1]["old"][0]["value"], "1");
  EXPECT_EQ(t["changes"][1]["old_is_key_only"], true);
  EXPECT_EQ(t["changes"][1]["new"][1]["kind"], "unchanged_toast");
  EXPECT_EQ(t["changes"][2]["kind"], "delete");
  EXPECT_EQ(t["changes"][3]["kind"], "truncate");
  EXPECT_EQ(t["changes"][3]["relations"][0], "public.accounts");
  EXPECT_EQ(t["changes"][3]["cascade"], true);
  EXPECT_EQ(lines[1]["commit_lsn"], "17/0");

  // --from skips up to and including the LSN; the writer appends more while inspect runs again.
  RecordBatch b3;
  testing::AddTxn(&b3, 733, 0x18'00000000ull);
  ASSERT_TRUE(q->Append(b3).ok());
  r = RunCommand({PgbatonBinary(), "queue", "inspect", "--queue-dir", dir_, "--json", "--from",
                  "16/B374D848"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  lines = JsonLines(r.output);
  ASSERT_EQ(lines.size(), 2u) << r.output;
  EXPECT_EQ(lines[0]["commit_lsn"], "17/0");
  EXPECT_EQ(lines[1]["commit_lsn"], "18/0");

  r = RunCommand({PgbatonBinary(), "queue", "inspect", "--queue-dir", dir_});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("16/B374D848"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("xid 731"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("public.accounts (delete 1 insert 1 truncate 1 update 1)"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("3 transactions shown"), std::string::npos) << r.output;
}

TEST_F(InspectTest, MissingQueueIsAClearError) {
  auto r = RunCommand({PgbatonBinary(), "queue", "inspect", "--queue-dir", dir_ + "/none"});
  EXPECT_EQ(r.exit_code, ExitCodeOf(ErrorCode::kNotFound)) << r.output;
  EXPECT_NE(r.output.find("does not exist"), std::string::npos) << r.output;
  r = RunCommand({PgbatonBinary(), "queue", "inspect", "--queue-dir", dir_, "--from", "nonsense"});
  EXPECT_EQ(r.exit_code, ExitCodeOf(ErrorCode::kUsage)) << r.output;
}

}  // namespace
}  // namespace pgbaton::queue

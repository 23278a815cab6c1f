// Multi-row statements end to end (`pgbaton run`, PostgreSQL 15 -> 17): merged updates go as
// `UPDATE ... FROM unnest(...)` and runs of inserts as `INSERT ... SELECT * FROM unnest(...)`,
// with every value passed inside an array literal. Values that array literals treat specially
// (quotes, backslashes, braces, commas, the word NULL, empty strings, NULLs), a domain, a
// composite key, and the types that cannot be batched (box, arrays) must all arrive exactly; and
// a batch whose row is missing on the target, or whose insert hits a duplicate key, must stop
// with the relation, that row's key and an LSN, applying nothing of the group.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/error_code.h"
#include "common/types.h"
#include "tests/support/pg_server.h"
#include "tests/support/pg_test.h"
#include "tests/support/process.h"

namespace pgbaton::testing {
namespace {

constexpr const char* kSchema = R"sql(
create domain positive as int check (value > 0);
create table acc (id int primary key, n int, note text, price numeric(12,2), at timestamptz,
                  p positive);
create table pair (k1 int, k2 text, v text, primary key (k1, k2));
create table hist (id bigserial primary key, acc int, delta int, note text);
create table shapes (id int primary key, b box, arr int[], v text);
)sql";

const std::vector<std::string> kTables = {"acc", "pair", "hist", "shapes"};

// Text values an array literal must quote or escape.
const std::vector<std::string> kTricky = {
    "plain", "a\"quote",  "back\\slash", "{brace}",    "comma,here", "NULL",
    "",      "tab\there", "ü and ß",     "  spaces  ", "new\nline"};

class BatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (auto [major, out] : {std::pair{15, &source_}, std::pair{17, &target_}}) {
      *out = StartServer(major);
      ASSERT_TRUE(*out);
      ASSERT_TRUE((*out)->Exec("create database app").ok());
      ASSERT_TRUE((*out)->Exec(kSchema, "app").ok());
    }
    queue_dir_ = MakeTempDir("pgbaton-batch");
    // Rows written before the slot exists are loaded on both sides (as a copy would).
    for (auto* s : {source_.get(), target_.get()}) {
      ASSERT_TRUE(s->Exec("insert into acc select g, g, 'n' || g, g * 1.5, "
                          "'2026-01-01 00:00+00'::timestamptz + g * interval '1 hour', g "
                          "from generate_series(1, 200) g",
                          "app")
                      .ok());
      ASSERT_TRUE(s->Exec("insert into pair select g % 20, 'k' || (g / 20), 'v' from "
                          "generate_series(0, 99) g",
                          "app")
                      .ok());
      ASSERT_TRUE(s->Exec("insert into shapes select g, box(point(g, g), point(0, 0)), "
                          "array[g, g + 1], 'v' from generate_series(1, 50) g",
                          "app")
                      .ok());
    }
    CommandResult first = RunTo(Lsn());  // makes the slot; nothing to apply yet
    ASSERT_EQ(first.exit_code, 0) << first.output;
  }
  void TearDown() override { RemoveTree(queue_dir_); }

  Lsn SourceLsn() {
    auto l = source_->Query("select pg_current_wal_lsn()", "app");
    EXPECT_TRUE(l.ok());
    auto p = Lsn::Parse(l.ok() ? *l : "0/0");
    return p.ok() ? *p : Lsn();
  }
  // `pgbaton run` until everything up to `stop` is applied (the source's position if invalid).
  CommandResult RunTo(Lsn stop) {
    if (!stop.IsValid()) stop = SourceLsn();
    return RunCommand({PgbatonBinary(), "run", "--source", source_->Conninfo("app"), "--target",
                       target_->Conninfo("app"), "--queue-dir", queue_dir_, "--stop-at",
                       stop.ToString()});
  }
  std::string Digest(PgServer* s) { return TablesDigest(*s, "app", kTables); }
  std::string Quote(const std::string& v) {
    std::string q = "E'";
    for (char c : v) {
      if (c == '\'' || c == '\\') q += c;
      q += c == '\n' ? std::string("\\n") : c == '\t' ? std::string("\\t") : std::string(1, c);
    }
    return q + "'";
  }

  std::unique_ptr<PgServer> source_, target_;
  std::string queue_dir_;
};

TEST_F(BatchTest, MultiRowStatementsCarryEveryValueExactly) {
  // Many transactions, each touching many rows: cold rows (distinct keys per group, batched),
  // a hot row (merged), runs of inserts (batched), and the types that go row by row.
  for (int i = 0; i < 40; ++i) {
    const std::string& note = kTricky[i % kTricky.size()];
    std::string sql = fmt::format(
        "begin;"
        "update acc set n = n + {0}, note = {1}, price = price + 0.25, at = at + interval '1 "
        "minute' where id % 7 = {2};"
        "update acc set n = n + 1, note = null where id = 1;"
        "update pair set v = {1} where k1 = {3};"
        "insert into hist (acc, delta, note) select g, {0}, {1} from generate_series(1, 30) g;"
        "insert into hist (acc, delta, note) values (1, null, null);"
        "update shapes set b = box(point({0}, 1), point(2, {0})), arr = array[{0}, null], "
        "v = {1} where id % 5 = {4};"
        "commit;",
        i, Quote(note), i % 7, i % 20, i % 5);
    ASSERT_TRUE(source_->Exec(sql, "app").ok()) << sql;
  }
  // A domain's check still holds: the batched value goes through the domain's input.
  ASSERT_TRUE(source_->Exec("update acc set p = p + 1 where id <= 150", "app").ok());
  CommandResult r = RunTo(Lsn());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Digest(target_.get()), Digest(source_.get()));
  auto notes = target_->Query("select count(distinct note) from hist", "app");
  ASSERT_TRUE(notes.ok());
  EXPECT_EQ(*notes, std::to_string(kTricky.size())) << "every tricky value arrived";
}

TEST_F(BatchTest, AMissingRowInABatchedUpdateNamesItsKeyAndAppliesNothing) {
  ASSERT_TRUE(target_->Exec("delete from acc where id = 150", "app").ok());
  std::string before = Digest(target_.get());
  ASSERT_TRUE(source_->Exec("update acc set n = n + 1", "app").ok());  // 200 rows, one batch
  Lsn end = SourceLsn();
  CommandResult r = RunTo(end);
  EXPECT_EQ(r.exit_code, ExitCodeOf(ErrorCode::kApplyConflict)) << r.output;
  EXPECT_NE(r.output.find("apply conflict on relation \"public.acc\""), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("update found no row with key (id)=(150)"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("at commit LSN"), std::string::npos) << r.output;
  EXPECT_EQ(Digest(target_.get()), before) << "nothing of the conflicting group was applied";
}

TEST_F(BatchTest, ADuplicateKeyInABatchedInsertNamesItAndAppliesNothing) {
  ASSERT_TRUE(target_->Exec("insert into acc (id) values (1150)", "app").ok());
  std::string before = Digest(target_.get());
  ASSERT_TRUE(source_
                  ->Exec("insert into acc (id, note) select g, 'x' from "
                         "generate_series(1000, 1199) g",
                         "app")
                  .ok());
  CommandResult r = RunTo(Lsn());
  EXPECT_EQ(r.exit_code, ExitCodeOf(ErrorCode::kApplyConflict)) << r.output;
  EXPECT_NE(r.output.find("insert found a duplicate key"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("(id)=(1150)"), std::string::npos) << r.output;
  EXPECT_EQ(Digest(target_.get()), before) << "nothing of the conflicting group was applied";
}

}  // namespace
}  // namespace pgbaton::testing

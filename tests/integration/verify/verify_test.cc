// `pgbaton verify` between a PostgreSQL 15 source and a 17 target: identical data matches (even
// with different server defaults for time zone, date style and float digits), a row changed behind
// the tool's back is pinned to its table, key range and key, and a missing table is a clear error.
#include "tools/verification/verify.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/support/pg_server.h"
#include "tests/support/pg_test.h"
#include "tests/support/process.h"

namespace pgbaton::testing {
namespace {

// Same SQL on both sides: several key shapes, many types, a table without a key, an empty table.
constexpr const char* kSchema = R"sql(
CREATE TABLE accounts (aid int PRIMARY KEY, abalance int, filler text, f float8, ts timestamptz,
                       d date, iv interval, j jsonb, n numeric, b bytea, tags text[]);
INSERT INTO accounts
  SELECT g, g * 7 % 1000, 'row ' || g, g / 3.0, '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 minute',
         date '2024-01-01' + g, g * interval '1 second', jsonb_build_object('k', g, 'v', 'x' || g),
         g * 1.25, decode(md5(g::text), 'hex'), ARRAY['a' || g, 'b']
  FROM generate_series(1, 2500) g;
CREATE SCHEMA shop;
CREATE TABLE shop.items (sku text PRIMARY KEY, qty int);
INSERT INTO shop.items SELECT 'sku-' || g || CASE WHEN g % 2 = 0 THEN 'B' ELSE 'a' END, g
  FROM generate_series(1, 1200) g;
CREATE TABLE shop.lines (order_id int, line int, amount numeric(10,2), PRIMARY KEY (order_id, line));
INSERT INTO shop.lines SELECT g / 10, g % 10, g * 0.5 FROM generate_series(1, 3000) g;
CREATE TABLE nokey (a int, b text);
INSERT INTO nokey SELECT g % 50, 'v' || g FROM generate_series(1, 300) g;
CREATE TABLE empty_t (id bigint PRIMARY KEY);
)sql";

class VerifyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    source_ = StartServer(15).release();
    // The target's defaults differ from the source's on purpose: verify must not depend on them.
    target_ = StartServer(17, {.settings = {{"timezone", "'America/New_York'"},
                                            {"datestyle", "'SQL, DMY'"},
                                            {"extra_float_digits", "0"},
                                            {"intervalstyle", "'iso_8601'"}}})
                  .release();
    ASSERT_TRUE(source_ && target_);
  }
  static void TearDownTestSuite() {
    delete source_;
    delete target_;
    source_ = target_ = nullptr;
  }

  // A fresh database with the schema and data on both sides.
  void MakeDatabase(const std::string& db) {
    ASSERT_NE(source_, nullptr);
    ASSERT_NE(target_, nullptr);
    for (PgServer* s : {source_, target_}) {
      ASSERT_TRUE(s->Exec("CREATE DATABASE " + db).ok());
      Status st = s->Exec(kSchema, db);
      ASSERT_TRUE(st.ok()) << st.ToString();
    }
  }

  CommandResult Verify(const std::string& db, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {PgbatonBinary(),       "verify",   "--source",
                                     source_->Conninfo(db), "--target", target_->Conninfo(db)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    ProcessOptions po;
    po.stderr_path = "/dev/null";
    return RunCommand(argv, po);
  }

  static PgServer* source_;
  static PgServer* target_;
};

PgServer* VerifyTest::source_ = nullptr;
PgServer* VerifyTest::target_ = nullptr;

TEST_F(VerifyTest, IdenticalDataMatchesAcrossMajors) {
  MakeDatabase("same");
  CommandResult r = Verify("same", {"--chunk-rows", "1000"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("verify: 5 tables compared, 5 match, 0 differ"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("ok      public.accounts: 2500 rows in 3 key ranges"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("ok      shop.lines: 3000 rows in 3 key ranges"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("ok      public.nokey: 300 rows"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ok      public.empty_t: 0 rows"), std::string::npos) << r.output;

  // JSON says the same.
  CommandResult j = Verify("same", {"--chunk-rows", "1000", "--json"});
  ASSERT_EQ(j.exit_code, 0) << "signal " << j.signal << ": " << j.output;
  auto doc = nlohmann::json::parse(j.output);
  EXPECT_EQ(doc["match"], true);
  EXPECT_EQ(doc["tables"].size(), 5u);
}

// Options from the config file and the environment reach the command (tools/config).
TEST_F(VerifyTest, OptionsFromConfigFileAndEnvironment) {
  MakeDatabase("configured");
  std::string dir = MakeTempDir("pgbaton-verify-config");
  WriteFile(dir + "/pgbaton.toml",
            "source = \"" + source_->Conninfo("configured") + "\"\n[verify]\nchunk-rows = 1000\n");
  ProcessOptions po;
  po.stderr_path = "/dev/null";
  po.env = {{"PGBATON_TARGET", target_->Conninfo("configured")},
            {"PGBATON_TABLES", "public.accounts"}};
  CommandResult r = RunCommand({PgbatonBinary(), "--config", dir + "/pgbaton.toml", "verify"}, po);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("ok      public.accounts: 2500 rows in 3 key ranges"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("verify: 1 tables compared"), std::string::npos) << r.output;
  // A flag beats the file.
  CommandResult flag = RunCommand(
      {PgbatonBinary(), "--config", dir + "/pgbaton.toml", "verify", "--chunk-rows", "100000"}, po);
  EXPECT_EQ(flag.exit_code, 0) << flag.output;
  EXPECT_NE(flag.output.find("ok      public.accounts: 2500 rows\n"), std::string::npos)
      << flag.output;
  RemoveTree(dir);
}

TEST_F(VerifyTest, ChangedRowIsPinnedToTableRangeAndKey) {
  MakeDatabase("changed");
  // Behind the tool's back: one row changed, one deleted, one added (below the source's keys).
  ASSERT_TRUE(
      target_->Exec("UPDATE accounts SET abalance = abalance + 1 WHERE aid = 1500", "changed")
          .ok());
  ASSERT_TRUE(target_->Exec("DELETE FROM shop.items WHERE sku = 'sku-7a'", "changed").ok());
  ASSERT_TRUE(target_->Exec("INSERT INTO shop.lines VALUES (-5, 1, 1.00)", "changed").ok());

  CommandResult r = Verify("changed", {"--chunk-rows", "1000"});
  EXPECT_EQ(r.exit_code, 81) << r.output;
  EXPECT_NE(r.output.find("table public.accounts: rows 1001..2000 (aid 1001 to 2000) differ: "
                          "source 1000 rows md5 "),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("aid=1500: changed"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("sku=sku-7a: missing on target"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("table shop.lines: rows 1..1000"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("order_id=-5, line=1: extra on target"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("verify: 5 tables compared, 2 match, 3 differ"), std::string::npos)
      << r.output;
  // The unchanged ranges of accounts are not reported.
  EXPECT_EQ(r.output.find("rows 1..1000 (aid"), std::string::npos) << r.output;

  // A change in a table without a key is found too (not pinned to a row).
  ASSERT_TRUE(target_->Exec("UPDATE nokey SET b = 'x' WHERE b = 'v17'", "changed").ok());
  CommandResult only = Verify("changed", {"--tables", "public.nokey,public.empty_t"});
  EXPECT_EQ(only.exit_code, 81) << only.output;
  EXPECT_NE(only.output.find("table public.nokey differs: source 300 rows"), std::string::npos)
      << only.output;
  EXPECT_NE(only.output.find("verify: 2 tables compared, 1 match, 1 differ"), std::string::npos)
      << only.output;
}

// A stop request (SIGINT/SIGTERM in the command) ends verify between tables with kInterrupted.
TEST_F(VerifyTest, StopRequestInterrupts) {
  MakeDatabase("stopped");
  auto src = source_->Connect("stopped");
  auto dst = target_->Connect("stopped");
  ASSERT_TRUE(src.ok() && dst.ok());
  std::atomic<bool> stop{true};
  tools::verify::VerifyOptions options;
  options.stop = &stop;
  auto r = tools::verify::VerifyTables(&*src, &*dst, options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInterrupted);
  stop = false;
  auto src2 = source_->Connect("stopped");
  auto dst2 = target_->Connect("stopped");
  ASSERT_TRUE(src2.ok() && dst2.ok());
  auto ok = tools::verify::VerifyTables(&*src2, &*dst2, options);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->differing_tables(), 0);
  EXPECT_EQ(ok->tables.size(), 5u);
}

TEST_F(VerifyTest, MissingTableOnTargetIsAClearError) {
  MakeDatabase("missing");
  ASSERT_TRUE(target_->Exec("DROP TABLE shop.items", "missing").ok());
  std::vector<std::string> argv = {PgbatonBinary(), "verify",
                                   "--source",      source_->Conninfo("missing"),
                                   "--target",      target_->Conninfo("missing")};
  CommandResult r = RunCommand(argv);
  EXPECT_EQ(r.exit_code, 80) << r.output;
  EXPECT_NE(r.output.find("table shop.items exists on source but not on target"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("hint:"), std::string::npos) << r.output;

  CommandResult unknown = Verify("missing", {"--tables", "public.nope"});
  EXPECT_EQ(unknown.exit_code, 80) << unknown.output;
}

}  // namespace
}  // namespace pgbaton::testing

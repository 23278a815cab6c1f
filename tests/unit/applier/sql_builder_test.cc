// The SQL the applier generates, checked against tests/data/applier/sql_golden.txt. To accept a
// deliberate change: PGBATON_UPDATE_GOLDEN=1 ./applier_unit_test, then review the diff.
#include "applier/sql_builder.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "tests/unit/applier/test_relations.h"

namespace pgbaton::applier {
namespace {

using namespace testing;  // NOLINT

std::string Params(const PlannedChange& pc) {
  std::string out;
  for (size_t i = 0; i < pc.params.size(); ++i) {
    out += (i ? ", " : "") + std::string("$") + std::to_string(i + 1) + "=" +
           (pc.params[i] ? "'" + *pc.params[i] + "'" : "NULL");
  }
  return out;
}

std::string Render(const std::string& title, const TargetRelation& rel, const queue::Change& c,
                   PlanFlags flags = {}) {
  auto pc = PlanChange(rel, c, flags);
  if (!pc.ok()) return "-- " + title + "\nerror: " + pc.status().message() + "\n\n";
  return "-- " + title + "\n" + BuildSql(rel, pc->shape) + "\n   params: " + Params(*pc) +
         (pc->expect_row ? "  (one row expected)" : "") + "\n\n";
}

std::string GenerateAll() {
  std::string out;
  TargetRelation acc = Accounts();
  out += Render("default identity: insert", acc, Insert({T("1"), T("a@x"), T("10.50"), N()}));
  out += Render("default identity: insert, --on-conflict skip", acc,
                Insert({T("1"), T("a@x"), T("10.50"), N()}), PlanFlags{true});
  out += Render("default identity: update, key unchanged (no old tuple)", acc,
                Update(std::nullopt, {T("1"), T("b@x"), T("11"), T("n")}));
  out += Render("default identity: update with unchanged TOAST column (note)", acc,
                Update(std::nullopt, {T("1"), T("b@x"), T("11"), U()}));
  out += Render("default identity: key-changing update (old key sent)", acc,
                Update(queue::Tuple{T("1"), N(), N(), N()}, {T("2"), T("b@x"), T("11"), U()}));
  out += Render("default identity: delete", acc, Delete({T("2"), N(), N(), N()}));

  TargetRelation idx = DescribeWithoutCatalog(
      Rel("app", "User Sessions", queue::ReplicaIdentity::kIndex,
          {Col("tenant", "pg_catalog.int8", true), Col("token", "pg_catalog.uuid", true),
           Col("user", "pg_catalog.text"), Col("data", "app.session_state")}));
  out += Render("using index identity (two columns), quoted names: update", idx,
                Update(std::nullopt, {T("7"), T("0e9a-..."), T("bob"), T("(1,x)")}));
  out += Render("using index identity: delete", idx, Delete({T("7"), T("0e9a-..."), N(), N()}));

  TargetRelation ev = Events();
  out += Render("full identity, no key: update sets only changed columns, NULL-safe match", ev,
                Update(queue::Tuple{T("1"), N(), T("{\"k\": 1}")},
                       {T("1"), T("now set"), T("{\"k\": 1}")}, /*key_only=*/false));
  out += Render("full identity, no key: delete", ev,
                Delete({T("1"), N(), T("{}")}, /*key_only=*/false));
  out += Render("full identity, no key: update that changes nothing", ev,
                Update(queue::Tuple{T("1"), T("x"), N()}, {T("1"), T("x"), N()}, false));
  TargetRelation evp = Events(/*partitioned=*/true);
  out += Render("full identity, partitioned table: delete by (tableoid, ctid)", evp,
                Delete({T("1"), T("b"), T("{}")}, /*key_only=*/false));

  TargetRelation gen = DescribeWithoutCatalog(
      Rel("public", "items", queue::ReplicaIdentity::kDefault,
          {Col("id", "pg_catalog.int8", true), Col("price", "pg_catalog.numeric"),
           Col("price_with_tax", "pg_catalog.numeric")}));
  gen.columns[2].skip = true;  // GENERATED ALWAYS AS (...) STORED on the target
  out += Render("generated column skipped: insert", gen, Insert({T("1"), T("2.00"), T("2.40")}));
  out += Render("generated column skipped: update", gen,
                Update(std::nullopt, {T("1"), T("3.00"), T("3.60")}));

  TargetRelation nothing = DescribeWithoutCatalog(
      Rel("public", "log", queue::ReplicaIdentity::kNothing, {Col("line", "pg_catalog.text")}));
  out += Render("identity nothing: insert", nothing, Insert({T("hello")}));
  out += Render("identity nothing: delete is refused", nothing, Delete({T("hello")}));

  out += "-- truncate, no flags\n" + BuildTruncateSql({&acc}, 0) + "\n\n";
  out += "-- truncate, cascade\n" + BuildTruncateSql({&acc}, queue::kTruncateCascade) + "\n\n";
  out += "-- truncate, restart identity\n" +
         BuildTruncateSql({&acc}, queue::kTruncateRestartIdentity) + "\n\n";
  out += "-- truncate, two relations, both flags\n" +
         BuildTruncateSql({&acc, &idx}, queue::kTruncateCascade | queue::kTruncateRestartIdentity) +
         "\n\n";

  out += "-- multi-row update (key unchanged, merged rows)\n" +
         BuildBatchUpdateSql(acc, UpdateColumns(acc, {T("1"), T("b@x"), T("11"), U()})) + "\n\n";
  out += "-- multi-row update, two-column key, quoted names\n" +
         BuildBatchUpdateSql(idx, UpdateColumns(idx, {T("7"), T("t"), T("bob"), T("(1,x)")})) +
         "\n\n";
  out +=
      "-- multi-row update: the key of a row it did not find\n" + BuildMissingKeysSql(idx) + "\n\n";
  out += "-- multi-row insert, generated column skipped\n" +
         BuildBatchInsertSql(gen, InsertColumns(gen, {T("1"), T("2.00"), T("2.40")})) + "\n\n";
  std::string array = "{";
  bool first = true;
  for (const auto& v :
       {T("plain"), T("a\"quote"), T("back\\slash"), T("{brace},comma"), N(), T("NULL"), T("")}) {
    AppendArrayElement(v, first, &array);
    first = false;
  }
  out += "-- array literal of the values above\n" + array + "}\n\n";
  out += "-- copy\n" + BuildCopySql(acc, {0, 1, 2, 3}) + "\n";
  std::string rows;
  AppendCopyRow({T("1"), T("tab\there"), T("back\\slash"), N()}, {0, 1, 2, 3}, &rows);
  AppendCopyRow({T("2"), T("line\nbreak\r"), T(""), T("\\N")}, {0, 1, 2, 3}, &rows);
  out += rows + "\n";
  return out;
}

TEST(SqlBuilderTest, MatchesGoldenFile) {
  std::string path = std::string(PGBATON_TEST_DATA_DIR) + "/applier/sql_golden.txt";
  std::string got = GenerateAll();
  if (std::getenv("PGBATON_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(path) << got;
    GTEST_SKIP() << "golden file rewritten: " << path;
  }
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << "missing golden file " << path;
  std::stringstream want;
  want << in.rdbuf();
  EXPECT_EQ(want.str(), got);
}

TEST(SqlBuilderTest, UpdateNeverSetsUnchangedToast) {
  TargetRelation acc = Accounts();
  auto pc = PlanChange(acc, Update(std::nullopt, {T("1"), U(), T("1"), U()}), {});
  ASSERT_TRUE(pc.ok());
  EXPECT_EQ(pc->shape.write_cols, std::vector<int>({2}));
  EXPECT_EQ(pc->shape.match_cols, std::vector<int>({0}));
}

TEST(SqlBuilderTest, ShapesDifferWhenColumnSetsDiffer) {
  TargetRelation acc = Accounts();
  auto a = PlanChange(acc, Update(std::nullopt, {T("1"), T("e"), T("1"), U()}), {});
  auto b = PlanChange(acc, Update(std::nullopt, {T("1"), T("e"), T("1"), T("n")}), {});
  auto c = PlanChange(acc, Update(std::nullopt, {T("9"), T("f"), T("2"), U()}), {});
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_NE(a->shape.Key(), b->shape.Key());
  EXPECT_EQ(a->shape.Key(), c->shape.Key());
}

TEST(SqlBuilderTest, WrongTupleWidthIsAProtocolError) {
  TargetRelation acc = Accounts();
  auto pc = PlanChange(acc, Insert({T("1")}), {});
  ASSERT_FALSE(pc.ok());
  EXPECT_EQ(pc.status().code(), ErrorCode::kProtocol);
  EXPECT_NE(pc.status().message().find("public.accounts"), std::string::npos);
}

TEST(SqlBuilderTest, BinaryValuesAreRefused) {
  TargetRelation acc = Accounts();
  queue::Change c = Insert({T("1"), T("a"), T("1"), N()});
  (*c.new_tuple)[1].kind = queue::ValueKind::kBinary;
  auto pc = PlanChange(acc, c, {});
  ASSERT_FALSE(pc.ok());
  EXPECT_EQ(pc.status().code(), ErrorCode::kUnsupportedType);
}

TEST(SqlBuilderTest, DescribeKeyNamesTheKey) {
  TargetRelation acc = Accounts();
  EXPECT_EQ(DescribeKey(acc, Delete({T("42"), N(), N(), N()})), "(id)=(42)");
}

TEST(SqlBuilderTest, OnlyTypesWithCommaSeparatedArraysAreBatched) {
  EXPECT_TRUE(CanBatch(Accounts()));
  for (const char* type : {"pg_catalog.box", "pg_catalog._int4", "Shop Data._address"}) {
    TargetRelation r =
        DescribeWithoutCatalog(Rel("public", "t", queue::ReplicaIdentity::kDefault,
                                   {Col("id", "pg_catalog.int4", true), Col("v", type)}));
    EXPECT_FALSE(CanBatch(r)) << type;
  }
}

// The defect of issue 20: a type in a schema whose name has a space was cast unquoted
// (`$3::Shop Data.address`). Both parts are quoted apart, whatever they hold.
TEST(SqlBuilderTest, CastsQuoteBothPartsOfTheType) {
  TargetRelation r = DescribeWithoutCatalog(
      Rel("Shop Data", "select", queue::ReplicaIdentity::kDefault,
          {Col("id", "pg_catalog.int4", true), Col("home", QualifiedName{"Shop Data", "address"}),
           Col("odd", QualifiedName{"a.b", "t\"y.pe"})}));
  EXPECT_EQ(r.quoted_name, "\"Shop Data\".\"select\"");
  EXPECT_EQ(r.columns[1].cast, "\"Shop Data\".\"address\"");
  EXPECT_EQ(r.columns[2].cast, "\"a.b\".\"t\"\"y.pe\"");
  auto pc = PlanChange(r, Update(std::nullopt, {T("1"), T("(x)"), T("y")}), {});
  ASSERT_TRUE(pc.ok()) << pc.status().ToString();
  std::string sql = BuildSql(r, pc->shape);
  EXPECT_NE(sql.find("\"home\" = $1::\"Shop Data\".\"address\""), std::string::npos) << sql;
}

}  // namespace
}  // namespace pgbaton::applier

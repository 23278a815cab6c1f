// The DDL record (applier/ddl_record.h): its JSON both ways, splitting a query string into
// statements as PostgreSQL's lexer would, and the statement replayed for each kind of record.
#include "applier/ddl_record.h"

#include <gtest/gtest.h>

namespace pgbaton::applier {
namespace {

DdlRecord Record(std::string tag, std::string command) {
  DdlRecord r;
  r.tag = std::move(tag);
  r.command = std::move(command);
  r.search_path = "\"$user\", public";
  r.role = "app";
  return r;
}

TEST(DdlRecordTest, RoundTripsThroughJson) {
  DdlRecord r = Record("ALTER TABLE", "alter table \"Sales Data\".\"Order\" add column x int;");
  r.objects.push_back({"table", "\"Sales Data\".\"Order\"", "Sales Data", "Order"});
  r.objects.push_back({"schema", "s", "", ""});
  auto back = DecodeDdlRecord(EncodeDdlRecord(r));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, r);
}

TEST(DdlRecordTest, ReadsWhatTheTriggerWrites) {
  // As pgbaton.ddl_capture() writes it (jsonb: keys sorted, nulls for absent fields).
  auto r = DecodeDdlRecord(
      R"J({"v": 1, "tag": "CREATE TABLE AS", "role": "postgres", "create": "CREATE TABLE public.ct (id integer)", "command": "create table ct as select 1 as id;", "objects": [{"type": "table", "schema": "public", "identity": "public.ct", "relation": "ct"}, {"type": "SCHEMA", "schema": null, "identity": null, "relation": null}], "search_path": "\"$user\", public"})J");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->tag, "CREATE TABLE AS");
  EXPECT_EQ(r->create_table, "CREATE TABLE public.ct (id integer)");
  ASSERT_EQ(r->objects.size(), 2u);
  EXPECT_EQ(r->objects[0].relation, "ct");
  EXPECT_EQ(r->objects[1].identity, "");
}

TEST(DdlRecordTest, RefusesWhatIsNotARecord) {
  EXPECT_EQ(DecodeDdlRecord("not json").status().code(), ErrorCode::kQueueCorrupt);
  EXPECT_EQ(DecodeDdlRecord(R"({"v": 1, "command": "x"})").status().code(),
            ErrorCode::kQueueCorrupt);
  EXPECT_EQ(DecodeDdlRecord(R"({"v": 1, "tag": 3, "command": "x"})").status().code(),
            ErrorCode::kQueueCorrupt);
  EXPECT_EQ(DecodeDdlRecord(R"({"v": 9, "tag": "T", "command": "x"})").status().code(),
            ErrorCode::kQueueFormat);
}

TEST(DdlRecordTest, SplitsAtTopLevelSemicolonsOnly) {
  EXPECT_EQ(SplitStatements("alter table t add c int;"),
            std::vector<std::string>{"alter table t add c int"});
  EXPECT_EQ(SplitStatements("  ;; select 1 ; select 2;  "),
            (std::vector<std::string>{"select 1", "select 2"}));
  // Semicolons inside strings, quoted names, dollar quotes and comments do not split.
  EXPECT_EQ(SplitStatements("comment on table t is 'a;b'").size(), 1u);
  EXPECT_EQ(SplitStatements("comment on table t is E'a\\';b'").size(), 1u);
  EXPECT_EQ(SplitStatements("create table \"a;b\" (c int)").size(), 1u);
  EXPECT_EQ(
      SplitStatements("create function f() returns int as $$ select 1; $$ language sql").size(),
      1u);
  EXPECT_EQ(SplitStatements("create function f() returns int as $body$ select 1; $body$ "
                            "language sql; drop table x")
                .size(),
            2u);
  EXPECT_EQ(SplitStatements("create table t (a int) -- x; y\n").size(), 1u);
  EXPECT_EQ(SplitStatements("create table t /* a /* nested; */ ; */ (a int)").size(), 1u);
  // $1 is a parameter, not a dollar quote.
  EXPECT_EQ(SplitStatements("prepare p as select $1; select 2").size(), 2u);
}

TEST(DdlRecordTest, ReplaysTheCommandAsExecuted) {
  auto s = ReplayStatement(Record("ALTER TABLE", "ALTER TABLE \"select\" ADD \"Col\" int;\n"));
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(*s, "ALTER TABLE \"select\" ADD \"Col\" int");
}

TEST(DdlRecordTest, ReplaysCreateTableAsAsPlainCreateTable) {
  DdlRecord r = Record("CREATE TABLE AS", "create table ct as select 1 as id");
  r.create_table = "CREATE TABLE public.ct (id integer)";
  EXPECT_EQ(*ReplayStatement(r), "CREATE TABLE public.ct (id integer)");
  DdlRecord into = Record("SELECT INTO", "select 1 as id into ct");
  into.create_table = "CREATE TABLE public.ct (id integer)";
  EXPECT_EQ(*ReplayStatement(into), "CREATE TABLE public.ct (id integer)");
}

TEST(DdlRecordTest, DropsConcurrently) {
  EXPECT_EQ(*ReplayStatement(Record("CREATE INDEX", "create index concurrently i on t (a);")),
            "create index i on t (a)");
  EXPECT_EQ(*ReplayStatement(Record("CREATE INDEX",
                                    "CREATE UNIQUE INDEX CONCURRENTLY \"concurrently\" ON t (a)")),
            "CREATE UNIQUE INDEX \"concurrently\" ON t (a)");
  EXPECT_EQ(*ReplayStatement(Record("DROP INDEX", "drop index concurrently if exists i")),
            "drop index if exists i");
  EXPECT_EQ(
      *ReplayStatement(Record("ALTER TABLE", "alter table p detach partition c concurrently")),
      "alter table p detach partition c");
  // Other commands keep the word (a comment's text, say).
  EXPECT_EQ(*ReplayStatement(Record("COMMENT", "comment on table t is 'concurrently'")),
            "comment on table t is 'concurrently'");
}

TEST(DdlRecordTest, RefusesMultiStatementStringsAndDdlInsideFunctions) {
  auto multi = ReplayStatement(Record("ALTER TABLE",
                                      "alter table t add a int; insert into t "
                                      "values (1)"));
  EXPECT_EQ(multi.status().code(), ErrorCode::kSchemaChanged);
  EXPECT_NE(multi.status().message().find("2 statements"), std::string::npos)
      << multi.status().message();
  EXPECT_NE(multi.status().message().find("insert into t"), std::string::npos);
  auto in_do =
      ReplayStatement(Record("CREATE TABLE", "DO $$ begin create table x (a int); end $$"));
  EXPECT_EQ(in_do.status().code(), ErrorCode::kSchemaChanged);
  EXPECT_NE(in_do.status().message().find("inside a function"), std::string::npos);
  EXPECT_NE(in_do.status().hint().find("--skip-ddl"), std::string::npos);
}

TEST(DdlRecordTest, KnowsPgbatonsOwnAndTemporaryObjects) {
  DdlRecord own = Record("CREATE TABLE", "create table pgbaton.x (a int)");
  own.objects.push_back({"table", "pgbaton.x", "pgbaton", "x"});
  EXPECT_TRUE(OnlyInternalObjects(own));
  DdlRecord temp = Record("CREATE TABLE", "create temp table x (a int)");
  temp.objects.push_back({"table", "pg_temp.x", "pg_temp", "x"});
  EXPECT_TRUE(OnlyInternalObjects(temp));
  DdlRecord user = Record("CREATE TABLE", "create table x (a int)");
  user.objects.push_back({"table", "public.x", "public", "x"});
  EXPECT_FALSE(OnlyInternalObjects(user));
  EXPECT_FALSE(OnlyInternalObjects(Record("GRANT", "grant select on t to public")));
}

}  // namespace
}  // namespace pgbaton::applier

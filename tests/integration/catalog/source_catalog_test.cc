// The source catalogue against a real server: which tables are user tables and what is known of
// each, sequence values read on one database and written on another (called, never called,
// restarted), sequences a role may not read, a publication of a partitioned root (what a
// filtered copy creates) and of a table that is not there. (Oddly named tables in a publication:
// tests/integration/decoder/slot_snapshot_test.cc.)
#include "catalog/source_catalog.h"

#include <gtest/gtest.h>

#include <map>

#include "tests/support/pg_server.h"

namespace pgbaton::testing {
namespace {

class SourceCatalogTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    PgServerOptions o;
    o.major = GetParam();
    auto server = PgServer::Start(o);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
  }
  PgConn Connect(const std::string& db = "postgres", const std::string& user = "postgres") {
    auto c = server_->Connect(db, user);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : PgConn();
  }
  std::unique_ptr<PgServer> server_;
};

TEST_P(SourceCatalogTest, UserTables) {
  ASSERT_TRUE(server_
                  ->Exec("create table t (id bigint primary key, v text);"
                         "create table nk (v text);"
                         "create table f (v text); alter table f replica identity full;"
                         "create table ri (a int not null, b int not null);"
                         "create unique index ri_ab on ri (a, b);"
                         "alter table ri replica identity using index ri_ab;"
                         "create table p (id int primary key) partition by range (id);"
                         "create table p1 partition of p for values from (0) to (10);"
                         "create unlogged table u (id int primary key);"
                         "create schema \"Shop Data\";"
                         "create table \"Shop Data\".\"Odd \"\"x\"\"\" (k text primary key);"
                         "insert into t select g, repeat('x', 100) from generate_series(1, 1000) g")
                  .ok());
  PgConn conn = Connect();
  auto tables = catalog::ListUserTables(conn);
  ASSERT_TRUE(tables.ok()) << tables.status().ToString();
  std::map<std::string, catalog::UserTable> by_key;
  std::vector<std::string> keys;
  for (const auto& t : *tables) {
    keys.push_back(t.Key());
    by_key[t.Key()] = t;
  }
  // Ordered by schema, then name; nothing from pg_catalog or information_schema.
  EXPECT_EQ(keys,
            (std::vector<std::string>{"Shop Data.Odd \"x\"", "public.f", "public.nk", "public.p",
                                      "public.p1", "public.ri", "public.t", "public.u"}));

  const auto& t = by_key["public.t"];
  EXPECT_EQ(t.display, "public.t");
  EXPECT_EQ(t.int_key, "id");
  EXPECT_GT(t.bytes, 0u);
  EXPECT_TRUE(t.HasIdentity());
  EXPECT_TRUE(t.Streamed());
  EXPECT_FALSE(t.extension_member);
  EXPECT_EQ(t.root, t.name);

  EXPECT_FALSE(by_key["public.nk"].HasIdentity());
  EXPECT_TRUE(by_key["public.f"].HasIdentity());
  EXPECT_TRUE(by_key["public.ri"].HasIdentity());
  EXPECT_EQ(by_key["public.ri"].int_key, "");

  EXPECT_TRUE(by_key["public.p"].partitioned);
  EXPECT_FALSE(by_key["public.p"].Streamed());
  EXPECT_EQ(by_key["public.p1"].root, (QualifiedName{"public", "p"}));
  EXPECT_TRUE(by_key["public.p1"].Streamed());
  EXPECT_TRUE(by_key["public.p1"].HasIdentity());  // the parent's key is the partition's

  EXPECT_EQ(by_key["public.u"].persistence, 'u');
  EXPECT_FALSE(by_key["public.u"].Streamed());

  // Shown as the server quotes names: only where needed.
  EXPECT_EQ(by_key["Shop Data.Odd \"x\""].display, "\"Shop Data\".\"Odd \"\"x\"\"\"");

  // One table by its raw name, in any schema; none when it is not there.
  auto odd = catalog::FindTable(conn, QualifiedName{"Shop Data", "Odd \"x\""});
  ASSERT_TRUE(odd.ok()) << odd.status().ToString();
  ASSERT_TRUE(odd->has_value());
  EXPECT_EQ((*odd)->oid, by_key["Shop Data.Odd \"x\""].oid);
  auto none = catalog::FindTable(conn, QualifiedName{"public", "Odd \"x\""});
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_P(SourceCatalogTest, SequenceValuesGoFromOneDatabaseToAnother) {
  ASSERT_TRUE(server_->Exec("create database target").ok());
  const char* kBoth =
      "create schema \"Seq s\"; create sequence called; create sequence never start 5;"
      "create sequence \"Seq s\".\"restarted\"\"\";";
  ASSERT_TRUE(server_->Exec(kBoth).ok());
  ASSERT_TRUE(server_->Exec(kBoth, "target").ok());
  ASSERT_TRUE(server_
                  ->Exec("select nextval('called') from generate_series(1, 3);"
                         "alter sequence \"Seq s\".\"restarted\"\"\" restart with 100;"
                         "create sequence source_only;")
                  .ok());
  PgConn src = Connect();
  PgConn dst = Connect("target");

  auto seqs = catalog::ListSequences(src);
  ASSERT_TRUE(seqs.ok()) << seqs.status().ToString();
  std::vector<std::string> names;
  for (const auto& s : *seqs) names.push_back(QuoteQualified(s.name));
  EXPECT_EQ(names,
            (std::vector<std::string>{"\"Seq s\".\"restarted\"\"\"", "\"public\".\"called\"",
                                      "\"public\".\"never\"", "\"public\".\"source_only\""}));

  auto missing = catalog::MissingOn(dst, *seqs);
  ASSERT_TRUE(missing.ok()) << missing.status().ToString();
  EXPECT_EQ(*missing, (std::vector<QualifiedName>{{"public", "source_only"}}));
  // Written where it is missing: an error naming what to do.
  ASSERT_TRUE(catalog::ReadValues(src, &*seqs).ok());
  Status all = catalog::WriteValues(dst, *seqs);
  EXPECT_FALSE(all.ok());
  EXPECT_NE(all.message().find("copying sequence values to"), std::string::npos) << all.message();

  std::erase_if(*seqs, [](const auto& s) { return s.name.name == "source_only"; });
  Status written = catalog::WriteValues(dst, *seqs);
  ASSERT_TRUE(written.ok()) << written.ToString();
  // The target continues where the source is: after the last value called, at the start of one
  // never called, at the value a restart set.
  auto next = dst.QueryValue(
      "select nextval('called') || ',' || nextval('never') || ',' || "
      "nextval('\"Seq s\".\"restarted\"\"\"')");
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(*next, "4,5,100");
}

TEST_P(SourceCatalogTest, AnUnreadableSequenceIsNamed) {
  ASSERT_TRUE(server_
                  ->Exec("create sequence secret; create role reader login;"
                         "grant usage on schema public to reader")
                  .ok());
  PgConn conn = Connect("postgres", "reader");
  auto seqs = catalog::ListSequences(conn);
  ASSERT_TRUE(seqs.ok()) << seqs.status().ToString();
  ASSERT_EQ(seqs->size(), 1u);
  EXPECT_FALSE(seqs->front().readable);
  Status s = catalog::ReadValues(conn, &*seqs);
  EXPECT_EQ(s.code(), ErrorCode::kPermission) << s.ToString();
  EXPECT_NE(s.message().find("sequence \"public\".\"secret\" on "), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find(" is not readable"), std::string::npos) << s.message();
}

TEST_P(SourceCatalogTest, PublicationOfAPartitionedRootOrOfATableThatIsNotThere) {
  ASSERT_TRUE(server_
                  ->Exec("create table p (id int primary key) partition by range (id);"
                         "create table p1 partition of p for values from (0) to (10)")
                  .ok());
  PgConn conn = Connect();
  auto created = catalog::EnsurePublication(conn, "Mig \"x\"", {QualifiedName{"public", "p"}});
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_TRUE(*created);
  // 12 cannot publish a partitioned table: its partitions are published instead.
  auto listed = conn.QueryValue(
      "select string_agg(r.prrelid::regclass::text, ',') from pg_publication_rel r "
      "join pg_publication p on p.oid = r.prpubid where p.pubname = 'Mig \"x\"'");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_EQ(*listed, GetParam() == 12 ? "p1" : "p");
  auto all = conn.QueryValue("select puballtables from pg_publication where pubname = 'Mig \"x\"'");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, "f");

  auto missing = catalog::EnsurePublication(conn, "other", {QualifiedName{"public", "nope"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("creating publication \"other\""), std::string::npos)
      << missing.status().message();
  auto exists = catalog::PublicationExists(conn, "other");
  ASSERT_TRUE(exists.ok());
  EXPECT_FALSE(*exists);
}

INSTANTIATE_TEST_SUITE_P(Majors, SourceCatalogTest, ::testing::Values(12, 13, 17),
                         [](const auto& info) { return "pg" + std::to_string(info.param); });

}  // namespace
}  // namespace pgbaton::testing

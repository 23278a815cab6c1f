// Slot creation with an exported snapshot on both syntaxes (13/14: EXPORT_SNAPSHOT, 15+:
// (SNAPSHOT 'export')): the snapshot is usable while the holder lives and shows exactly the data
// committed before the slot's consistent point.
#include <gtest/gtest.h>

#include "catalog/source_catalog.h"
#include "decoder/replication.h"
#include "tests/support/pg_server.h"
#include "tests/support/pg_test.h"

namespace pgbaton::testing {
namespace {

class SlotSnapshotTest : public ::testing::TestWithParam<int> {};

TEST_P(SlotSnapshotTest, ExportedSnapshotLivesWithTheHolder) {
  auto server = StartServer(GetParam());
  ASSERT_TRUE(server);
  PgServer& s = *server;
  ASSERT_TRUE(s.Exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)").ok());

  auto holder = decoder::SnapshotHolder::Create(s.Conninfo(), "snapslot");
  ASSERT_TRUE(holder.ok()) << holder.status().ToString();
  const auto& info = (*holder)->info();
  EXPECT_EQ(info.slot_name, "snapslot");
  EXPECT_TRUE(info.consistent_point.IsValid());
  ASSERT_FALSE(info.snapshot_name.empty());
  ASSERT_TRUE(s.Exec("INSERT INTO t VALUES (2)").ok());  // after the snapshot

  auto reader = s.Connect();
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE(reader->Run("BEGIN ISOLATION LEVEL REPEATABLE READ").ok());
  ASSERT_TRUE(reader->Run("SET TRANSACTION SNAPSHOT '" + info.snapshot_name + "'").ok());
  auto n = reader->QueryValue("select count(*) from t");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, "1");
  ASSERT_TRUE(reader->Run("COMMIT").ok());

  // The slot exists; once the holder is gone the snapshot cannot be imported any more.
  auto slot = s.Query("select count(*) from pg_replication_slots where slot_name = 'snapslot'");
  ASSERT_TRUE(slot.ok());
  EXPECT_EQ(*slot, "1");
  holder->reset();
  ASSERT_TRUE(reader->Run("BEGIN ISOLATION LEVEL REPEATABLE READ").ok());
  EXPECT_FALSE(reader->Run("SET TRANSACTION SNAPSHOT '" + info.snapshot_name + "'").ok());
  ASSERT_TRUE(reader->Run("ROLLBACK").ok());

  // Dropping: the slot goes; dropping it again names it as missing.
  auto rc = decoder::ReplicationConnection::Connect(s.Conninfo());
  ASSERT_TRUE(rc.ok()) << rc.status().ToString();
  ASSERT_TRUE((*rc)->DropSlot("snapslot").ok());
  auto exists = (*rc)->SlotExists("snapslot");
  ASSERT_TRUE(exists.ok());
  EXPECT_FALSE(*exists);
  Status again = (*rc)->DropSlot("snapslot");
  EXPECT_EQ(again.code(), ErrorCode::kSlotMissing);
  EXPECT_NE(again.message().find("slot \"snapslot\" on source (127.0.0.1:"), std::string::npos)
      << again.message();
  // A publication: created once, then found, then dropped.
  auto conn = s.Connect();
  ASSERT_TRUE(conn.ok());
  auto created = catalog::EnsurePublication(*conn, "pub", {QualifiedName{"public", "t"}});
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_TRUE(*created);
  auto twice = catalog::EnsurePublication(*conn, "pub", {});
  ASSERT_TRUE(twice.ok());
  EXPECT_FALSE(*twice);
  ASSERT_TRUE(catalog::DropPublication(*conn, "pub").ok());
  auto gone = catalog::PublicationExists(*conn, "pub");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(*gone);
  // Tables whose names hold dots, quotes and spaces are published as themselves (the list was
  // once "schema.table" strings split at the first dot).
  ASSERT_TRUE(
      conn->Run("create schema \"a.b\"; create table \"a.b\".\"c \"\"d\"\".e\" (id int primary "
                "key); create table public.\"user\" (id int primary key)")
          .ok());
  auto odd = catalog::EnsurePublication(
      *conn, "pub \"odd\"", {QualifiedName{"a.b", "c \"d\".e"}, QualifiedName{"public", "user"}});
  ASSERT_TRUE(odd.ok()) << odd.status().ToString();
  auto listed = conn->QueryValue(
      "select string_agg(schemaname || '|' || tablename, ',' order by schemaname, tablename) from "
      "pg_publication_tables where pubname = 'pub \"odd\"'");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_EQ(*listed, "a.b|c \"d\".e,public|user");
}

INSTANTIATE_TEST_SUITE_P(Majors, SlotSnapshotTest, ::testing::Values(12, 13, 17),
                         [](const auto& info) { return "pg" + std::to_string(info.param); });

}  // namespace
}  // namespace pgbaton::testing

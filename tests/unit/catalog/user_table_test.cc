// catalog::UserTable: which tables can have their updates and deletes replicated, and which
// hold rows that logical decoding streams.
#include <gtest/gtest.h>

#include "catalog/source_catalog.h"

namespace pgbaton::catalog {
namespace {

UserTable Table(char identity, bool primary_key, bool identity_index) {
  UserTable t;
  t.name = QualifiedName{"Shop Data", "a.b"};
  t.replica_identity = identity;
  t.has_primary_key = primary_key;
  t.has_identity_index = identity_index;
  return t;
}

TEST(UserTableTest, IdentityByReplicaIdentitySetting) {
  EXPECT_TRUE(Table('d', true, false).HasIdentity());    // default: the primary key
  EXPECT_FALSE(Table('d', false, false).HasIdentity());  // default without one: none
  EXPECT_TRUE(Table('f', false, false).HasIdentity());   // FULL: the whole row
  EXPECT_FALSE(Table('n', true, false).HasIdentity());   // NOTHING, even with a key
  EXPECT_TRUE(Table('i', false, true).HasIdentity());    // USING INDEX
  // USING INDEX whose index was dropped: PostgreSQL then sends no old key at all.
  EXPECT_FALSE(Table('i', true, false).HasIdentity());
}

TEST(UserTableTest, StreamedAreThePermanentLeafTables) {
  UserTable t;
  EXPECT_TRUE(t.Streamed());
  t.persistence = 'u';
  EXPECT_FALSE(t.Streamed());
  t.persistence = 'p';
  t.partitioned = true;
  EXPECT_FALSE(t.Streamed());
}

TEST(UserTableTest, KeyIsTheUnquotedName) {
  EXPECT_EQ(Table('d', true, false).Key(), "Shop Data.a.b");
}

}  // namespace
}  // namespace pgbaton::catalog

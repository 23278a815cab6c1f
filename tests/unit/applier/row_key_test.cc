// Row keys: one representation for write-set hashes, merged-update identity and key order.
#include "applier/row_key.h"

#include <gtest/gtest.h>

#include "tests/unit/applier/test_relations.h"

namespace pgbaton::applier {
namespace {

using namespace testing;  // NOLINT

RowKey Key(const TargetRelation& rel, queue::Tuple t) {
  std::optional<RowKey> k = RowKey::Of(rel, rel.key_columns, t);
  EXPECT_TRUE(k.has_value());
  return k.value_or(*RowKey::Of(rel, {}, t));
}

TEST(RowKeyTest, UnknownValuesAndMissingColumnsHaveNoKey) {
  TargetRelation p = Plain();
  EXPECT_FALSE(RowKey::Of(p, p.key_columns, {U(), T("a")}).has_value());
  EXPECT_FALSE(RowKey::Of(p, {0, 1}, {T("1")}).has_value());
  EXPECT_TRUE(RowKey::Of(p, p.key_columns, {N(), U()}).has_value());  // only the key counts
}

TEST(RowKeyTest, EqualForTheSameDescriptorAndValuesOnly) {
  TargetRelation p = Plain();
  EXPECT_EQ(Key(p, {T("7"), T("a")}), Key(p, {T("7"), T("b")}));
  EXPECT_FALSE(Key(p, {T("7"), T("a")}) == Key(p, {T("8"), T("a")}));
  EXPECT_NE(Key(p, {T("7"), T("a")}).Hash(), Key(p, {T("8"), T("a")}).Hash());
  // NULL is not the empty string; lengths keep ("ab", "c") apart from ("a", "bc").
  EXPECT_NE(RowKey::Of(p, {1}, {T("1"), N()})->Hash(), RowKey::Of(p, {1}, {T("1"), T("")})->Hash());
  EXPECT_NE(RowKey::Of(p, {0, 1}, {T("ab"), T("c")})->Hash(),
            RowKey::Of(p, {0, 1}, {T("a"), T("bc")})->Hash());
}

TEST(RowKeyTest, HashIsTheSameRowUnderAnotherDescriptorVersion) {
  // Version 2 of public.plain has a column added in front: the key is column 1, not 0. Write
  // sets must see the same row; merged updates must not merge across versions.
  TargetRelation v1 = Plain();
  TargetRelation v2 = DescribeWithoutCatalog(
      Rel("public", "plain", queue::ReplicaIdentity::kDefault,
          {Col("added", "pg_catalog.text"), Col("id", "pg_catalog.int8", true),
           Col("v", "pg_catalog.text")}));
  ASSERT_EQ(v2.key_columns, std::vector<int>{1});
  RowKey a = Key(v1, {T("7"), T("x")});
  RowKey b = Key(v2, {T("new"), T("7"), T("x")});
  EXPECT_EQ(a.Hash(), b.Hash());
  EXPECT_FALSE(a == b);
  // Another relation, or another column with the same value, is another key.
  TargetRelation other = DescribeWithoutCatalog(
      Rel("public", "other", queue::ReplicaIdentity::kDefault,
          {Col("id", "pg_catalog.int8", true), Col("v", "pg_catalog.text")}));
  EXPECT_NE(a.Hash(), Key(other, {T("7"), T("x")}).Hash());
  EXPECT_NE(RowKey::Of(v1, {0}, {T("7"), T("7")})->Hash(),
            RowKey::Of(v1, {1}, {T("7"), T("7")})->Hash());
}

TEST(RowKeyTest, IntegerKeysOrderByValueOthersBytewise) {
  TargetRelation p = Plain();  // id int8
  EXPECT_TRUE(Key(p, {T("2"), N()}).OrdersBefore(Key(p, {T("10"), N()})));
  EXPECT_FALSE(Key(p, {T("10"), N()}).OrdersBefore(Key(p, {T("2"), N()})));
  EXPECT_TRUE(Key(p, {T("-5"), N()}).OrdersBefore(Key(p, {T("3"), N()})));
  // A value that does not parse as an integer goes after every integer.
  EXPECT_TRUE(Key(p, {T("99"), N()}).OrdersBefore(Key(p, {T("1x"), N()})));
  EXPECT_FALSE(Key(p, {T("1x"), N()}).OrdersBefore(Key(p, {T("99"), N()})));

  TargetRelation e =
      DescribeWithoutCatalog(Rel("public", "emails", queue::ReplicaIdentity::kDefault,
                                 {Col("email", "pg_catalog.text", true)}));
  EXPECT_TRUE(Key(e, {T("10")}).OrdersBefore(Key(e, {T("2")})));
  EXPECT_TRUE(Key(e, {T("a")}).OrdersBefore(Key(e, {T("b")})));
  // Equal keys are ordered neither way.
  EXPECT_FALSE(Key(e, {T("a")}).OrdersBefore(Key(e, {T("a")})));
}

TEST(RowKeyTest, OnlyTheFirstColumnOrdersWithinARelation) {
  TargetRelation r = DescribeWithoutCatalog(
      Rel("public", "pairs", queue::ReplicaIdentity::kDefault,
          {Col("a", "pg_catalog.int4", true), Col("b", "pg_catalog.int4", true)}));
  RowKey k12 = Key(r, {T("1"), T("2")});
  RowKey k11 = Key(r, {T("1"), T("1")});
  EXPECT_FALSE(k12 == k11);
  EXPECT_FALSE(k12.OrdersBefore(k11));
  EXPECT_FALSE(k11.OrdersBefore(k12));
  EXPECT_TRUE(k12.OrdersBefore(Key(r, {T("2"), T("0")})));
}

}  // namespace
}  // namespace pgbaton::applier

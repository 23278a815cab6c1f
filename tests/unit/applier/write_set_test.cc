// Write sets and the conflict tracker: which transactions may run on different connections.
#include "applier/write_set.h"

#include <gtest/gtest.h>

#include "tests/unit/applier/test_relations.h"

namespace pgbaton::applier {
namespace {

using namespace testing;  // NOLINT

WriteSet Keys(const TargetRelation& rel, const std::vector<queue::Change>& changes) {
  WriteSet ws;
  for (const auto& c : changes) AddChangeKeys(rel, c, &ws);
  return ws;
}

// Whether a transaction holding `b` in group 2 must wait for group 1 holding `a`.
bool Conflict(const WriteSet& a, const WriteSet& b) {
  ConflictTracker t;
  EXPECT_EQ(t.Acquire(a, 1), 0u);
  return t.Acquire(b, 2) == 1;
}

TEST(WriteSetTest, DifferentRowsDoNotConflict) {
  TargetRelation acc = Accounts();
  EXPECT_FALSE(Conflict(Keys(acc, {Insert({T("1"), T("a"), T("0"), N()})}),
                        Keys(acc, {Insert({T("2"), T("b"), T("0"), N()})})));
}

TEST(WriteSetTest, SameKeyConflicts) {
  TargetRelation acc = Accounts();
  EXPECT_TRUE(Conflict(Keys(acc, {Insert({T("1"), T("a"), T("0"), N()})}),
                       Keys(acc, {Delete({T("1"), N(), N(), N()})})));
}

TEST(WriteSetTest, SameUniqueSecondaryValueConflicts) {
  TargetRelation acc = Accounts();
  EXPECT_TRUE(Conflict(Keys(acc, {Insert({T("1"), T("same@x"), T("0"), N()})}),
                       Keys(acc, {Insert({T("2"), T("same@x"), T("0"), N()})})));
}

TEST(WriteSetTest, KeyChangeConflictsWithOldAndNewKey) {
  TargetRelation p = Plain();
  WriteSet move = Keys(p, {Update(queue::Tuple{T("1"), N()}, {T("5"), T("a")})});
  EXPECT_TRUE(Conflict(move, Keys(p, {Insert({T("1"), T("z")})})));
  EXPECT_TRUE(Conflict(move, Keys(p, {Delete({T("5"), N()})})));
  EXPECT_FALSE(Conflict(move, Keys(p, {Delete({T("6"), N()})})));
  EXPECT_FALSE(Conflict(move, Keys(p, {Update(std::nullopt, {T("7"), T("b")})})));
}

TEST(WriteSetTest, DeleteWithUnknownOldUniqueValueTakesTheIndex) {
  // The deleted row's email is not known (identity DEFAULT sends the key only): a later insert
  // may reuse it, so the delete must commit first.
  TargetRelation acc = Accounts();
  EXPECT_TRUE(Conflict(Keys(acc, {Delete({T("5"), N(), N(), N()})}),
                       Keys(acc, {Insert({T("6"), T("was5@x"), T("0"), N()})})));
  // With the full old row (identity FULL plus a unique index) only the values are taken.
  TargetRelation acc_full = Accounts();
  EXPECT_FALSE(Conflict(Keys(acc_full, {Delete({T("5"), T("a@x"), T("0"), N()}, false)}),
                        Keys(acc_full, {Insert({T("6"), T("b@x"), T("0"), N()})})));
}

TEST(WriteSetTest, UpdateWithUnknownOldUniqueValueTakesTheIndex) {
  // The update may move email away from a value that a later insert reuses: the old value is
  // not sent with identity DEFAULT, so the whole unique index is taken.
  TargetRelation acc = Accounts();
  WriteSet upd = Keys(acc, {Update(std::nullopt, {T("1"), T("new@x"), T("0"), N()})});
  EXPECT_TRUE(Conflict(upd, Keys(acc, {Insert({T("9"), T("old@x"), T("0"), N()})})));
}

TEST(WriteSetTest, InsertsIntoATableWithoutKeyShareIt) {
  TargetRelation ev = Events();
  WriteSet a = Keys(ev, {Insert({T("1"), T("x"), N()})});
  WriteSet b = Keys(ev, {Insert({T("1"), T("x"), N()})});
  EXPECT_FALSE(Conflict(a, b));
  WriteSet del = Keys(ev, {Delete({T("1"), T("x"), N()}, false)});
  EXPECT_TRUE(Conflict(a, del));
  EXPECT_TRUE(Conflict(del, b));
}

TEST(WriteSetTest, TruncateConflictsWithEveryRowOfItsRelation) {
  TargetRelation acc = Accounts();
  TargetRelation ev = Events();
  WriteSet trunc;
  AddTruncateKeys({&acc}, 0, &trunc);
  EXPECT_TRUE(Conflict(Keys(acc, {Insert({T("1"), T("a"), T("0"), N()})}), trunc));
  EXPECT_TRUE(Conflict(trunc, Keys(acc, {Insert({T("2"), T("b"), T("0"), N()})})));
  EXPECT_FALSE(Conflict(trunc, Keys(ev, {Insert({T("1"), T("x"), N()})})));
  WriteSet cascade;
  AddTruncateKeys({&acc}, queue::kTruncateCascade, &cascade);
  EXPECT_TRUE(Conflict(cascade, Keys(ev, {Insert({T("1"), T("x"), N()})})));
}

TEST(WriteSetTest, ExpressionUniqueIndexMakesEveryWriteExclusive) {
  TargetRelation acc = Accounts();
  acc.unique_indexes.push_back({});  // e.g. unique (lower(email))
  EXPECT_TRUE(Conflict(Keys(acc, {Insert({T("1"), T("a"), T("0"), N()})}),
                       Keys(acc, {Insert({T("2"), T("b"), T("0"), N()})})));
}

TEST(ConflictTrackerTest, WaitsForTheLatestConflictingGroupOnly) {
  TargetRelation p = Plain();
  ConflictTracker t;
  WriteSet row1 = Keys(p, {Delete({T("1"), N()})});
  WriteSet row2 = Keys(p, {Delete({T("2"), N()})});
  EXPECT_EQ(t.Acquire(row1, 1), 0u);
  EXPECT_EQ(t.Acquire(row2, 2), 0u);
  EXPECT_EQ(t.Acquire(row1, 3), 1u);
  EXPECT_EQ(t.Acquire(row1, 4), 3u);
  // Within one group nothing waits on itself.
  EXPECT_EQ(t.Acquire(row2, 4), 2u);
  EXPECT_EQ(t.Acquire(row2, 4), 0u);
}

TEST(ConflictTrackerTest, ReleaseForgetsCommittedGroups) {
  TargetRelation acc = Accounts();
  ConflictTracker t;
  WriteSet row1 = Keys(acc, {Delete({T("1"), N(), N(), N()})});
  EXPECT_EQ(t.Acquire(row1, 1), 0u);
  EXPECT_GT(t.size(), 0u);
  t.Release(1);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.Acquire(row1, 2), 0u);
}

}  // namespace
}  // namespace pgbaton::applier

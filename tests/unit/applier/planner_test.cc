// Grouping bounds (rows, bytes, time), connection assignment and waits of the Planner.
#include "applier/planner.h"

#include <gtest/gtest.h>

#include "tests/unit/applier/test_relations.h"

namespace pgbaton::applier {
namespace {

using namespace testing;  // NOLINT
using Clock = Planner::Clock;

WriteSet Row(const char* id) {
  static TargetRelation plain = Plain();
  WriteSet ws;
  AddChangeKeys(plain, Delete({T(id), N()}), &ws);
  return ws;
}

TEST(PlannerTest, GroupsAreBoundedByRows) {
  PlannerOptions o;
  o.group_max_rows = 10;
  Planner p(o);
  auto now = Clock::now();
  uint64_t close = 0;
  std::vector<uint64_t> closed;
  for (int i = 0; i < 25; ++i) {
    Assignment a = p.Add({}, 4, 100, now, &close);
    if (close) closed.push_back(close);
    EXPECT_LE(a.group, 13u);
  }
  // 4 + 4 fit in 10, a third would not: groups of two transactions.
  EXPECT_EQ(closed, std::vector<uint64_t>({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
  EXPECT_EQ(p.open_group(), 13u);
}

TEST(PlannerTest, GroupsAreBoundedByBytes) {
  PlannerOptions o;
  o.group_max_bytes = 1000;
  Planner p(o);
  uint64_t close = 0;
  p.Add({}, 1, 600, Clock::now(), &close);
  EXPECT_EQ(close, 0u);
  Assignment a = p.Add({}, 1, 600, Clock::now(), &close);
  EXPECT_EQ(close, 1u);
  EXPECT_EQ(a.group, 2u);
  EXPECT_TRUE(a.opened);
}

TEST(PlannerTest, ATransactionLargerThanTheBoundStillGetsAGroup) {
  PlannerOptions o;
  o.group_max_rows = 10;
  Planner p(o);
  uint64_t close = 0;
  Assignment a = p.Add({}, 500, 1, Clock::now(), &close);
  EXPECT_EQ(close, 0u);
  EXPECT_EQ(a.group, 1u);
}

TEST(PlannerTest, GroupsAreBoundedByTime) {
  PlannerOptions o;
  o.group_max_delay = std::chrono::milliseconds(200);
  Planner p(o);
  auto t0 = Clock::now();
  uint64_t close = 0;
  p.Add({}, 1, 1, t0, &close);
  EXPECT_EQ(p.CloseIfDue(t0 + std::chrono::milliseconds(100), false), 0u);
  EXPECT_EQ(p.CloseIfDue(t0 + std::chrono::milliseconds(250), false), 1u);
  EXPECT_EQ(p.CloseIfDue(t0 + std::chrono::milliseconds(300), true), 0u);  // nothing open
}

TEST(PlannerTest, GroupsRotateOverConnections) {
  PlannerOptions o;
  o.jobs = 3;
  o.group_max_rows = 1;
  Planner p(o);
  uint64_t close = 0;
  std::vector<int> workers;
  for (int i = 0; i < 6; ++i)
    workers.push_back(p.Add(Row(std::to_string(i).c_str()), 1, 1, Clock::now(), &close).worker);
  EXPECT_EQ(workers, std::vector<int>({0, 1, 2, 0, 1, 2}));
}

TEST(PlannerTest, ConflictingTransactionWaitsForTheEarlierGroup) {
  PlannerOptions o;
  o.jobs = 2;
  o.group_max_rows = 1;
  Planner p(o);
  uint64_t close = 0;
  Assignment a1 = p.Add(Row("1"), 1, 1, Clock::now(), &close);
  Assignment a2 = p.Add(Row("2"), 1, 1, Clock::now(), &close);
  Assignment a3 = p.Add(Row("1"), 1, 1, Clock::now(), &close);  // same worker as a1: in order
  Assignment a4 = p.Add(Row("1"), 1, 1, Clock::now(), &close);  // other worker: must wait
  EXPECT_EQ(a1.wait_for, 0u);
  EXPECT_EQ(a2.wait_for, 0u);
  EXPECT_EQ(a3.worker, a1.worker);
  EXPECT_EQ(a3.wait_for, 0u);
  EXPECT_EQ(a4.wait_for, 3u);
  p.Committed(3);
  Assignment a5 = p.Add(Row("2"), 1, 1, Clock::now(), &close);  // group 5, worker 0
  EXPECT_EQ(a5.wait_for, 0u);  // group 2 committed (3 did, and commits are in order)
}

// A transaction: a mergeable update of `hot` (change 0) and a delete of `cold` (change 1).
WriteSet HotAndCold(const char* hot, const char* cold) {
  static TargetRelation plain = Plain();
  WriteSet ws;
  AddChangeKeys(plain, Update(std::nullopt, {T(hot), T("v")}), &ws, 0);
  AddChangeKeys(plain, Delete({T(cold), N()}), &ws, 1);
  return ws;
}

TEST(PlannerTest, AConflictOnlyOnAMergeableUpdateDefersThatUpdateNotTheTransaction) {
  PlannerOptions o;
  o.jobs = 2;
  o.group_max_rows = 1;
  Planner p(o);
  uint64_t close = 0;
  Assignment a1 = p.Add(HotAndCold("1", "10"), 1, 1, Clock::now(), &close);  // group 1, worker 0
  Assignment a2 = p.Add(HotAndCold("1", "11"), 1, 1, Clock::now(), &close);  // group 2, worker 1
  EXPECT_TRUE(a1.deferred.empty());
  EXPECT_EQ(a2.wait_for, 0u) << "the rest of the transaction runs at once";
  ASSERT_EQ(a2.deferred.size(), 1u);
  EXPECT_EQ(a2.deferred[0], std::make_pair(int32_t{0}, uint64_t{1}));
  // A non-mergeable change of a row a group holds still waits for the whole group.
  Assignment a3 = p.Add(HotAndCold("5", "1"), 1, 1, Clock::now(), &close);  // group 3, worker 0
  Assignment a4 = p.Add(HotAndCold("6", "1"), 1, 1, Clock::now(), &close);  // group 4, worker 1
  EXPECT_EQ(a3.wait_for, 2u) << "group 2 holds row 1 (its deferred update)";
  EXPECT_TRUE(a3.deferred.empty());
  EXPECT_EQ(a4.wait_for, 3u);
  // Once the holder committed there is nothing to defer.
  p.Committed(4);
  Assignment a5 = p.Add(HotAndCold("1", "20"), 1, 1, Clock::now(), &close);
  EXPECT_TRUE(a5.deferred.empty());
  EXPECT_EQ(a5.wait_for, 0u);
}

TEST(PlannerTest, BarrierWaitsForEverythingBeforeAndBlocksEverythingAfter) {
  PlannerOptions o;
  o.jobs = 2;
  o.group_max_rows = 100;
  Planner p(o);
  uint64_t close = 0;
  p.Add(Row("1"), 1, 1, Clock::now(), &close);
  Assignment b = p.AddBarrier(&close);
  EXPECT_EQ(close, 1u);
  EXPECT_EQ(b.group, 2u);
  EXPECT_EQ(b.wait_for, 1u);
  Assignment after = p.Add(Row("9"), 1, 1, Clock::now(), &close);
  EXPECT_EQ(after.group, 3u);
  EXPECT_EQ(after.wait_for, 2u);
}

// A DDL transaction (applier_ddl.cc) is such a barrier: with three connections, the group open
// before it is closed (no group holds transactions from both sides of it), it waits for the
// group just before (which commits only after every earlier one), and every later group waits
// for it, whichever connection runs it, even with write sets disjoint from everything.
TEST(PlannerTest, DdlBarrierIsNeverStraddledOnAnyConnection) {
  PlannerOptions o;
  o.jobs = 3;
  o.group_max_rows = 1;
  Planner p(o);
  uint64_t close = 0;
  Assignment g1 = p.Add(Row("1"), 1, 1, Clock::now(), &close);
  Assignment g2 = p.Add(Row("2"), 1, 1, Clock::now(), &close);
  EXPECT_EQ(close, g1.group);
  Assignment b = p.AddBarrier(&close);
  EXPECT_EQ(close, g2.group);
  EXPECT_EQ(b.group, 3u);
  EXPECT_EQ(b.wait_for, g2.group);
  EXPECT_NE(b.worker, g2.worker);
  for (const char* id : {"3", "4", "5"}) {
    Assignment later = p.Add(Row(id), 1, 1, Clock::now(), &close);
    EXPECT_GT(later.group, b.group);
    if (later.worker != b.worker) {
      EXPECT_GE(later.wait_for, b.group) << id;
    }
  }
  p.Committed(b.group);
  Assignment after_commit = p.Add(Row("6"), 1, 1, Clock::now(), &close);
  EXPECT_EQ(after_commit.wait_for, 0u);
}

}  // namespace
}  // namespace pgbaton::applier

// Status and Result: codes, exit codes, context, hints and the macros.
#include "common/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <set>

namespace pgbaton {
namespace {

TEST(StatusTest, OkByDefault) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.exit_code(), 0);
  EXPECT_EQ(s.ToString(), "ok");
}

TEST(StatusTest, ErrorCarriesCodeHintAndExitCode) {
  Status s = Status::Error(ErrorCode::kSlotMissing, "slot \"x\" on source: does not exist",
                           "run pgbaton copy first", false);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.exit_code(), 20);
  EXPECT_EQ(s.ToString(), "slot \"x\" on source: does not exist\nhint: run pgbaton copy first");
  EXPECT_EQ(ErrorCodeName(s.code()), "slot_missing");
  EXPECT_FALSE(s.retryable());
  EXPECT_TRUE(Status::Error(ErrorCode::kConnection, "down", "", true).retryable());
}

TEST(StatusTest, WithContextAndHint) {
  Status s = Status::Error(ErrorCode::kIo, "disk gone");
  Status c = s.WithContext("queue \"/q\"").WithHint("check the mount");
  EXPECT_EQ(c.message(), "queue \"/q\": disk gone");
  EXPECT_EQ(c.hint(), "check the mount");
  EXPECT_EQ(c.code(), ErrorCode::kIo);
  EXPECT_TRUE(Status::Ok().WithContext("x").ok());
}

TEST(StatusTest, EveryCodeHasAStableDistinctName) {
  std::set<std::string_view> names;
  int codes = 0;
  for (int i = 0; i < 128; ++i) {
    std::string_view n = ErrorCodeName(static_cast<ErrorCode>(i));
    if (n == "unknown") continue;
    ++codes;
    EXPECT_TRUE(names.insert(n).second) << "duplicate name " << n;
    EXPECT_EQ(ExitCodeOf(static_cast<ErrorCode>(i)), i);
  }
  EXPECT_GE(codes, 30);
  EXPECT_EQ(ExitCodeOf(ErrorCode::kVerifyMismatch), 81);
  EXPECT_EQ(ExitCodeOf(ErrorCode::kInterrupted), 4);
}

Result<int> Half(int v) {
  if (v % 2 != 0) return Status::Error(ErrorCode::kUsage, "odd");
  return v / 2;
}

Result<int> Quarter(int v) {
  PGB_ASSIGN_OR_RETURN(int h, Half(v));
  PGB_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status CheckEven(int v) {
  PGB_RETURN_IF_ERROR(Half(v).status());
  return Status::Ok();
}

TEST(ResultTest, ValueOrStatusAndMacros) {
  auto q = Quarter(8);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(*q, 2);
  EXPECT_TRUE(q.status().ok());
  auto bad = Quarter(6);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kUsage);
  EXPECT_EQ(bad.status().message(), "odd");
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_EQ(CheckEven(3).code(), ErrorCode::kUsage);
}

TEST(ResultTest, HoldsMoveOnlyValues) {
  Result<std::unique_ptr<int>> r(std::make_unique<int>(7));
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

}  // namespace
}  // namespace pgbaton

#include "tools/common/startup_retry.h"

#include <gtest/gtest.h>

#include "tools/common/signals.h"

namespace pgbaton::tools {
namespace {

StartupRetryOptions Fast() {
  StartupRetryOptions o;
  o.initial_backoff = std::chrono::milliseconds(1);
  o.max_backoff = std::chrono::milliseconds(2);
  o.max_attempts = 4;
  return o;
}

Status Unreachable() { return Status::Error(ErrorCode::kConnection, "target: connection refused"); }

TEST(StartupRetryTest, AConnectionErrorIsTriedAgainUntilTheStepSucceeds) {
  int calls = 0;
  Status st = RetryWhileUnreachable(
      "checks", [&] { return ++calls < 3 ? Unreachable() : Status::Ok(); }, Fast());
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(calls, 3);
}

TEST(StartupRetryTest, OtherErrorsAreReturnedAtOnce) {
  int calls = 0;
  Status st = RetryWhileUnreachable(
      "checks",
      [&] {
        ++calls;
        return Status::Error(ErrorCode::kIdentityMismatch, "another cluster");
      },
      Fast());
  EXPECT_EQ(st.code(), ErrorCode::kIdentityMismatch);
  EXPECT_EQ(calls, 1);
}

TEST(StartupRetryTest, TheLastConnectionErrorIsReturnedAfterMaxAttempts) {
  int calls = 0;
  Status st = RetryWhileUnreachable(
      "checks",
      [&] {
        ++calls;
        return Unreachable();
      },
      Fast());
  EXPECT_EQ(st.code(), ErrorCode::kConnection);
  EXPECT_EQ(calls, 4);
}

TEST(StartupRetryTest, AStopRequestEndsTheWait) {
  ResetStopRequestForTesting();
  StartupRetryOptions o = Fast();
  o.initial_backoff = std::chrono::milliseconds(60000);
  o.max_backoff = std::chrono::milliseconds(60000);
  int calls = 0;
  Status st = RetryWhileUnreachable(
      "checks",
      [&] {
        if (++calls == 1) RequestStop();  // arrives as the first wait begins
        return Unreachable();
      },
      o);
  EXPECT_EQ(st.code(), ErrorCode::kInterrupted);
  EXPECT_EQ(calls, 1);
  ResetStopRequestForTesting();
}

}  // namespace
}  // namespace pgbaton::tools

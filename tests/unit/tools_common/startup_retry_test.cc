#include "tools/common/startup_retry.h"

#include <gtest/gtest.h>

#include <functional>

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

// RetryWhileUnreachable over `step`, which is given the number of its call (from 1), with `o`;
// its status and how many times it called the step.
struct Outcome {
  Status status;
  int calls = 0;
};
Outcome Retry(const std::function<Status(int)>& step, const StartupRetryOptions& o = Fast()) {
  Outcome out;
  out.status = RetryWhileUnreachable(
      "checks", [&] { return step(++out.calls); }, o);
  return out;
}

TEST(StartupRetryTest, AConnectionErrorIsTriedAgainUntilTheStepSucceeds) {
  Outcome r = Retry([](int call) { return call < 3 ? Unreachable() : Status::Ok(); });
  EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.calls, 3);
}

TEST(StartupRetryTest, OtherErrorsAreReturnedAtOnce) {
  Outcome r =
      Retry([](int) { return Status::Error(ErrorCode::kIdentityMismatch, "another cluster"); });
  EXPECT_EQ(r.status.code(), ErrorCode::kIdentityMismatch);
  EXPECT_EQ(r.calls, 1);
}

TEST(StartupRetryTest, TheLastConnectionErrorIsReturnedAfterMaxAttempts) {
  Outcome r = Retry([](int) { return Unreachable(); });
  EXPECT_EQ(r.status.code(), ErrorCode::kConnection);
  EXPECT_EQ(r.calls, 4);
}

TEST(StartupRetryTest, AStopRequestEndsTheWait) {
  ResetStopRequestForTesting();
  StartupRetryOptions o = Fast();
  o.initial_backoff = std::chrono::milliseconds(60000);
  o.max_backoff = std::chrono::milliseconds(60000);
  Outcome r = Retry(
      [](int call) {
        if (call == 1) RequestStop();  // arrives as the first wait begins
        return Unreachable();
      },
      o);
  EXPECT_EQ(r.status.code(), ErrorCode::kInterrupted);
  EXPECT_EQ(r.calls, 1);
  ResetStopRequestForTesting();
}

}  // namespace
}  // namespace pgbaton::tools

// The stop flag: the first SIGINT/SIGTERM asks for a graceful stop, the second exits at once
// with kInterrupted's exit code.
#include "tools/common/signals.h"

#include <gtest/gtest.h>
#include <signal.h>

namespace pgbaton::tools {
namespace {

TEST(SignalsTest, FirstSignalSetsTheFlag) {
  InstallSignalHandlers();
  ResetStopRequestForTesting();
  EXPECT_FALSE(StopRequested().load());
  raise(SIGTERM);
  EXPECT_TRUE(StopRequested().load());
  EXPECT_EQ(StopSignal(), SIGTERM);
  ResetStopRequestForTesting();
  raise(SIGINT);
  EXPECT_TRUE(StopRequested().load());
  EXPECT_EQ(StopSignal(), SIGINT);
  ResetStopRequestForTesting();
}

// RequestStop (run, when its decoder fails) stops like a first signal but is not one: the next
// real signal is still the first, a clean stop rather than an exit.
TEST(SignalsTest, RequestStopSetsTheFlagWithoutCountingASignal) {
  InstallSignalHandlers();
  ResetStopRequestForTesting();
  RequestStop();
  EXPECT_TRUE(StopRequested().load());
  EXPECT_EQ(StopSignal(), 0);
  raise(SIGTERM);  // would exit the test binary if it counted as the second
  EXPECT_EQ(StopSignal(), SIGTERM);
  ResetStopRequestForTesting();
}

TEST(SignalsDeathTest, SecondSignalExitsWithInterrupted) {
  EXPECT_EXIT(
      {
        InstallSignalHandlers();
        ResetStopRequestForTesting();
        raise(SIGINT);
        if (!StopRequested().load()) _exit(99);
        raise(SIGTERM);
        _exit(98);  // not reached
      },
      ::testing::ExitedWithCode(4), "second signal: stopping now");
}

TEST(SignalsDeathTest, InstallIsIdempotent) {
  EXPECT_EXIT(
      {
        InstallSignalHandlers();
        InstallSignalHandlers();
        ResetStopRequestForTesting();
        raise(SIGTERM);
        _exit(StopRequested().load() ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace pgbaton::tools

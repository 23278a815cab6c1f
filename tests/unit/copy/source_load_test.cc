// --source-load-limit's parsing and the gate's hysteresis (tools/initial_copy/source_load.h); the
// signals' query runs against real servers in tests/integration/copy/copy_throttle_test.cc.
#include "tools/initial_copy/source_load.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace pgbaton::tools::copy {
namespace {

using std::chrono::milliseconds;

TEST(SourceLoadLimitsTest, Parses) {
  auto both = ParseSourceLoadLimits("active-sessions=32,standby-lag=10s");
  ASSERT_TRUE(both.ok()) << both.status().ToString();
  EXPECT_EQ(both->active_sessions, 32);
  EXPECT_EQ(both->standby_lag, milliseconds(10000));
  auto one = ParseSourceLoadLimits(" standby-lag = 500ms ");
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(one->active_sessions, 0);
  EXPECT_EQ(one->standby_lag, milliseconds(500));
  auto bare = ParseSourceLoadLimits("standby-lag=10");  // a bare number is seconds
  ASSERT_TRUE(bare.ok()) << bare.status().ToString();
  EXPECT_EQ(bare->standby_lag, milliseconds(10000));
  auto none = ParseSourceLoadLimits("");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->any());
}

TEST(SourceLoadLimitsTest, BadValuesAreUsageErrorsNamingTheFlagAndWhatIsWrong) {
  struct Case {
    const char* text;
    const char* says;
  };
  for (const Case& c : std::vector<Case>{
           {"active-sessions", "\"active-sessions\" is not SIGNAL=LIMIT"},
           {"32", "\"32\" is not SIGNAL=LIMIT"},
           {"active-sessions=32,", "\"\" is not SIGNAL=LIMIT"},
           {"cpu=80", "unknown signal \"cpu\""},
           {"active-sessions=0", "at least 1, not \"0\""},
           {"active-sessions=-3", "not \"-3\""},
           {"active-sessions=3.5", "not \"3.5\""},
           {"active-sessions=lots", "not \"lots\""},
           {"active-sessions=+3", "not \"+3\""},
           {"standby-lag=0s", "standby-lag must be a duration above 0"},
           {"standby-lag=1h", "not \"1h\""},
           {"active-sessions=3,active-sessions=4", "active-sessions is given twice"},
       }) {
    auto r = ParseSourceLoadLimits(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), ErrorCode::kUsage) << c.text;
    EXPECT_EQ(r.status().message().rfind("--source-load-limit: ", 0), 0u) << r.status().message();
    EXPECT_NE(r.status().message().find(c.says), std::string::npos)
        << c.text << " -> " << r.status().message();
    EXPECT_NE(r.status().hint().find("active-sessions"), std::string::npos);
  }
}

LoadSample Sessions(int64_t n) { return LoadSample{n, std::nullopt}; }

TEST(LoadGateTest, PausesOverTheLimitAndResumesAtEightyPercent) {
  LoadGate gate(SourceLoadLimits{.active_sessions = 10});
  EXPECT_FALSE(gate.Update(Sessions(10)));  // at the limit: not over it
  EXPECT_FALSE(gate.paused());
  EXPECT_TRUE(gate.Update(Sessions(11)));
  EXPECT_TRUE(gate.paused());
  EXPECT_EQ(gate.reason(), "active sessions 11 > 10");
  EXPECT_EQ(gate.reason_labels(), std::vector<std::string>{"active_sessions"});
  // Between 80% and the limit it stays paused: no flapping around the limit.
  EXPECT_FALSE(gate.Update(Sessions(9)));
  EXPECT_TRUE(gate.paused());
  EXPECT_EQ(gate.reason(), "active sessions 9, resuming at 8 or fewer");
  EXPECT_TRUE(gate.Update(Sessions(8)));
  EXPECT_FALSE(gate.paused());
  EXPECT_EQ(gate.reason(), "");
  EXPECT_TRUE(gate.reason_labels().empty());
  EXPECT_FALSE(gate.Update(Sessions(9)));  // running: under the limit it keeps running
  EXPECT_FALSE(gate.paused());
}

TEST(LoadGateTest, EitherSignalHoldsTheCopyUntilBothAreBack) {
  LoadGate gate(SourceLoadLimits{.active_sessions = 5, .standby_lag = milliseconds(10000)});
  EXPECT_TRUE(gate.Update({2, 12.5}));
  EXPECT_EQ(gate.reason(), "standby replay lag 12.5 s > 10.0 s");
  EXPECT_FALSE(gate.Update({6, 12.5}));
  EXPECT_EQ(gate.reason(), "active sessions 6 > 5, standby replay lag 12.5 s > 10.0 s");
  EXPECT_EQ(gate.reason_labels(), (std::vector<std::string>{"active_sessions", "standby_lag"}));
  EXPECT_FALSE(gate.Update({1, 9.0}));  // sessions are back, the lag is not under 8 s yet
  EXPECT_TRUE(gate.paused());
  EXPECT_EQ(gate.reason(), "standby replay lag 9.0 s, resuming at 8.0 s or less");
  EXPECT_TRUE(gate.Update({1, 0}));
  EXPECT_FALSE(gate.paused());
}

TEST(LoadGateTest, OpenReleasesWaitersAndAStopEndsAWait) {
  LoadGate gate(SourceLoadLimits{.active_sessions = 1});
  std::atomic<bool> stop{false};
  EXPECT_EQ(gate.WaitWhileClosed(&stop).count(), 0);  // open: no wait
  ASSERT_TRUE(gate.Update(Sessions(3)));
  std::thread opener([&] {
    std::this_thread::sleep_for(milliseconds(50));
    EXPECT_TRUE(gate.Open());
  });
  gate.WaitWhileClosed(&stop);  // returns only once opened (the test would hang otherwise)
  opener.join();
  EXPECT_FALSE(gate.paused());
  ASSERT_TRUE(gate.Update(Sessions(3)));
  std::thread stopper([&] {
    std::this_thread::sleep_for(milliseconds(50));
    stop = true;
  });
  gate.WaitWhileClosed(&stop);
  stopper.join();
  EXPECT_TRUE(gate.paused());
}

TEST(SessionSetTest, AddsAndRemovesEachPidOnce) {
  SessionSet s;
  s.Add(10);
  s.Add(11);
  s.Add(10);
  s.Remove(10);
  EXPECT_EQ(s.Pids(), (std::vector<int>{10, 11}));
  s.Remove(10);
  s.Remove(99);
  EXPECT_EQ(s.Pids(), std::vector<int>{11});
}

}  // namespace
}  // namespace pgbaton::tools::copy

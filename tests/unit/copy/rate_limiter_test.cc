// The copy's rate cap (tools/initial_copy/rate_limiter.h) on a fake clock: the bound it promises
// (at most rate x (T + burst) bytes in any interval T), its smoothness, and that workers share it.
#include "tools/initial_copy/rate_limiter.h"

#include <gtest/gtest.h>

#include <vector>

namespace pgbaton::tools::copy {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

// Time moves only when someone sleeps.
class FakeClock : public Clock {
 public:
  TimePoint Now() override { return now_; }
  void SleepUntil(TimePoint t) override {
    sleeps_.push_back(t - now_);
    if (t > now_) now_ = t;
  }
  void Advance(nanoseconds d) { now_ += d; }
  double Seconds() const { return std::chrono::duration<double>(now_ - TimePoint{}).count(); }
  const std::vector<nanoseconds>& sleeps() const { return sleeps_; }

 private:
  TimePoint now_{};
  std::vector<nanoseconds> sleeps_;
};

constexpr uint64_t kRate = 1 << 20;  // 1 MiB/s

TEST(RateLimiterTest, NeverGrantsMoreThanTheRateOverAnyIntervalPlusTheBurst) {
  FakeClock clock;
  RateLimiter rl(kRate, &clock);  // 50 ms burst
  const double burst_bytes = kRate * 0.05;
  uint64_t granted = 0;
  const double start = clock.Seconds();
  for (int i = 0; i < 400; ++i) {
    rl.Acquire(rl.batch_bytes());
    granted += rl.batch_bytes();
    // The bound from the start; sleeping happens before the bytes are used, so the check is
    // made at the moment the caller goes.
    EXPECT_LE(static_cast<double>(granted), kRate * (clock.Seconds() - start) + burst_bytes + 1)
        << "after " << i + 1 << " batches";
  }
  // And it does not hold back more than needed: the time is what the bytes cost, less the burst.
  const double expected = static_cast<double>(granted) / kRate;
  EXPECT_NEAR(clock.Seconds() - start, expected - 0.05, 0.001);
}

TEST(RateLimiterTest, SmoothNoSecondOfBurstAfterAnIdleSpell) {
  FakeClock clock;
  RateLimiter rl(kRate, &clock);
  rl.Acquire(kRate);  // a second's worth, then idle for 10 s
  clock.Advance(std::chrono::seconds(10));
  const double idle_end = clock.Seconds();
  // Only the burst (50 ms of the rate) goes without waiting, not the 10 idle seconds' worth.
  uint64_t free_bytes = 0;
  for (int i = 0; i < 100; ++i) {
    nanoseconds waited = rl.Acquire(4096);
    if (waited.count() > 0) break;
    free_bytes += 4096;
  }
  EXPECT_LE(free_bytes, kRate / 20 + 4096);
  EXPECT_GE(free_bytes, kRate / 20 - 4096);
  EXPECT_LT(clock.Seconds() - idle_end, 0.06);
  // Each wait is one batch's worth of time: no long stalls followed by floods.
  for (nanoseconds s : clock.sleeps()) EXPECT_LE(s, milliseconds(1001));
}

TEST(RateLimiterTest, WorkersShareOneRate) {
  FakeClock clock;
  RateLimiter rl(kRate, &clock);
  // Three workers taking turns (as their batches arrive): together they get the rate, not three
  // times it.
  uint64_t total = 0;
  for (int i = 0; i < 300; ++i) {
    rl.Acquire(32 << 10);
    total += 32 << 10;
  }
  EXPECT_NEAR(clock.Seconds(), static_cast<double>(total) / kRate - 0.05, 0.001);
}

TEST(RateLimiterTest, BatchIsAboutATwentiethOfASecondUpTo64KiB) {
  FakeClock clock;
  EXPECT_EQ(RateLimiter(1 << 30, &clock).batch_bytes(), 64u << 10);
  EXPECT_EQ(RateLimiter(100000, &clock).batch_bytes(), 5000u);
  EXPECT_EQ(RateLimiter(10, &clock).batch_bytes(), 1u);
}

TEST(RateLimiterTest, NoWaitForNothingAndNoOverflowAtHugeRates) {
  FakeClock clock;
  RateLimiter fast(UINT64_MAX / 2, &clock);
  EXPECT_EQ(fast.Acquire(0).count(), 0);
  EXPECT_EQ(fast.Acquire(1ull << 40).count(), 0);
  RateLimiter slow(1, &clock);
  // 10 bytes at 1 byte/s: 10 s less the 50 ms burst.
  EXPECT_EQ(slow.Acquire(10), milliseconds(9950));
}

}  // namespace
}  // namespace pgbaton::tools::copy

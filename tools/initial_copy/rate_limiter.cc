#include "tools/initial_copy/rate_limiter.h"

#include <algorithm>
#include <thread>

namespace pgbaton::tools::copy {
namespace {

class SteadyClock : public Clock {
 public:
  TimePoint Now() override { return std::chrono::steady_clock::now(); }
  void SleepUntil(TimePoint t) override { std::this_thread::sleep_until(t); }
};

}  // namespace

Clock* SystemClock() {
  static SteadyClock clock;
  return &clock;
}

RateLimiter::RateLimiter(uint64_t bytes_per_second, Clock* clock, std::chrono::microseconds burst)
    : rate_(std::max<uint64_t>(bytes_per_second, 1)), clock_(clock), burst_(burst) {}

uint64_t RateLimiter::batch_bytes() const { return std::clamp<uint64_t>(rate_ / 20, 1, 64u << 10); }

std::chrono::nanoseconds RateLimiter::Acquire(uint64_t bytes) {
  // The time `bytes` take to earn at the rate, in nanoseconds (128-bit: no overflow at any rate).
  const auto cost = std::chrono::nanoseconds(
      static_cast<int64_t>(static_cast<unsigned __int128>(bytes) * 1000000000u / rate_));
  Clock::TimePoint go;
  Clock::TimePoint now;
  {
    std::lock_guard<std::mutex> l(mu_);
    now = clock_->Now();
    // After an idle spell the bucket is full, not more: tokens beyond the burst are not kept.
    if (!started_ || tat_ < now) tat_ = now;
    started_ = true;
    tat_ += cost;
    go = tat_ - burst_;
  }
  if (go <= now) return std::chrono::nanoseconds(0);
  clock_->SleepUntil(go);
  return go - now;
}

}  // namespace pgbaton::tools::copy

// The copy's cap on bytes read from the source (--max-copy-rate): one token bucket that every copy
// worker draws from for each batch of COPY data it receives. The bucket holds only a short burst
// (50 ms of the rate by default), so the cap is smooth: never a second's worth at once.
// Only the copy workers draw from it; the decoder and the applier never do.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

namespace pgbaton::tools::copy {

// Time as the throttles see it: the system's steady clock, or a test's fake one.
class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  virtual TimePoint Now() = 0;
  // Returns at `t` or later. Thread-safe.
  virtual void SleepUntil(TimePoint t) = 0;
};

// The steady clock and std::this_thread::sleep_until. Thread-safe; lives for the process.
Clock* SystemClock();

// A token bucket of `bytes_per_second` tokens a second holding at most `burst` worth of them
// (so at most bytes_per_second * burst bytes pass without waiting after an idle spell). Acquire
// reserves tokens and sleeps, outside the lock, until they exist: callers are served in the order
// they came, each waits only for its own bytes, and over any interval of length T at most
// bytes_per_second * (T + burst) bytes are granted. Thread-safe.
class RateLimiter {
 public:
  // `bytes_per_second` > 0; `clock` outlives this.
  RateLimiter(uint64_t bytes_per_second, Clock* clock,
              std::chrono::microseconds burst = std::chrono::milliseconds(50));

  // Takes `bytes` tokens, waiting until they are there; returns how long it waited.
  std::chrono::nanoseconds Acquire(uint64_t bytes);

  uint64_t bytes_per_second() const { return rate_; }
  // A good batch for callers: about a twentieth of a second of the rate, between 1 byte and
  // 64 KiB, so that one worker never holds a long wait on many bytes at a low rate.
  uint64_t batch_bytes() const;

 private:
  const uint64_t rate_;
  Clock* const clock_;
  const std::chrono::nanoseconds burst_;
  std::mutex mu_;
  // The time at which every token granted so far will have been earned ("theoretical arrival
  // time"). A caller may go once it is no more than burst_ ahead of now.
  Clock::TimePoint tat_{};
  bool started_ = false;
};

}  // namespace pgbaton::tools::copy

// Server time, injected (DECISIONS §21): every deadline the server keeps (history age, idle
// channels, presence leases, poll leases, heartbeats) reads this interface, so a test can drive
// it with a manual_clock and replay an hour of expiry in a microsecond, without sleeping.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>

namespace pushwire::server {

class clock {
 public:
  virtual ~clock() = default;
  virtual std::uint64_t now_ms() const = 0;   // monotonic milliseconds
  virtual std::uint64_t now_ns() const = 0;   // monotonic nanoseconds (latency histograms)
};

class steady_clock_source final : public clock {
 public:
  std::uint64_t now_ms() const override { return now_ns() / 1'000'000; }
  std::uint64_t now_ns() const override {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::steady_clock::now().time_since_epoch()).count());
  }
};

// Moves only when told; safe to read from any thread.
class manual_clock final : public clock {
 public:
  explicit manual_clock(std::uint64_t start_ms = 1'000'000) : ms_(start_ms) {}
  std::uint64_t now_ms() const override { return ms_.load(std::memory_order_relaxed); }
  std::uint64_t now_ns() const override { return now_ms() * 1'000'000; }
  void advance(std::uint64_t ms) { ms_.fetch_add(ms, std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> ms_;
};

}  // namespace pushwire::server

// /demo/publish rate limit: per client address, a one-second window (--demo only). A reload may
// change the rate (set_limit).
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace pushwire::server {

class demo_rate {
 public:
  explicit demo_rate(std::uint64_t per_second) : per_second_(per_second) {}
  bool allow(const std::string& address, std::uint64_t now_ms) {
    std::lock_guard lk(mu_);
    if (windows_.size() > max_addresses && !windows_.contains(address)) windows_.clear();
    auto& w = windows_[address];
    std::uint64_t second = now_ms / 1000;
    if (w.second != second) w = {0, second};
    return ++w.count <= per_second_.load(std::memory_order_relaxed);
  }
  std::uint64_t limit() const { return per_second_.load(std::memory_order_relaxed); }
  void set_limit(std::uint64_t per_second) { per_second_.store(per_second, std::memory_order_relaxed); }

 private:
  static constexpr std::size_t max_addresses = 10000;   // bounds the table; a reset only forgives
  struct window {
    std::uint64_t count = 0;
    std::uint64_t second = 0;
  };
  std::atomic<std::uint64_t> per_second_;
  std::mutex mu_;
  std::unordered_map<std::string, window> windows_;
};

}  // namespace pushwire::server

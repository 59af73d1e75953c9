// Connections per remote address (--max-connections-per-ip; docs/protocol.md "Limits"): WebSocket
// sessions, SSE streams and long-polls from their start until answered. A reload may change the
// limit (set_limit): connections opened while the limit was off are not counted against it.
#pragma once
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace pushwire::server {

class ip_slots {
 public:
  explicit ip_slots(std::size_t per_ip) : per_ip_(per_ip) {}
  // On success `slot` holds the count until it is destroyed (null while the limit is off); false =
  // the address is at the limit.
  bool acquire(const std::string& ip, std::shared_ptr<void>& slot);
  std::size_t limit() const { return per_ip_.load(std::memory_order_relaxed); }   // 0 = off
  void set_limit(std::size_t per_ip) { per_ip_.store(per_ip, std::memory_order_relaxed); }

 private:
  void release(const std::string& ip);
  std::atomic<std::size_t> per_ip_;
  std::mutex mu_;
  std::unordered_map<std::string, std::size_t> conns_;
};

}  // namespace pushwire::server

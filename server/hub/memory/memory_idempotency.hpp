// The embedded idempotency store: keys in arrival order, bounded by count and age (the oldest go
// first either way).
#pragma once
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>

#include "server/hub/idempotency.hpp"

namespace pushwire::server {

class memory_idempotency final : public idempotency_store {
 public:
  memory_idempotency(std::size_t max_keys, std::uint64_t ttl_ms) : max_keys_(max_keys), ttl_ms_(ttl_ms) {}

  void lookup(std::string_view key, std::uint64_t now_ms,
              std::function<void(std::optional<protocol::position>)> done) override;
  void record(std::string_view key, const protocol::position& pos, std::uint64_t now_ms) override;
  void sweep(std::uint64_t now_ms) override;

 private:
  struct entry {
    protocol::position pos;
    std::uint64_t expires_ms;
  };
  std::size_t max_keys_;
  std::uint64_t ttl_ms_;
  std::mutex mu_;
  std::unordered_map<std::string, entry> keys_;
  std::deque<std::string> order_;   // insertion order; may name keys already gone
};

}  // namespace pushwire::server

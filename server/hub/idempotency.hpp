// The idempotency seam: API publishes that carry a key are published once; a retry with the same
// key within the TTL gets the first result back.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

#include "protocol/position.hpp"

namespace pushwire::server {

class idempotency_store {
 public:
  virtual ~idempotency_store() = default;
  virtual void lookup(std::string_view key, std::uint64_t now_ms,
                      std::function<void(std::optional<protocol::position>)> done) = 0;
  virtual void record(std::string_view key, const protocol::position& pos, std::uint64_t now_ms) = 0;
  virtual void sweep(std::uint64_t now_ms) = 0;
};

}  // namespace pushwire::server

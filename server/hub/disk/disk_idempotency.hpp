// Idempotency keys that survive a restart (--data-dir): the memory store answers lookups; every
// recorded key is also written to the durable history's database, by its writer thread, and read
// back at start. A key is committed in the commit after its publication's, so a crash in between
// (a few milliseconds) forgets that one key: a retry then publishes again.
#pragma once
#include "server/hub/disk/disk_history.hpp"
#include "server/hub/memory/memory_idempotency.hpp"

namespace pushwire::server {

class disk_idempotency final : public idempotency_store {
 public:
  disk_idempotency(std::size_t max_keys, std::uint64_t ttl_ms, disk_history& disk);

  void lookup(std::string_view key, std::uint64_t now_ms,
              std::function<void(std::optional<protocol::position>)> done) override;
  void record(std::string_view key, const protocol::position& pos, std::uint64_t now_ms) override;
  void sweep(std::uint64_t now_ms) override;

 private:
  std::size_t max_keys_;
  std::uint64_t ttl_ms_;
  disk_history& disk_;
  memory_idempotency mem_;
  std::atomic<std::uint64_t> last_disk_sweep_ms_{0};
};

}  // namespace pushwire::server

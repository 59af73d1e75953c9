#include "server/hub/disk/disk_idempotency.hpp"

namespace pushwire::server {

disk_idempotency::disk_idempotency(std::size_t max_keys, std::uint64_t ttl_ms, disk_history& disk)
    : max_keys_(max_keys), ttl_ms_(ttl_ms), disk_(disk), mem_(max_keys, ttl_ms) {
  auto base = disk_.time_base_ms();
  for (auto& k : disk_.take_loaded_keys()) {
    // Recorded at (expiry - TTL) in this run's clock, so it expires when it would have.
    std::int64_t recorded = k.expires_wall - base - static_cast<std::int64_t>(ttl_ms_);
    mem_.record(k.key, k.pos, recorded > 0 ? static_cast<std::uint64_t>(recorded) : 0);
  }
}

void disk_idempotency::lookup(std::string_view key, std::uint64_t now_ms,
                              std::function<void(std::optional<protocol::position>)> done) {
  mem_.lookup(key, now_ms, std::move(done));
}

void disk_idempotency::record(std::string_view key, const protocol::position& pos, std::uint64_t now_ms) {
  mem_.record(key, pos, now_ms);
  disk_.record_key(key, pos, disk_.time_base_ms() + static_cast<std::int64_t>(now_ms + ttl_ms_));
}

void disk_idempotency::sweep(std::uint64_t now_ms) {
  mem_.sweep(now_ms);
  // The housekeeping tick calls this often; the disk's expiry and count bound need it once a second.
  constexpr std::uint64_t disk_every_ms = 1000;
  auto last = last_disk_sweep_ms_.load(std::memory_order_relaxed);
  if (now_ms >= last + disk_every_ms && last_disk_sweep_ms_.compare_exchange_strong(last, now_ms))
    disk_.sweep_keys(disk_.time_base_ms() + static_cast<std::int64_t>(now_ms), max_keys_);
}

}  // namespace pushwire::server

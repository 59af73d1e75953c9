#include "server/hub/memory/memory_idempotency.hpp"

namespace pushwire::server {

void memory_idempotency::lookup(std::string_view key, std::uint64_t now_ms,
                                std::function<void(std::optional<protocol::position>)> done) {
  std::optional<protocol::position> found;
  {
    std::lock_guard lk(mu_);
    auto it = keys_.find(std::string(key));
    if (it != keys_.end() && it->second.expires_ms > now_ms) found = it->second.pos;
  }
  done(std::move(found));
}

void memory_idempotency::record(std::string_view key, const protocol::position& pos, std::uint64_t now_ms) {
  std::lock_guard lk(mu_);
  auto [it, inserted] = keys_.insert_or_assign(std::string(key), entry{pos, now_ms + ttl_ms_});
  if (inserted) order_.push_back(it->first);
  while (keys_.size() > max_keys_ && !order_.empty()) {
    keys_.erase(order_.front());
    order_.pop_front();
  }
}

void memory_idempotency::sweep(std::uint64_t now_ms) {
  std::lock_guard lk(mu_);
  while (!order_.empty()) {
    auto it = keys_.find(order_.front());
    if (it != keys_.end() && it->second.expires_ms > now_ms) break;
    if (it != keys_.end()) keys_.erase(it);
    order_.pop_front();
  }
}

}  // namespace pushwire::server

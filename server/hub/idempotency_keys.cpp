#include "server/hub/idempotency_keys.hpp"

namespace pushwire::server {

std::string idempotency_keys::id(std::string_view channel, std::string_view key) {
  // The channel's length first: no (channel, key) pair can spell another's id, whatever bytes
  // the key holds.
  std::string out = std::to_string(channel.size());
  out += ':';
  out += channel;
  out += key;
  return out;
}

std::optional<idempotency_keys::seen> idempotency_keys::find(std::string_view channel, std::string_view key,
                                                             std::uint64_t now_ms) {
  std::lock_guard lk(mu_);
  auto it = map_.find(id(channel, key));
  if (it == map_.end() || it->second.expires_ms <= now_ms) return std::nullopt;
  return it->second.value;
}

void idempotency_keys::drop_front() {
  auto& [k, seq] = order_.front();
  if (auto it = map_.find(k); it != map_.end() && it->second.seq == seq) map_.erase(it);
  order_.pop_front();
}

void idempotency_keys::insert(std::string key_id, seen v, std::uint64_t expires_ms) {
  auto seq = ++seq_;
  order_.emplace_back(key_id, seq);
  map_.insert_or_assign(std::move(key_id), entry{std::move(v), expires_ms, seq});
  while (map_.size() > lim_.max_keys && !order_.empty()) drop_front();
  // Replaced and forgotten entries leave stale names behind; they go when they reach the front,
  // and the queue is compacted if they pile up.
  if (order_.size() > 2 * map_.size() + 64) {
    std::deque<std::pair<std::string, std::uint64_t>> live;
    for (auto& o : order_)
      if (auto it = map_.find(o.first); it != map_.end() && it->second.seq == o.second) live.push_back(std::move(o));
    order_.swap(live);
  }
}

std::uint64_t idempotency_keys::remember(std::string_view channel, std::string_view key, const protocol::position& pos,
                                         std::uint64_t hash, std::uint64_t now_ms) {
  std::uint64_t expires = now_ms + lim_.ttl_ms;
  std::lock_guard lk(mu_);
  insert(id(channel, key), seen{pos, hash}, expires);
  return expires;
}

void idempotency_keys::restore(const stored& s) {
  std::lock_guard lk(mu_);
  insert(id(s.channel, s.key), seen{s.pos, s.hash}, s.expires_ms);
}

void idempotency_keys::forget(std::string_view channel, std::string_view key, const protocol::position& pos) {
  std::lock_guard lk(mu_);
  auto it = map_.find(id(channel, key));
  if (it != map_.end() && it->second.value.pos == pos) map_.erase(it);
}

void idempotency_keys::sweep(std::uint64_t now_ms) {
  std::lock_guard lk(mu_);
  while (!order_.empty()) {
    auto it = map_.find(order_.front().first);
    bool live = it != map_.end() && it->second.seq == order_.front().second;
    if (live && it->second.expires_ms > now_ms) break;
    drop_front();
  }
}

void idempotency_keys::clear() {
  std::lock_guard lk(mu_);
  map_.clear();
  order_.clear();
}

std::size_t idempotency_keys::size() {
  std::lock_guard lk(mu_);
  return map_.size();
}

}  // namespace pushwire::server

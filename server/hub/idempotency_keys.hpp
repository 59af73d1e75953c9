// The idempotency keys a history store remembers: (channel, key) -> the position the key
// published and a hash of its data. A history store consults and fills this table under the
// channel's lock inside append(), so "is the key new? then publish and remember it" is one atomic
// step per channel, and a key is scoped to its channel by construction.
//
// Bounds: at most `max_keys` entries (the oldest go first) and each lives `ttl_ms` after it was
// remembered. Thread-safe (one lock of its own, always taken after a channel's lock).
#pragma once
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "protocol/position.hpp"

namespace pushwire::server {

struct idempotency_limits {
  std::size_t max_keys = 100000;   // --idempotency-keys
  std::uint64_t ttl_ms = 300000;   // --idempotency-ttl-ms
};

class idempotency_keys {
 public:
  struct seen {
    protocol::position pos;
    std::uint64_t hash = 0;
  };
  struct stored {   // one entry as a durable store writes and reloads it
    std::string channel, key;
    protocol::position pos;
    std::uint64_t hash = 0;
    std::uint64_t expires_ms = 0;
  };

  explicit idempotency_keys(idempotency_limits l) : lim_(l) {}

  // The live entry of `key` on `channel`, if any.
  std::optional<seen> find(std::string_view channel, std::string_view key, std::uint64_t now_ms);
  // Remembers a publication; returns its expiry (now + TTL). The oldest entries over the count
  // bound are dropped.
  std::uint64_t remember(std::string_view channel, std::string_view key, const protocol::position& pos,
                         std::uint64_t hash, std::uint64_t now_ms);
  // Puts back an entry read from disk with its own expiry (oldest first keeps the order right).
  void restore(const stored& s);
  // Drops the entry if it still names `pos` (its publication failed to commit).
  void forget(std::string_view channel, std::string_view key, const protocol::position& pos);
  void sweep(std::uint64_t now_ms);
  void clear();
  std::size_t size();
  const idempotency_limits& limits() const { return lim_; }

 private:
  struct entry {
    seen value;
    std::uint64_t expires_ms;
    std::uint64_t seq;
  };
  static std::string id(std::string_view channel, std::string_view key);
  void insert(std::string key_id, seen v, std::uint64_t expires_ms);   // caller holds mu_
  void drop_front();                                                   // caller holds mu_

  idempotency_limits lim_;
  std::mutex mu_;
  std::unordered_map<std::string, entry> map_;
  std::deque<std::pair<std::string, std::uint64_t>> order_;   // (id, seq) in arrival order; may name gone entries
  std::uint64_t seq_ = 0;
};

}  // namespace pushwire::server

// The history seam: where a channel's epoch, offsets and recent publications live. The memory
// implementation is the embedded default; a Redis or on-disk store implements the same interface
// and passes the same contract test (tests/server/hub_contract_test.cpp).
//
// Completions may run inline (before the call returns: the memory store) or later on any thread
// (a store behind a network round trip); callers must accept both.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/codes.hpp"
#include "server/hub/publication.hpp"

namespace pushwire::server {

struct append_result {
  protocol::code error = protocol::code::ok;
  std::string reason;
  publication_ptr pub;       // with its assigned position; null for a duplicate
  protocol::position pos;    // set on every success: the new position, or a duplicate's first one
  bool duplicate = false;    // the key was seen on this channel with the same data: nothing published
};

struct resume_result {
  protocol::code error = protocol::code::ok;
  std::string reason;
  protocol::position top;                // the channel's newest position (offset 0: nothing yet)
  std::optional<bool> recovered;         // only when `since` was given
  std::vector<publication_ptr> missed;   // recovered: every publication after `since`, in order
};

struct history_result {
  protocol::code error = protocol::code::ok;
  std::string reason;
  protocol::position top;
  std::vector<publication_ptr> publications;   // oldest first
};

struct channel_info {
  std::string channel;
  protocol::position top;
  std::size_t subscribers = 0;   // on this node (filled by the hub)
};

struct history_stats {
  std::size_t channels = 0;
  std::size_t bytes = 0;
};

class history_store {
 public:
  virtual ~history_store() = default;
  // Appends `data`, assigning the channel's next position (creating the channel, and its epoch, on
  // first use). `done` runs exactly once. For one channel, completions run in offset order and
  // never two at once, so a broker fed from them delivers each channel in order.
  //
  // Idempotency (an empty key: none). The key is scoped to `channel` and checked and remembered in
  // the same atomic step as the append, so concurrent appends with one key publish once:
  //   - a key not seen on this channel (or expired): appended, and the key remembered with the
  //     position and a stable hash of `data` (data_hash.hpp), bounded by count and TTL;
  //   - seen with the same data hash: `duplicate`, `pos` = the first publication's position, `pub`
  //     null, nothing published (a store completes it only once that publication is acknowledged);
  //   - seen with other data: error idempotency_conflict, nothing published.
  // The same key on another channel is independent.
  virtual void append(std::string_view channel, std::string data, std::string_view idempotency_key,
                      std::uint64_t published_ns, std::uint64_t now_ms, std::function<void(append_result)> done) = 0;
  // The resume read of a subscribe: the channel's newest position and, with `since`, whether every
  // publication after it is still kept (`recovered`) and those publications.
  virtual void resume(std::string_view channel, const std::optional<protocol::position>& since,
                      std::uint64_t now_ms, std::function<void(resume_result)> done) = 0;
  // The history command / API: publications after `since` (the first `limit`), or without since the
  // newest `limit`; 0 = all kept.
  virtual void read(std::string_view channel, const std::optional<protocol::position>& since, std::size_t limit,
                    std::uint64_t now_ms, std::function<void(history_result)> done) = 0;
  virtual std::vector<channel_info> channels() = 0;
  virtual history_stats stats() = 0;
  // Drops what is too old (publications and idempotency keys), and forgets channels idle past their idle time that hold nothing and
  // are not `in_use` (a later use starts a new epoch, so clients learn of the break).
  virtual void sweep(std::uint64_t now_ms, const std::function<bool(std::string_view)>& in_use) = 0;
  // Returns once every completion of an append made before the call has run: the node calls it
  // before the hub those completions feed goes away. Stores that complete inline need nothing.
  virtual void drain() {}
};

}  // namespace pushwire::server

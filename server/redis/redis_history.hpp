// History on Redis: each channel's epoch and newest offset in a hash, its recent publications in a
// Stream trimmed by count and expired by age, both written by one Lua script per publish that
// also checks the idempotency key and publishes to the nodes (redis_scripts.cpp). The epoch is
// created once in Redis, so restarting or adding nodes never changes it; if Redis loses its data
// the next use creates a new epoch and clients learn it (recovered:false).
//
// Completions run on the engine's thread (later, never inline). For one channel they run in offset
// order: the channel's commands share one connection (redis_engine.hpp).
#pragma once
#include <atomic>
#include <memory>

#include "server/hub/history.hpp"
#include "server/hub/memory/memory_history.hpp"
#include "server/redis/redis_engine.hpp"

namespace pushwire::server {

struct redis_history_config {
  memory_history_config policy;              // per-namespace size and age, channel idle time
  std::uint64_t idempotency_ttl_ms = 300000;
  std::string node_id;                       // tags Pub/Sub messages with their origin
  std::uint64_t epoch_seed = 1;
};

class redis_history final : public history_store {
 public:
  redis_history(std::shared_ptr<redis_engine> engine, redis_history_config cfg);

  // The idempotency key is checked, and recorded, in the publish script itself (per channel,
  // atomic across nodes; bounded by its TTL in Redis, and by Redis's memory).
  void append(std::string_view channel, std::string data, std::string_view idempotency_key, std::uint64_t published_ns,
              std::uint64_t now_ms, std::function<void(append_result)> done) override;
  void resume(std::string_view channel, const std::optional<protocol::position>& since, std::uint64_t now_ms,
              std::function<void(resume_result)> done) override;
  void read(std::string_view channel, const std::optional<protocol::position>& since, std::size_t limit,
            std::uint64_t now_ms, std::function<void(history_result)> done) override;
  std::vector<channel_info> channels() override;
  history_stats stats() override;
  void sweep(std::uint64_t now_ms, const std::function<bool(std::string_view)>& in_use) override;
  void drain() override;
  // The channels this node listens to (called on the engine's thread): sweep() keeps their epochs
  // alive in Redis, so a channel with subscribers but no publishes never starts over.
  void set_listened(std::function<std::vector<std::string>()> f) { listened_ = std::move(f); }

  // The read script's answer as publications (the broker's gap fill uses it too).
  static bool parse_read(std::string_view channel, const redis_reply& r, protocol::position& top,
                         std::optional<bool>& recovered, std::vector<publication_ptr>& pubs);
  std::vector<std::string> read_args(std::string_view channel, const std::optional<protocol::position>& since,
                                     bool resume, std::size_t limit);

 private:
  const history_policy& policy_of(std::string_view channel) const;
  std::uint64_t idle_ms(const history_policy& p) const;
  std::string new_epoch();

  std::shared_ptr<redis_engine> engine_;
  redis_history_config cfg_;
  std::atomic<std::uint64_t> epoch_counter_;
  std::function<std::vector<std::string>()> listened_;
  std::uint64_t next_touch_ms_ = 0;
};

}  // namespace pushwire::server

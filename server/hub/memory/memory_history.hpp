// The embedded history store: one process, kept in memory. Each channel has its own lock; the map
// of channels has one more. Restarting the process starts every channel in a new epoch, so clients
// learn that history broke (recovered:false) rather than resuming wrongly.
#pragma once
#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "server/hub/history.hpp"
#include "server/hub/history_budget.hpp"
#include "server/hub/idempotency_keys.hpp"

namespace pushwire::server {

struct history_policy {
  std::size_t size = 1000;           // publications kept per channel for resume (config.hpp: why)
  std::uint64_t ttl_ms = 300000;     // 5 min: covers a laptop lid or a train tunnel
};

struct memory_history_config {
  std::map<std::string, history_policy, std::less<>> namespaces;   // "" = the default namespace
  std::size_t max_channels = 100000;           // bounds memory against channel-name spraying
  std::size_t total_bytes = 256u << 20;        // all channels together
  std::uint64_t channel_idle_ms = 0;           // 0 = the namespace's history TTL
  std::uint64_t epoch_seed = 1;                // the caller's randomness for epochs
  idempotency_limits keys;                     // API publish keys, per channel
};

class memory_history final : public history_store {
 public:
  explicit memory_history(memory_history_config cfg);

  // The completion runs inline, under the channel's lock: it must only hand the publication on.
  void append(std::string_view channel, std::string data, std::string_view idempotency_key, std::uint64_t published_ns,
              std::uint64_t now_ms, std::function<void(append_result)> done) override;
  void resume(std::string_view channel, const std::optional<protocol::position>& since, std::uint64_t now_ms,
              std::function<void(resume_result)> done) override;
  void read(std::string_view channel, const std::optional<protocol::position>& since, std::size_t limit,
            std::uint64_t now_ms, std::function<void(history_result)> done) override;
  std::vector<channel_info> channels() override;
  history_stats stats() override;
  void sweep(std::uint64_t now_ms, const std::function<bool(std::string_view)>& in_use) override;

 private:
  struct entry {
    std::uint64_t at_ms;
    publication_ptr pub;
    history_budget::ticket ticket;   // its share of --history-total-bytes
  };
  struct channel {
    std::mutex mu;
    std::string name;
    std::string epoch;
    std::uint64_t offset = 0;
    history_policy policy;
    std::deque<entry> kept;
    std::uint64_t last_active_ms = 0;
    bool dead = false;   // forgotten by sweep(): whoever holds it looks it up again
  };
  // The channel, locked; created when `create` (appends only: reads and subscribes never make an
  // entry). Null when absent, or when the channel cap is reached.
  std::pair<std::shared_ptr<channel>, std::unique_lock<std::mutex>> open(std::string_view name, std::uint64_t now_ms,
                                                                         bool create);
  void trim(channel& c, std::uint64_t now_ms);   // caller holds c.mu
  void keep(channel& c, std::uint64_t now_ms, const publication_ptr& pub);   // caller holds c.mu
  std::string empty_epoch();
  std::vector<std::shared_ptr<channel>> snapshot();

  memory_history_config cfg_;
  std::mutex map_mu_;
  std::unordered_map<std::string, std::shared_ptr<channel>> channels_;
  std::atomic<std::uint64_t> epoch_counter_;
  history_budget budget_;
  std::string empty_epoch_;   // guarded by map_mu_: the epoch of every channel without an entry
  idempotency_keys keys_;
};

}  // namespace pushwire::server

// The in-memory engine: one process, history lost on restart (epochs change, so clients learn it).
#pragma once
#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "server/engine.hpp"

namespace pushwire::server {

class memory_engine final : public engine {
 public:
  explicit memory_engine(engine_config cfg);
  ~memory_engine() override;

  void set_sinks(std::vector<fanout_sink*> sinks) override;
  void set_presence_listener(std::function<void(const message_ptr&)> listener) override;
  publish_outcome publish(std::string_view channel, std::string_view data, std::string_view idempotency_key,
                          std::uint64_t now_ms, std::uint64_t now_ns = 0) override;
  subscribe_outcome subscribe(std::string_view channel, unsigned worker,
                              const std::optional<protocol::position>& since, std::uint64_t now_ms) override;
  void unsubscribe(std::string_view channel, unsigned worker) override;
  history_outcome history(std::string_view channel, const std::optional<protocol::position>& since,
                          std::size_t limit, std::uint64_t now_ms) override;
  protocol::code presence_join(std::string_view channel, const member& m, std::uint64_t lease_until_ms) override;
  void presence_leave(std::string_view channel, std::string_view client) override;
  std::vector<member> presence(std::string_view channel) override;
  std::vector<channel_info> channels() override;
  engine_stats stats() override;
  void sweep(std::uint64_t now_ms) override;

 private:
  struct entry {
    std::uint64_t at_ms;
    message_ptr msg;
  };
  struct presence_entry {
    member m;
    std::uint64_t lease_until_ms;
  };
  struct channel {
    std::mutex mu;
    std::string name;
    std::string epoch;
    std::uint64_t offset = 0;
    channel_options opts;
    std::deque<entry> history;
    std::vector<std::uint32_t> subs_per_worker;
    std::size_t subscribers = 0;
    std::map<std::string, presence_entry, std::less<>> presence;  // by client id
    std::uint64_t last_active_ms = 0;
    bool dead = false;   // removed from the map by sweep()
  };
  struct idem {
    publish_outcome result;
    std::uint64_t expires_ms;
  };

  std::shared_ptr<channel> find(std::string_view name);
  // Creates on demand; nullptr when the channel limit is reached.
  std::shared_ptr<channel> get(std::string_view name, std::uint64_t now_ms);
  void trim(channel& c, std::uint64_t now_ms);        // caller holds c.mu
  void fan_out(channel& c, const message_ptr& m);     // caller holds c.mu
  void presence_event(channel& c, bool join, const member& m);

  engine_config cfg_;
  std::vector<fanout_sink*> sinks_;
  std::function<void(const message_ptr&)> presence_listener_;
  std::mutex map_mu_;
  std::unordered_map<std::string, std::shared_ptr<channel>> channels_;
  std::atomic<std::uint64_t> epoch_counter_;
  std::atomic<std::size_t> history_bytes_{0};
  std::mutex idem_mu_;
  std::unordered_map<std::string, idem> idem_;
  std::deque<std::string> idem_order_;
};

}  // namespace pushwire::server

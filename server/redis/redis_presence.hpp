// Presence on Redis: each channel's members in a hash (client -> user) with their lease ends in a
// sorted set, both in the channel's hash tag. The node that holds a connection renews its member's
// lease (every third of --presence-lease-ms), so a dead node's members lapse within one lease;
// whichever node next touches the channel (a join, a members read, or the sweep of a channel it
// listens to) removes them in the same script and announces their leave once.
//
// Completions and listener calls run on the engine's thread.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "server/hub/clock.hpp"
#include "server/hub/presence.hpp"
#include "server/redis/redis_engine.hpp"

namespace pushwire::server {

class redis_broker;

struct redis_presence_config {
  std::size_t max_members = 1000;
  std::uint64_t lease_ms = 15000;   // a connection's member lapses this long after its node died
};

class redis_presence final : public presence_store {
 public:
  redis_presence(std::shared_ptr<redis_engine> engine, redis_broker& broker, const clock& clk,
                 redis_presence_config cfg);

  void set_listener(std::function<void(const channel_event_ptr&)> listener) override;
  void join(std::string_view channel, const member& m, std::uint64_t lease_until_ms,
            std::function<void(protocol::code)> done) override;
  void leave(std::string_view channel, std::string_view client) override;
  void members(std::string_view channel, std::function<void(std::vector<member>)> done) override;
  bool occupied(std::string_view channel) override;
  void sweep(std::uint64_t now_ms) override;

 private:
  void announce_gone(const std::string& channel, const redis_reply& gone);
  void emit(channel_event::kind k, const std::string& channel, member m);
  void run_join(const std::string& channel, const member& m, std::uint64_t lease_ms,
                std::function<void(protocol::code)> done);

  std::shared_ptr<redis_engine> engine_;
  redis_broker& broker_;
  const clock& clock_;
  redis_presence_config cfg_;
  std::mutex mu_;   // guards held_ and listener_ (occupied() runs on I/O threads)
  std::function<void(const channel_event_ptr&)> listener_;
  // Members this node holds for its connections (lease 0 in join()), renewed by sweep().
  std::map<std::string, std::map<std::string, member>, std::less<>> held_;   // channel -> client -> member
  std::uint64_t next_renew_ms_ = 0;
  std::uint64_t next_expiry_ms_ = 0;
};

}  // namespace pushwire::server

// The broker on Redis Pub/Sub. A node listens to a channel's Pub/Sub channel (on its shard) while
// it has local subscribers of it: SUBSCRIBE's confirmation is the "live from now on" the hub's
// exact-resume contract needs. Publications are published by the publish script itself, so every
// node, this one included, receives each channel's publications in offset order from Redis.
// Presence events go to the same Pub/Sub channel; server disconnects to pushwire:control, which
// every node listens to.
//
// Nothing is lost across a lost Pub/Sub connection: each channel remembers the last position it
// delivered; after listening again (and whenever an offset is skipped) it reads the history after
// that position and delivers what it missed first, holding live publications meanwhile.
//
// Everything runs on the engine's thread; subscribe/unsubscribe/publish_* post to it.
#pragma once
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/hub/broker.hpp"
#include "server/redis/redis_engine.hpp"

namespace pushwire::server {

class redis_history;

class redis_broker final : public broker {
 public:
  redis_broker(std::shared_ptr<redis_engine> engine, redis_history& history, std::string node_id);

  void set_listener(broker_listener* l) override { listener_ = l; }
  void publish(const publication_ptr&) override {}   // the publish script published it already
  void publish_event(const channel_event_ptr& e) override;
  void publish_disconnect(const disconnect_order& d) override;
  void subscribe(std::string_view channel, std::function<void()> done) override;
  void unsubscribe(std::string_view channel) override;

  // Hooks the Pub/Sub connections (before the engine starts).
  void attach();
  // Channels this node listens to (engine thread): the presence store expires their members.
  std::vector<std::string> listened() const;

 private:
  struct listening {
    std::size_t count = 0;
    bool confirmed = false;
    bool listened_before = false;                  // a confirmation after that one is a re-listen
    std::vector<std::function<void()>> waiting;   // subscribe() calls waiting for the confirmation
    std::optional<protocol::position> last;        // the last publication delivered
    bool filling = false;                          // a history read for missed publications is out
    std::vector<publication_ptr> held;             // live publications that arrived meanwhile
  };
  void on_push(std::size_t shard, const redis_reply& r);
  void on_connected(std::size_t shard);
  void listen(const std::string& channel);
  void on_message(const std::string& channel, std::string_view payload);
  void deliver(listening& l, const publication_ptr& p);
  void fill(const std::string& channel);
  void later(const std::string& channel, std::function<void()> f);   // in 100 ms, if still listened

  std::shared_ptr<redis_engine> engine_;
  redis_history& history_;
  std::string node_id_;
  broker_listener* listener_ = nullptr;
  std::unordered_map<std::string, listening> channels_;
};

}  // namespace pushwire::server

// The broker seam: carries publications and control events to every node that needs them. With one
// node (the memory broker) that is this node, at once; a Redis broker carries them through
// Pub/Sub to the other nodes as well.
#pragma once
#include <functional>
#include <string>
#include <string_view>

#include "protocol/codes.hpp"
#include "server/hub/channel_event.hpp"
#include "server/hub/publication.hpp"

namespace pushwire::server {

// Which connections a server disconnect addresses (the API, shutdown), and what they are told.
// The longest reconnect advice a disconnect may carry, in ms, for `after_ms` and `jitter_ms` alike:
// an hour, far inside the protocol's integer range (2^53 - 1) and inside a browser timer (2^31 - 1).
// The API refuses larger values (docs/protocol.md "HTTP API"); delays are clamped to it as well.
inline constexpr std::uint64_t max_reconnect_delay_ms = 3'600'000;

struct disconnect_order {
  std::string client;   // one connection (or long-poll lease)
  std::string user;     // every connection of a user
  bool all = false;
  protocol::code code = protocol::code::disconnected_by_server;
  std::string reason = "disconnected by server";
  bool reconnect = true;
  std::uint64_t after_ms = 0;    // reconnect no sooner than this
  std::uint64_t jitter_ms = 0;   // plus a random share of this, per connection
  bool matches(std::string_view c, std::string_view u) const {
    return all || (!client.empty() && c == client) || (!user.empty() && u == user);
  }
};

// What a node receives.
class broker_listener {
 public:
  virtual ~broker_listener() = default;
  // Each channel's publications arrive in offset order.
  virtual void on_publication(const publication_ptr& p) = 0;
  virtual void on_channel_event(const channel_event_ptr& e) = 0;
  virtual void on_disconnect(const disconnect_order& d) = 0;
};

class broker {
 public:
  virtual ~broker() = default;
  virtual void set_listener(broker_listener* l) = 0;   // once, before any other call
  // Called from the history store's append completion (so in offset order per channel).
  virtual void publish(const publication_ptr& p) = 0;
  virtual void publish_event(const channel_event_ptr& e) = 0;
  virtual void publish_disconnect(const disconnect_order& d) = 0;
  // Live delivery of `channel` to this node is guaranteed from when `done` runs (a remote broker
  // confirms its subscription first). Counted: as many unsubscribes as subscribes end it.
  virtual void subscribe(std::string_view channel, std::function<void()> done) = 0;
  virtual void unsubscribe(std::string_view channel) = 0;
};

}  // namespace pushwire::server

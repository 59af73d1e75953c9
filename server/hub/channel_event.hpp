// Typed events about a channel that reach every node with subscribers of it, like publications but
// without a position: presence joins and leaves. Encoded lazily per wire format, like publications.
// And one the broker raises itself: a gap, when publications a node should have received live are
// no longer in the history to fill them in (a long-lost connection to a remote broker).
#pragma once
#include <memory>
#include <string>

#include "server/hub/publication.hpp"

namespace pushwire::server {

struct member {
  std::string user;     // "" = anonymous (then listed under its client id)
  std::string client;   // connection (or long-poll lease) id: one member per client
  std::string info;     // JSON text the member shows others (Pusher's user_info), or ""
  bool operator==(const member&) const = default;
};

struct channel_event {
  enum class kind : std::uint8_t { join, leave, gap };
  kind what = kind::join;
  std::string channel;
  member who;                // join, leave
  protocol::position at;     // gap: publications after this one up to the next delivered are lost
  encoding_cache encodings;
};
using channel_event_ptr = std::shared_ptr<const channel_event>;

inline channel_event_ptr make_channel_event(channel_event::kind k, std::string_view channel, member m) {
  auto e = std::make_shared<channel_event>();
  e->what = k;
  e->channel = std::string(channel);
  e->who = std::move(m);
  return e;
}

}  // namespace pushwire::server

// The hub interface: channels, history, presence, publish and subscribe-with-since. No networking
// header is included here or in any engine (STYLE.md): an engine hands finished, shared frames to
// one fanout_sink per I/O thread, and the I/O threads do the writing.
//
// Resume invariant (what makes `recovered:true` exact): subscribe() reads the history after `since`
// and counts the subscriber on its I/O thread under the same channel lock, and publish() assigns the
// offset, appends to history and posts the frame to every I/O thread with subscribers under that
// lock too. So a publication is either in the replay or reaches the thread after the subscriber is
// registered there (or both; the subscription's "last offset sent" drops the duplicate).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/codes.hpp"
#include "protocol/position.hpp"
#include "server/message.hpp"

namespace pushwire::server {

// One per I/O thread. post() may be called with a channel lock held and from any thread; it must
// only hand the frame over (e.g. post to an io_context), never call back into the engine.
class fanout_sink {
 public:
  virtual ~fanout_sink() = default;
  virtual void post(message_ptr m) = 0;
};

struct channel_options {
  std::size_t history_size = 100;          // messages kept per channel for resume
  std::uint64_t history_ttl_ms = 300000;   // 5 min: covers a laptop lid or a train tunnel
  bool presence = false;
};

struct engine_config {
  std::map<std::string, channel_options, std::less<>> namespaces;  // "" = default namespace
  std::size_t max_channels = 100000;           // bounds memory against channel-name spraying
  std::size_t history_total_bytes = 256u << 20; // 256 MB of history in all channels together
  std::size_t idempotency_keys = 100000;       // remembered API publish keys
  std::uint64_t idempotency_ttl_ms = 300000;   // 5 min: longer than any sane backend retry loop
  std::size_t max_presence_members = 1000;     // per channel: a member list stays one small reply
  std::uint64_t channel_idle_ms = 0;           // 0 = the namespace's history TTL
  std::uint64_t epoch_seed = 1;                // randomness for epochs (server start time + random)
};

struct publish_outcome {
  protocol::code error = protocol::code::ok;
  std::string reason;
  protocol::position pos;
  bool duplicate = false;                      // idempotency key seen: nothing published
};

struct subscribe_outcome {
  protocol::code error = protocol::code::ok;
  std::string reason;
  protocol::position pos;                      // the channel's current last message
  std::optional<bool> recovered;               // only when since was given
  std::vector<message_ptr> replay;             // recovered: the missed publications, in order
};

struct history_outcome {
  protocol::code error = protocol::code::ok;
  std::string reason;
  protocol::position pos;
  std::vector<message_ptr> publications;       // oldest first
};

struct member {
  std::string user;
  std::string client;
};

struct channel_info {
  std::string channel;
  protocol::position pos;
  std::size_t subscribers = 0;
};

struct engine_stats {
  std::size_t channels = 0;
  std::size_t subscriptions = 0;
  std::size_t history_bytes = 0;
};

class engine {
 public:
  virtual ~engine() = default;
  // Sinks indexed by worker number; set once before any other call.
  virtual void set_sinks(std::vector<fanout_sink*> sinks) = 0;
  // Also sees every join/leave frame, whichever workers subscribe (the long-poll leases queue them
  // for their next poll). Called with a channel lock held: it must only hand the frame over, never
  // call back into the engine. Set once before any other call.
  virtual void set_presence_listener(std::function<void(const message_ptr&)> listener) = 0;

  virtual publish_outcome publish(std::string_view channel, std::string_view data,
                                  std::string_view idempotency_key, std::uint64_t now_ms,
                                  std::uint64_t now_ns = 0) = 0;
  // Call on the subscriber's own I/O thread `worker`.
  virtual subscribe_outcome subscribe(std::string_view channel, unsigned worker,
                                      const std::optional<protocol::position>& since, std::uint64_t now_ms) = 0;
  virtual void unsubscribe(std::string_view channel, unsigned worker) = 0;
  // Publications after `since` (first `limit`), or the last `limit` without since (0 = all kept).
  virtual history_outcome history(std::string_view channel, const std::optional<protocol::position>& since,
                                  std::size_t limit, std::uint64_t now_ms) = 0;
  // Adds or renews a member; `lease_until_ms` 0 = held until presence_leave. Fans out `join` when new.
  virtual protocol::code presence_join(std::string_view channel, const member& m, std::uint64_t lease_until_ms) = 0;
  virtual void presence_leave(std::string_view channel, std::string_view client) = 0;
  virtual std::vector<member> presence(std::string_view channel) = 0;
  virtual std::vector<channel_info> channels() = 0;
  virtual engine_stats stats() = 0;
  // Expires history, presence leases, idempotency keys and idle channels.
  virtual void sweep(std::uint64_t now_ms) = 0;
};

// Presence member list as the JSON array used by `presence` frames and /api/presence.
std::string members_json(const std::vector<member>& members);
// History publications as the `publications` array: [{"offset":n,"data":…}].
std::string publications_json(const std::vector<message_ptr>& pubs);

}  // namespace pushwire::server

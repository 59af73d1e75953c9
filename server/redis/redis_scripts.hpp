// The Lua scripts the Redis engine runs (EVALSHA), and the key layout they work on. Everything a
// script touches for one channel carries the channel in a hash tag, pushwire:{<channel>}:..., so
// the keys of a channel stay together (cluster-friendly, DECISIONS §22). docs/scaling.md lists them.
#pragma once
#include "server/hub/channel_event.hpp"
#include <string>
#include <string_view>

namespace pushwire::server {

struct lua_script {
  std::string source;
  std::string sha1;   // hex, computed from the source at startup
};

// A presence member's value in the members hash and in join/leave messages: the user id, and when
// the member has info (Pusher's user_info), a NUL and the info. Neither holds a NUL otherwise.
std::string pack_member(const member& m);
member unpack_member(std::string client, std::string_view value);

namespace redis_keys {
inline std::string channel_key(std::string_view channel, std::string_view what) {
  std::string k = "pushwire:{";
  k += channel;
  k += "}:";
  k += what;
  return k;
}
inline std::string meta(std::string_view ch) { return channel_key(ch, "meta"); }        // hash: epoch, top
inline std::string history(std::string_view ch) { return channel_key(ch, "hist"); }     // stream: t, d
inline std::string members(std::string_view ch) { return channel_key(ch, "pres"); }     // hash: client -> user
inline std::string leases(std::string_view ch) { return channel_key(ch, "plse"); }      // zset: client by lease end
inline std::string pubsub(std::string_view ch) { return channel_key(ch, "pub"); }       // Pub/Sub channel
inline std::string idempotency(std::string_view ch, std::string_view key) {
  auto k = channel_key(ch, "idem:");
  k += key;
  return k;
}
inline constexpr std::string_view control = "pushwire:control";    // Pub/Sub: server disconnects
inline constexpr std::string_view node_prefix = "pushwire:node:";  // node registry, one key per node
// The channel a key of `what` names, or "" when it is not such a key.
std::string_view channel_of(std::string_view key, std::string_view what);
}  // namespace redis_keys

// The scripts. Each reads the time from Redis (TIME), so every node ages history the same way.
struct redis_scripts {
  lua_script publish;    // idempotency check, next offset, history append, Pub/Sub publish
  lua_script read;       // resume read (creates the channel's epoch) and history read
  lua_script join;       // presence add/renew, expiring lapsed leases first
  lua_script leave;      // presence remove
  lua_script members;    // presence list, expiring lapsed leases first
  static const redis_scripts& get();
};

}  // namespace pushwire::server

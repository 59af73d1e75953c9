// The frames of wire protocol v1 (docs/protocol.md), as plain values.
//
// One flat struct per direction rather than a variant per frame: every frame uses a few of the same
// fields, the codec stays small in wasm, and a test can build any frame with designated initialisers.
// Fields a frame kind does not use stay at their defaults and are not encoded.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "protocol/codes.hpp"
#include "protocol/position.hpp"

namespace pushwire::protocol {

inline constexpr int protocol_version = 1;

// Client -> server. `id` > 0 asks for a reply carrying the same id.
enum class command_kind : std::uint8_t { connect, subscribe, unsubscribe, publish, history, presence, drop };

struct command {
  command_kind kind = command_kind::connect;
  std::uint64_t id = 0;
  std::string channel;              // subscribe, unsubscribe, publish, history, presence
  std::optional<position> since;    // subscribe (resume from), history (entries after)
  std::string data;                 // publish: the payload, raw JSON text of any kind
  std::string token;                // connect: connection token (JWT), may be empty
  std::uint64_t limit = 0;          // history: at most this many entries (0 = server default)
};

// Server -> client.
enum class frame_kind : std::uint8_t {
  connected, subscribed, unsubscribed, published, history, presence,
  message, join, leave, ping, error, disconnect
};

struct frame {
  frame_kind kind = frame_kind::ping;
  std::uint64_t id = 0;             // replies: the command's id
  std::string channel;
  position pos;                     // message, subscribed, published, history: channel position
  std::optional<bool> recovered;    // subscribed with `since`: whether every missed message follows
  std::string data;                 // message: payload; history: "publications" array; presence:
                                    // "members" array; join/leave: "member" object (raw JSON)
  std::string client;               // connected: the connection's id
  std::string user;                 // connected: the user id from the token ("" = anonymous)
  std::uint64_t ping_ms = 0;        // connected: heartbeat interval
  code error_code = code::ok;       // error, disconnect
  std::string reason;               // error, disconnect
  bool reconnect = false;           // disconnect: whether to come back
  std::uint64_t after_ms = 0;       // disconnect: wait at least this long first
};

std::string_view command_name(command_kind k);
std::string_view frame_name(frame_kind k);

}  // namespace pushwire::protocol

// Every code Pushwire puts on the wire or reports to an application, in one place.
//
// 1000-1011: standard WebSocket close codes we use as they are.
// 4000-4099: protocol errors and server decisions, sent in `error` and `disconnect` frames and as
//            WebSocket close codes. Whether the client should reconnect is part of each code.
// 100-199:   client-side reasons for a state transition (never on the wire).
// The JS driver mirrors this table (client-wasm/src/codes.js); a test checks they match.
#pragma once
#include <cstdint>
#include <string_view>

namespace pushwire::protocol {

enum class code : std::uint16_t {
  ok = 0,
  // WebSocket standard
  normal_closure = 1000,
  going_away = 1001,
  message_too_big = 1009,
  // protocol and server (4000-4099)
  bad_frame = 4000,            // malformed JSON or envelope
  unknown_command = 4001,
  bad_channel = 4002,          // name breaks the rules, or namespace not configured
  permission_denied = 4003,    // private channel without grant, publish/presence not allowed
  unauthorized = 4004,         // bad, forged or missing token
  token_expired = 4005,
  too_many_subscriptions = 4006,
  message_too_large = 4007,    // publish payload over max message size
  slow_consumer = 4008,        // send queue exceeded its byte bound
  shutting_down = 4009,
  disconnected_by_server = 4010,
  rate_limited = 4011,
  not_subscribed = 4012,
  already_subscribed = 4013,
  bad_resume_token = 4014,
  too_many_connections = 4015,
  timeout = 4016,              // handshake/idle timeout (server) or request timeout (client)
  not_connected = 4017,        // command before `connect`, or client not connected
  internal_error = 4018,
  too_many_requests_in_flight = 4019,
  too_many_channels = 4020,    // the server's channel cap is reached: no new channel now
  presence_full = 4021,        // the channel's presence member cap is reached
  storage_unavailable = 4022,  // the durable history cannot write (disk full, read-only, damaged)
  idempotency_conflict = 4023, // an idempotency key reused on its channel with other data
  outcome_unknown = 4024,      // the engine (Redis) took the publish but did not confirm it in time
  // client-side transition reasons (100-199)
  connect_called = 100,
  transport_opened = 101,
  transport_closed = 102,
  transport_failed = 103,      // could not open
  heartbeat_timeout = 104,
  closed_by_client = 105,
  server_disconnect = 106,     // server sent a disconnect frame or close code
  reconnect_timer = 107,
  network_check = 108,         // page came online/visible: check now
  no_transport = 109,          // every transport is disabled or unsupported
  handshake_timeout = 110,     // transport opened but no `connected` frame in time
  sse_buffered = 111,          // an SSE stream delivered nothing in time: a proxy holds it
};

// Whether a client that sees this code (in a disconnect frame, as a close code or as a request
// error that closes the connection) should reconnect.
constexpr bool reconnect_advised(code c) {
  switch (c) {
    case code::bad_frame:
    case code::unknown_command:
    case code::unauthorized:
    case code::message_too_big:
    case code::closed_by_client:
    case code::no_transport:
      return false;
    default:
      return true;
  }
}

std::string_view code_name(code c);

}  // namespace pushwire::protocol

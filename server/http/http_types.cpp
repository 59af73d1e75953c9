#include "server/http/http_types.hpp"

#include "protocol/json_scan.hpp"

namespace pushwire::server {

using protocol::code;

unsigned http_status(code c) {
  switch (c) {
    case code::ok: return 200;
    case code::going_away: case code::shutting_down: case code::too_many_connections: case code::too_many_channels:
    case code::storage_unavailable:
      return 503;
    case code::message_too_big: case code::message_too_large: return 413;
    case code::bad_frame: case code::unknown_command: case code::bad_channel: case code::too_many_subscriptions:
    case code::not_subscribed: case code::already_subscribed: case code::bad_resume_token: case code::not_connected:
      return 400;
    case code::permission_denied: return 403;
    case code::unauthorized: case code::token_expired: return 401;
    case code::rate_limited: case code::too_many_requests_in_flight: case code::presence_full: return 429;
    case code::timeout: return 408;
    case code::idempotency_conflict: return 409;
    case code::outcome_unknown: return 504;
    case code::internal_error: return 500;
    default: return 400;
  }
}

std::string error_json(code c, std::string_view reason) {
  std::string out = "{\"error\":{\"code\":";
  protocol::append_uint(out, static_cast<std::uint64_t>(c));
  out += ",\"reason\":";
  protocol::append_json_string(out, protocol::valid_utf8(reason) ? reason : std::string_view("invalid"));
  out += "}}";
  return out;
}

http_reply error_reply(code c, std::string_view reason) {
  http_reply r;
  r.status = http_status(c);
  r.body = error_json(c, reason);
  return r;
}

http_reply json_reply(std::string body) {
  http_reply r;
  r.body = std::move(body);
  return r;
}

}  // namespace pushwire::server

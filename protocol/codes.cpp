#include "protocol/codes.hpp"

namespace pushwire::protocol {

std::string_view code_name(code c) {
  switch (c) {
    case code::ok: return "ok";
    case code::normal_closure: return "normal closure";
    case code::going_away: return "going away";
    case code::message_too_big: return "message too big";
    case code::bad_frame: return "bad frame";
    case code::unknown_command: return "unknown command";
    case code::bad_channel: return "bad channel";
    case code::permission_denied: return "permission denied";
    case code::unauthorized: return "unauthorized";
    case code::token_expired: return "token expired";
    case code::too_many_subscriptions: return "too many subscriptions";
    case code::message_too_large: return "message too large";
    case code::slow_consumer: return "slow consumer";
    case code::shutting_down: return "shutting down";
    case code::disconnected_by_server: return "disconnected by server";
    case code::rate_limited: return "rate limited";
    case code::not_subscribed: return "not subscribed";
    case code::already_subscribed: return "already subscribed";
    case code::bad_resume_token: return "bad resume token";
    case code::too_many_connections: return "too many connections";
    case code::timeout: return "timeout";
    case code::not_connected: return "not connected";
    case code::internal_error: return "internal error";
    case code::too_many_requests_in_flight: return "too many requests in flight";
    case code::too_many_channels: return "too many channels";
    case code::presence_full: return "presence full";
    case code::storage_unavailable: return "storage unavailable";
    case code::idempotency_conflict: return "idempotency conflict";
    case code::outcome_unknown: return "outcome unknown";
    case code::connect_called: return "connect called";
    case code::transport_opened: return "transport opened";
    case code::transport_closed: return "transport closed";
    case code::transport_failed: return "transport failed";
    case code::heartbeat_timeout: return "heartbeat timeout";
    case code::closed_by_client: return "closed by client";
    case code::server_disconnect: return "server disconnect";
    case code::reconnect_timer: return "reconnect timer";
    case code::network_check: return "network check";
    case code::no_transport: return "no transport";
    case code::handshake_timeout: return "handshake timeout";
    case code::sse_buffered: return "sse buffered";
  }
  return "unknown code";
}

}  // namespace pushwire::protocol

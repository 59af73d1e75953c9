#include "server/pusher/pusher_names.hpp"

#include "protocol/pusher/pusher_session.hpp"

namespace pushwire::server {

namespace {
bool digits(std::string_view s) {
  if (s.empty() || s.size() > 20) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}
}  // namespace

// The same rule the WebSocket endpoint applies (protocol/pusher/pusher_session.hpp).
bool valid_pusher_channel(std::string_view name) { return protocol::pusher::classify_channel(name).has_value(); }

bool valid_socket_id(std::string_view id) {
  auto dot = id.find('.');
  return dot != std::string_view::npos && digits(id.substr(0, dot)) && digits(id.substr(dot + 1));
}

bool valid_pusher_event(std::string_view name) { return !name.empty() && name.size() <= pusher_max_event; }

}  // namespace pushwire::server

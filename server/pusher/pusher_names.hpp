// Pusher's naming rules (docs/pusher.md): channel names, socket ids, event names. Pure checks.
#pragma once
#include <cstddef>
#include <string_view>

namespace pushwire::server {

// Pusher's limits: a channel name up to 164 characters, an event name up to 200.
inline constexpr std::size_t pusher_max_channel = 164;
inline constexpr std::size_t pusher_max_event = 200;

// [A-Za-z0-9_\-=@,.;]{1,164}, or "#server-to-user-" followed by such characters (user events).
bool valid_pusher_channel(std::string_view name);
// `^\d+\.\d+$`, each part at most 20 digits.
bool valid_socket_id(std::string_view id);
// 1-200 bytes (Pusher allows any characters in an event name).
bool valid_pusher_event(std::string_view name);
inline bool is_presence_channel(std::string_view name) { return name.starts_with("presence-"); }

}  // namespace pushwire::server

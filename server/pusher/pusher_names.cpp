#include "server/pusher/pusher_names.hpp"

namespace pushwire::server {

namespace {
bool channel_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
         c == '=' || c == '@' || c == ',' || c == '.' || c == ';';
}
bool digits(std::string_view s) {
  if (s.empty() || s.size() > 20) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}
}  // namespace

bool valid_pusher_channel(std::string_view name) {
  if (name.empty() || name.size() > pusher_max_channel) return false;
  if (name.starts_with("#server-to-user-")) name.remove_prefix(16);
  if (name.empty()) return false;
  for (char c : name)
    if (!channel_char(c)) return false;
  return true;
}

bool valid_socket_id(std::string_view id) {
  auto dot = id.find('.');
  return dot != std::string_view::npos && digits(id.substr(0, dot)) && digits(id.substr(dot + 1));
}

bool valid_pusher_event(std::string_view name) { return !name.empty() && name.size() <= pusher_max_event; }

}  // namespace pushwire::server

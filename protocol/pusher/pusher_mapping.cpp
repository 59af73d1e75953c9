#include "protocol/pusher/pusher_mapping.hpp"

#include <vector>

#include "protocol/json_scan.hpp"

namespace pushwire::protocol::pusher {

namespace {
// Exactly one JSON object or array, nothing around it: then it travels as JSON and comes back
// byte for byte (its raw text is kept); anything else travels as a string.
bool structured(std::string_view d) {
  if (d.empty() || (d.front() != '{' && d.front() != '[')) return false;
  if (d.back() != '}' && d.back() != ']') return false;
  scan_error err;
  return validate_json(d, err);
}
}  // namespace

std::string hub_channel(std::string_view ns, std::string_view pusher_name) {
  std::string out(ns);
  if (!ns.empty()) out += ':';
  out += pusher_name;
  return out;
}

std::string_view pusher_name(std::string_view hub) {
  auto colon = hub.find(':');
  return colon == std::string_view::npos ? hub : hub.substr(colon + 1);
}

std::string hub_data(std::string_view event, std::string_view data, std::string_view socket_id,
                     std::string_view user_id) {
  std::string out;
  out.reserve(data.size() + event.size() + socket_id.size() + 40);
  out += "{\"event\":";
  append_json_string(out, event);
  out += ",\"data\":";
  if (structured(data)) out += data;
  else append_json_string(out, data);
  if (!socket_id.empty()) {
    out += ",\"socket_id\":";
    append_json_string(out, socket_id);
  }
  if (!user_id.empty()) {
    out += ",\"user_id\":";
    append_json_string(out, user_id);
  }
  out += '}';
  return out;
}

event_view from_hub_data(std::string_view json) {
  event_view v;
  std::vector<json_member> members;
  scan_error err;
  if (!json.empty() && json.front() == '{' && scan_object(json, members, err)) {
    const json_member *event = nullptr, *data = nullptr, *socket = nullptr, *user = nullptr;
    for (auto& m : members) {
      if (m.key == "event") event = &m;
      else if (m.key == "data") data = &m;
      else if (m.key == "socket_id") socket = &m;
      else if (m.key == "user_id") user = &m;
    }
    if (event && event->kind == json_kind::string && data) {
      v.event = decode_string(event->raw);
      v.data = data->kind == json_kind::string ? decode_string(data->raw) : std::string(data->raw);
      if (socket && socket->kind == json_kind::string) v.socket_id = decode_string(socket->raw);
      if (user && user->kind == json_kind::string) v.user_id = decode_string(user->raw);
      return v;
    }
  }
  v.event = std::string(default_event);
  v.data = std::string(json);
  return v;
}

}  // namespace pushwire::protocol::pusher

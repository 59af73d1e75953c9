#include "server/http/disconnect_body.hpp"

#include <boost/json.hpp>

#include "protocol/json_scan.hpp"
#include "server/node/node.hpp"

namespace pushwire::server {

namespace json = boost::json;

namespace {

// An integer 0 … max in `v` (no fraction, no sign, no exponent written as a double).
bool bounded_uint(const json::value& v, std::uint64_t max, std::uint64_t& out) {
  if (auto* i = v.if_int64(); i && *i >= 0 && static_cast<std::uint64_t>(*i) <= max) { out = static_cast<std::uint64_t>(*i); return true; }
  if (auto* u = v.if_uint64(); u && *u <= max) { out = *u; return true; }
  return false;
}

bool non_empty_string(const json::value& v, std::size_t max_bytes) {
  return v.is_string() && !v.get_string().empty() && v.get_string().size() <= max_bytes;
}

}  // namespace

bool parse_disconnect_body(const json::object& body, disconnect_order& out, std::string& reason) {
  constexpr std::size_t max_user_bytes = 1024;
  const std::string delay_rule = "must be an integer from 0 to " + std::to_string(max_reconnect_delay_ms);
  int targets = 0;
  out.jitter_ms = 2000;
  for (auto& [key, v] : body) {
    if (key == "client") {
      if (!v.is_string() || !node::valid_client_id(v.get_string())) { reason = "client must be a client id (\"c\" and digits)"; return false; }
      out.client = std::string(v.get_string());
      ++targets;
    } else if (key == "user") {
      if (!non_empty_string(v, max_user_bytes)) { reason = "user must be a non-empty string of at most 1024 bytes"; return false; }
      out.user = std::string(v.get_string());
      ++targets;
    } else if (key == "all") {
      if (!v.is_bool() || !v.get_bool()) { reason = "all must be true when given"; return false; }
      out.all = true;
      ++targets;
    } else if (key == "reconnect") {
      if (!v.is_bool()) { reason = "reconnect must be a boolean"; return false; }
      out.reconnect = v.get_bool();
    } else if (key == "after_ms") {
      if (!bounded_uint(v, max_reconnect_delay_ms, out.after_ms)) { reason = "after_ms " + delay_rule; return false; }
    } else if (key == "jitter_ms") {
      if (!bounded_uint(v, max_reconnect_delay_ms, out.jitter_ms)) { reason = "jitter_ms " + delay_rule; return false; }
    } else {
      reason = "unknown field \"";
      reason += protocol::utf8_prefix(key, 64);   // whole characters: the reason is JSON text
      reason += '"';
      return false;
    }
  }
  if (targets != 1) {
    reason = "give exactly one target: {\"client\":\"c7\"}, {\"user\":\"alice\"} or {\"all\":true}";
    return false;
  }
  return true;
}

}  // namespace pushwire::server

// Pusher apps (docs/pusher.md): each has an id (the HTTP API's /apps/{id}/), a key (the WebSocket's
// /app/{key}) and a secret (signatures of API calls, channel authorization, webhooks). Channels of
// different apps never meet: each app's channels live in one Pushwire namespace of their own
// (`namespace`, "" = the default namespace), and two apps may not share one. Off unless configured.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/fwd.hpp>

namespace pushwire::server {

struct pusher_webhook {
  std::string url;                   // http://host:port/path (plain HTTP; put TLS in front yourself)
  std::vector<std::string> events;   // channel_occupied, ...; empty = every kind
};

struct pusher_app {
  std::string id, key, secret;
  std::string ns;                    // Pushwire namespace of the app's channels ("" = default)
  bool client_events = true;         // `client-*` events on private and presence channels
  std::size_t max_connections = 0;   // 0 = only the node's own limit
  // Pusher's documented client-event limit: 10 per second per connection.
  std::size_t client_events_per_s = 10;
  // Pusher's own cap on presence members per channel.
  std::size_t max_presence_members = 100;
  std::vector<pusher_webhook> webhooks;

  // The hub channel of a Pusher channel name, and back (`hub` must be one of this app's).
  std::string hub_channel(std::string_view pusher_channel) const;
  std::string_view pusher_channel(std::string_view hub) const;
  // Whether a hub channel belongs to this app.
  bool owns(std::string_view hub) const;
};

// The JSON config key `pusher_apps`: an array of {"id","key","secret", "namespace",
// "client_events", "max_connections", "client_events_per_s", "max_presence_members",
// "webhooks":[{"url","events":[...]}]}.
bool read_pusher_apps(const boost::json::value& v, std::vector<pusher_app>& out, std::string& err);
// The flag form: "id:key:secret[,id:key:secret...]" (default options, default namespace for the
// first, namespace = id for the others).
bool parse_pusher_app_flag(std::string_view v, std::vector<pusher_app>& out);
// Empty when the set is usable; else what is wrong (duplicate ids, keys or namespaces, bad names).
std::string check_pusher_apps(const std::vector<pusher_app>& apps);

// The user a disconnect order matches (conn_base::user_id()) for a Pusher connection signed in (or
// in presence) as `user_id`: "pusher:<app id>:<user id>", so users of different apps (and Pushwire's own users) never meet;
// the HTTP API's terminate_connections disconnects by it.
std::string pusher_user_key(const pusher_app& app, std::string_view user_id);

const pusher_app* find_app_by_key(const std::vector<pusher_app>& apps, std::string_view key);
const pusher_app* find_app_by_id(const std::vector<pusher_app>& apps, std::string_view id);

}  // namespace pushwire::server

#include "server/pusher/pusher_apps.hpp"

#include <boost/json.hpp>

#include "protocol/pusher/pusher_mapping.hpp"
#include <set>

namespace pushwire::server {

namespace {
bool id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}
bool valid_id(std::string_view s, std::size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s)
    if (!id_char(c)) return false;
  return true;
}
// A Pushwire namespace: [A-Za-z0-9_-]{1,32} (protocol/channel_name.cpp).
bool valid_namespace(std::string_view s) {
  if (s.size() > 32) return false;
  for (char c : s)
    if (!id_char(c) || c == '.') return false;
  return true;
}
}  // namespace

std::string pusher_app::hub_channel(std::string_view name) const { return protocol::pusher::hub_channel(ns, name); }

std::string_view pusher_app::pusher_channel(std::string_view hub) const { return protocol::pusher::pusher_name(hub); }

bool pusher_app::owns(std::string_view hub) const {
  auto colon = hub.find(':');
  if (ns.empty()) return colon == std::string_view::npos;
  return colon == ns.size() && hub.starts_with(ns);
}

bool read_pusher_apps(const boost::json::value& v, std::vector<pusher_app>& out, std::string& err) {
  auto* arr = v.if_array();
  if (!arr) { err = "pusher_apps must be an array"; return false; }
  for (auto& e : *arr) {
    auto* o = e.if_object();
    if (!o) { err = "each of pusher_apps must be an object"; return false; }
    pusher_app a;
    for (auto& m : *o) {
      std::string_view k = m.key();
      const auto& val = m.value();
      auto s = [&](std::string& f) { if (auto* x = val.if_string()) { f = std::string(*x); return true; } return false; };
      auto b = [&](bool& f) { if (auto* x = val.if_bool()) { f = *x; return true; } return false; };
      auto u = [&](std::size_t& f) {
        if (auto* x = val.if_int64(); x && *x >= 0 && *x <= (std::int64_t{1} << 40)) { f = static_cast<std::size_t>(*x); return true; }
        return false;
      };
      bool ok = k == "id" ? s(a.id)
              : k == "key" ? s(a.key)
              : k == "secret" ? s(a.secret)
              : k == "namespace" ? s(a.ns)
              : k == "client_events" ? b(a.client_events)
              : k == "max_connections" ? u(a.max_connections)
              : k == "client_events_per_s" ? u(a.client_events_per_s)
              : k == "max_presence_members" ? u(a.max_presence_members)
              : false;
      if (k == "webhooks") {
        ok = false;
        if (auto* hooks = val.if_array()) {
          ok = true;
          for (auto& h : *hooks) {
            auto* ho = h.if_object();
            auto* url = ho ? ho->if_contains("url") : nullptr;
            if (!url || !url->is_string()) { ok = false; break; }
            pusher_webhook w{std::string(url->get_string()), {}};
            if (auto* ev = ho->if_contains("events")) {
              auto* ea = ev->if_array();
              if (!ea) { ok = false; break; }
              for (auto& x : *ea) {
                if (!x.is_string()) { ok = false; break; }
                w.events.emplace_back(x.get_string());
              }
            }
            a.webhooks.push_back(std::move(w));
          }
        }
      }
      if (!ok) { err = "pusher_apps: bad field " + std::string(k); return false; }
    }
    out.push_back(std::move(a));
  }
  return true;
}

bool parse_pusher_app_flag(std::string_view v, std::vector<pusher_app>& out) {
  while (!v.empty()) {
    auto comma = v.find(',');
    auto item = v.substr(0, comma);
    auto c1 = item.find(':');
    auto c2 = c1 == std::string_view::npos ? c1 : item.find(':', c1 + 1);
    if (c2 == std::string_view::npos) return false;
    pusher_app a;
    a.id = std::string(item.substr(0, c1));
    a.key = std::string(item.substr(c1 + 1, c2 - c1 - 1));
    a.secret = std::string(item.substr(c2 + 1));
    if (!out.empty()) a.ns = a.id;
    out.push_back(std::move(a));
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  return true;
}

std::string check_pusher_apps(const std::vector<pusher_app>& apps) {
  std::set<std::string, std::less<>> ids, keys, namespaces;
  for (auto& a : apps) {
    if (!valid_id(a.id, 64)) return "pusher app id \"" + a.id + "\" must be 1-64 of [A-Za-z0-9_.-]";
    if (!valid_id(a.key, 64)) return "pusher app " + a.id + ": key must be 1-64 of [A-Za-z0-9_.-]";
    if (a.secret.empty() || a.secret.size() > 256) return "pusher app " + a.id + ": secret must be 1-256 bytes";
    if (!valid_namespace(a.ns)) return "pusher app " + a.id + ": namespace must be up to 32 of [A-Za-z0-9_-]";
    if (!ids.insert(a.id).second) return "pusher app id " + a.id + " is configured twice";
    if (!keys.insert(a.key).second) return "pusher app key " + a.key + " is configured twice";
    if (!namespaces.insert(a.ns).second)
      return "pusher apps would share the namespace \"" + a.ns + "\" (their channels would meet): give each its own";
    if (a.client_events_per_s == 0) return "pusher app " + a.id + ": client_events_per_s must be at least 1";
    for (auto& w : a.webhooks)
      if (!w.url.starts_with("http://")) return "pusher app " + a.id + ": webhook url must start with http://";
  }
  return {};
}

std::string pusher_user_key(const pusher_app& app, std::string_view user_id) {
  std::string k = "pusher:";
  k += app.id;
  k += ':';
  k += user_id;
  return k;
}

const pusher_app* find_app_by_key(const std::vector<pusher_app>& apps, std::string_view key) {
  for (auto& a : apps)
    if (a.key == key) return &a;
  return nullptr;
}
const pusher_app* find_app_by_id(const std::vector<pusher_app>& apps, std::string_view id) {
  for (auto& a : apps)
    if (a.id == id) return &a;
  return nullptr;
}

}  // namespace pushwire::server

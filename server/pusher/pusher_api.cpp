#include "server/pusher/pusher_api.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <memory>
#include <mutex>

#include "protocol/json_scan.hpp"
#include "protocol/pusher/pusher_mapping.hpp"
#include "server/http/query.hpp"
#include "server/pusher/pusher_auth.hpp"
#include "server/pusher/pusher_counts.hpp"
#include "server/pusher/pusher_names.hpp"

namespace pushwire::server {

namespace json = boost::json;
using protocol::code;

namespace {

// Pusher's own cap on channels per trigger.
constexpr std::size_t max_channels_per_event = 100;
// GET channels lists at most this many (as /api/channels): enough to look at, bounded to build.
constexpr std::size_t max_listed_channels = 10000;
// A user id in a path: Pusher sets no bound; ours keeps the key a disconnect matches short.
constexpr std::size_t max_user_id = 200;

http_reply pusher_error(unsigned status, std::string_view reason) {
  http_reply r;
  r.status = status;
  r.body = "{\"error\":";
  protocol::append_json_string(r.body, protocol::valid_utf8(reason) ? reason : std::string_view("invalid"));
  r.body += '}';
  return r;
}

std::uint64_t wall_s() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

// One event of `events` or of `batch_events`, checked before anything is published.
struct pusher_event {
  std::string name, data, socket_id;
  std::vector<std::string> channels;
  info_attrs info;
  bool wants_info = false;
};

// 0, or the status to answer with `why`.
unsigned read_event(const node& n, const json::object& o, bool batch, pusher_event& e, std::string& why) {
  auto* name = o.if_contains("name");
  if (!name || !name->is_string() || !valid_pusher_event(name->get_string())) {
    why = "name must be a string of 1-200 bytes";
    return 400;
  }
  e.name = std::string(name->get_string());
  auto* data = o.if_contains("data");
  if (!data || !data->is_string()) { why = "data must be a string"; return 400; }
  if (data->get_string().size() > n.cfg.max_message_bytes) {
    why = "data is larger than ";
    why += std::to_string(n.cfg.max_message_bytes);
    why += " bytes (--max-message-bytes)";
    return 413;
  }
  e.data = std::string(data->get_string());
  auto* channels = o.if_contains("channels");
  auto* channel = o.if_contains("channel");
  if (channels && !batch) {
    auto* arr = channels->if_array();
    if (!arr || arr->empty() || arr->size() > max_channels_per_event) {
      why = "channels must be an array of 1-100 channel names";
      return 400;
    }
    for (auto& c : *arr) {
      if (!c.is_string()) { why = "channels must be strings"; return 400; }
      e.channels.emplace_back(c.get_string());
    }
  } else if (channel && channel->is_string()) {
    e.channels.emplace_back(channel->get_string());
  } else {
    why = batch ? "channel must be a string" : "channel or channels is required";
    return 400;
  }
  for (auto& c : e.channels)
    if (!valid_pusher_channel(c)) {
      why = "invalid channel name (up to 164 of A-Z a-z 0-9 _ - = @ , . ;)";
      return 400;
    }
  if (auto* s = o.if_contains("socket_id"); s && !s->is_null()) {
    if (!s->is_string() || !valid_socket_id(s->get_string())) { why = "socket_id must look like 123.456"; return 400; }
    e.socket_id = std::string(s->get_string());
  }
  if (auto* i = o.if_contains("info"); i && !i->is_null()) {
    if (!i->is_string() || !parse_info(i->get_string(), e.info)) {
      why = "info may hold subscription_count and user_count";
      return 400;
    }
    e.wants_info = e.info.subscription_count || e.info.user_count;
  }
  return 0;
}

// Joins results that complete in any order (and on any thread) into one reply.
struct gather {
  std::mutex mu;
  std::size_t pending = 0;
  code error = code::ok;
  std::string reason;
  std::function<void(code, std::string)> then;
  void one(code c, std::string_view why) {
    std::unique_lock lk(mu);
    if (c != code::ok && error == code::ok) {
      error = c;
      reason = std::string(why);
    }
    if (--pending) return;
    lk.unlock();
    then(error, std::move(reason));
  }
};

// Publishes each event on each of its channels: one hub publication per (event, channel), its data
// the mapping's (protocol/pusher/pusher_mapping.hpp). `done` gets the first error, if any.
void publish_events(node& n, const pusher_app& app, const std::vector<pusher_event>& events,
                    std::function<void(code, std::string)> done) {
  auto g = std::make_shared<gather>();
  for (auto& e : events) g->pending += e.channels.size();
  g->then = std::move(done);
  for (auto& e : events) {
    auto data = protocol::pusher::hub_data(e.name, e.data, e.socket_id);
    for (auto& c : e.channels)
      n.the_hub().publish(app.hub_channel(c), data, {}, [&n, g](publish_result r) {
        if (r.error == code::ok && !r.duplicate) n.met.messages_published.fetch_add(1, std::memory_order_relaxed);
        g->one(r.error, r.reason);
      });
  }
}

bool parse_body(const http_in& in, json::object& out) {
  boost::system::error_code ec;
  auto v = json::parse(in.body, ec);
  if (ec || !v.is_object()) return false;
  out = std::move(v.as_object());
  return true;
}

std::string query(const http_in& in, const char* k) {
  auto it = in.query.find(k);
  return it == in.query.end() ? std::string{} : it->second;
}

struct request {
  node& n;
  const pusher_app& app;
  const http_in& in;
  http_respond respond;

  void fail(unsigned status, std::string_view why) {
    n.met.api_errors.fetch_add(1, std::memory_order_relaxed);
    respond(pusher_error(status, why));
  }
  // The reply of a publish: its error's status, or the JSON that `body` makes.
  std::function<void(code, std::string)> publish_reply(std::function<void(std::function<void(std::string)>)> body) {
    return [&n = n, respond = respond, body = std::move(body)](code c, std::string why) {
      if (c != code::ok) {
        n.met.api_errors.fetch_add(1, std::memory_order_relaxed);
        return respond(pusher_error(http_status(c), why));
      }
      body([respond](std::string out) { respond(json_reply(std::move(out))); });
    };
  }

  void events() {
    json::object body;
    if (!parse_body(in, body)) return fail(400, "body must be a JSON object");
    pusher_event e;
    std::string why;
    if (auto st = read_event(n, body, false, e, why)) return fail(st, why);
    auto ev = std::make_shared<std::vector<pusher_event>>();
    ev->push_back(std::move(e));
    publish_events(n, app, *ev, publish_reply([&n = n, &app = app, ev](std::function<void(std::string)> reply) {
      auto& e = ev->front();
      if (!e.wants_info) return reply("{}");
      channels_info(n, app, asks_of(e.channels, e.info), std::move(reply));
    }));
  }

  void batch_events() {
    json::object body;
    if (!parse_body(in, body)) return fail(400, "body must be a JSON object");
    auto* batch = body.if_contains("batch");
    if (!batch || !batch->is_array()) return fail(400, "batch must be an array");
    auto& arr = batch->get_array();
    if (arr.size() > n.cfg.max_batch) {
      std::string why = "at most ";
      why += std::to_string(n.cfg.max_batch);
      why += " events per batch (--max-batch)";
      return fail(413, why);
    }
    auto ev = std::make_shared<std::vector<pusher_event>>(arr.size());
    bool any_info = false;
    for (std::size_t i = 0; i < arr.size(); ++i) {
      std::string why, where = "batch[";
      where += std::to_string(i);
      where += "]: ";
      auto* o = arr[i].if_object();
      if (!o) return fail(400, where + "must be an object");
      if (auto st = read_event(n, *o, true, (*ev)[i], why)) return fail(st, where + why);
      any_info = any_info || (*ev)[i].wants_info;
    }
    if (ev->empty()) return respond(json_reply("{}"));
    publish_events(n, app, *ev, publish_reply([&n = n, &app = app, ev, any_info](std::function<void(std::string)> reply) {
      if (!any_info) return reply("{}");
      // {"batch":[{...info of event 0's channel...}, ...]}: one object per event, in order.
      std::vector<info_ask> asks;
      asks.reserve(ev->size());
      for (auto& e : *ev) asks.push_back(info_ask{e.channels.front(), e.info});
      info_fields(n, app, std::move(asks), [reply](std::vector<std::string> f) {
        std::string out = "{\"batch\":[";
        for (std::size_t j = 0; j < f.size(); ++j) {
          if (j) out += ',';
          out += '{';
          out += f[j];
          out += '}';
        }
        out += "]}";
        reply(std::move(out));
      });
    }));
  }

  void channels() {
    auto prefix = query(in, "filter_by_prefix");
    info_attrs info;
    if (!parse_info(query(in, "info"), info)) return fail(400, "info may hold user_count and subscription_count");
    if (info.user_count && !prefix.starts_with("presence-"))
      return fail(400, "info=user_count needs filter_by_prefix=presence-");
    subscriber_counts(n, [&n = n, &app = app, respond = respond, prefix, info](channel_counts counts) {
      std::vector<std::string> names;
      for (auto& [hub_ch, count] : counts) {
        if (!count || !app.owns(hub_ch)) continue;
        auto name = app.pusher_channel(hub_ch);
        if (name.starts_with(prefix) && names.size() < max_listed_channels) names.emplace_back(name);
      }
      std::sort(names.begin(), names.end());
      if (!info.user_count && !info.subscription_count) {
        std::string out = "{\"channels\":{";
        for (std::size_t i = 0; i < names.size(); ++i) {
          if (i) out += ',';
          protocol::append_json_string(out, names[i]);
          out += ":{}";
        }
        out += "}}";
        return respond(json_reply(std::move(out)));
      }
      channels_info(n, app, asks_of(names, info), [respond](std::string out) { respond(json_reply(std::move(out))); });
    });
  }

  void channel(const std::string& name) {
    info_attrs info;
    if (!parse_info(query(in, "info"), info)) return fail(400, "info may hold subscription_count and user_count");
    if (info.user_count && !is_presence_channel(name)) return fail(400, "user_count is for presence channels only");
    subscriber_counts(n, {app.hub_channel(name)}, [&n = n, &app = app, respond = respond, name, info](std::vector<std::size_t> count) {
      std::string head = "{\"occupied\":";
      head += count.at(0) ? "true" : "false";
      if (!info.subscription_count && !info.user_count) return respond(json_reply(head + "}"));
      info_fields(n, app, {info_ask{name, info}}, [respond, head](std::vector<std::string> fields) {
        std::string out = head;
        if (!fields[0].empty()) out += ',';
        out += fields[0];
        out += '}';
        respond(json_reply(std::move(out)));
      });
    });
  }

  void users(const std::string& name) {
    if (!is_presence_channel(name)) return fail(400, "users are listed for presence channels only");
    presence_users(n, app.hub_channel(name), [respond = respond](std::vector<std::string> users) {
      std::string out = "{\"users\":[";
      for (std::size_t i = 0; i < users.size(); ++i) {
        if (i) out += ',';
        out += "{\"id\":";
        protocol::append_json_string(out, users[i]);
        out += '}';
      }
      out += "]}";
      respond(json_reply(std::move(out)));
    });
  }

  void terminate(std::string_view user_id) {
    disconnect_order d;
    d.user = pusher_user_key(app, user_id);
    d.code = static_cast<protocol::code>(4009);   // Pusher's "closed by the server", no reconnect
    d.reason = "terminated by the server";
    d.reconnect = false;
    n.disconnect(d);
    respond(json_reply("{}"));
  }
};

// A path segment: non-empty, no '/'.
bool segment(std::string_view s) { return !s.empty() && s.find('/') == std::string_view::npos; }

}  // namespace

void handle_pusher_api(node& n, const http_in& in, http_respond respond) {
  n.met.api_requests.fetch_add(1, std::memory_order_relaxed);
  auto fail = [&n, &respond](unsigned status, std::string_view why) {
    n.met.api_errors.fetch_add(1, std::memory_order_relaxed);
    respond(pusher_error(status, why));
  };
  // /apps/{app_id}/{rest}
  std::string_view p = in.path;
  p.remove_prefix(6);
  auto slash = p.find('/');
  if (slash == std::string_view::npos) return fail(404, "no such path");
  const pusher_app* app = find_app_by_id(n.cfg.pusher_apps, p.substr(0, slash));
  if (!app) return fail(404, "unknown app");
  std::string why;
  if (auto st = check_pusher_auth(*app, in.method, in.path, in.query, in.body, wall_s(), why)) return fail(st, why);
  serve_pusher_api(n, *app, p.substr(slash), in, std::move(respond));
}

void serve_pusher_api(node& n, const pusher_app& app, std::string_view rest, const http_in& in, http_respond respond) {
  request r{n, app, in, std::move(respond)};
  auto method = [&](const char* m) {
    if (in.method == m) return true;
    std::string why = "use ";
    why += m;
    r.fail(405, why);
    return false;
  };
  if (rest == "/events") {
    if (method("POST")) r.events();
    return;
  }
  if (rest == "/batch_events") {
    if (method("POST")) r.batch_events();
    return;
  }
  if (rest == "/channels") {
    if (method("GET")) r.channels();
    return;
  }
  if (rest.starts_with("/channels/")) {
    auto tail = rest.substr(10);
    bool users = tail.ends_with("/users");
    if (users) tail.remove_suffix(6);
    if (!segment(tail)) return r.fail(404, "no such path");
    std::string name(tail);
    if (!valid_pusher_channel(name)) return r.fail(400, "invalid channel name");
    if (!method("GET")) return;
    return users ? r.users(name) : r.channel(name);
  }
  constexpr std::string_view users_head = "/users/", terminate_tail = "/terminate_connections";
  if (rest.size() > users_head.size() + terminate_tail.size() && rest.starts_with(users_head) &&
      rest.ends_with(terminate_tail)) {
    auto raw = rest.substr(users_head.size(), rest.size() - users_head.size() - terminate_tail.size());
    auto id = percent_decode(raw);   // (an SDK leaves it as is; fetch encodes what a URL cannot hold)
    if (!segment(raw) || id.empty() || id.size() > max_user_id) return r.fail(400, "user id must be 1-200 bytes");
    if (method("POST")) r.terminate(id);
    return;
  }
  r.fail(404, "no such path");
}

}  // namespace pushwire::server

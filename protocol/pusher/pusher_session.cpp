#include "protocol/pusher/pusher_session.hpp"

#include "protocol/json_scan.hpp"
#include "protocol/pusher/pusher_mapping.hpp"

namespace pushwire::protocol::pusher {

namespace {

bool channel_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
         c == '=' || c == '@' || c == ',' || c == '.' || c == ';';
}

// The members of a JSON object given as raw text (an object value, or a string holding one).
bool object_members(std::string_view raw, bool is_string, std::vector<json_member>& out, std::string& holder) {
  scan_error err;
  if (is_string) {
    holder = decode_string(raw);
    raw = holder;
  }
  return scan_object(raw, out, err);
}

const json_member* find(const std::vector<json_member>& m, std::string_view key) {
  for (auto& x : m)
    if (x.key == key) return &x;
  return nullptr;
}

std::optional<std::string> string_of(const json_member* m) {
  if (!m || m->kind != json_kind::string) return std::nullopt;
  return decode_string(m->raw);
}

// Pusher user ids come as strings or numbers; both are kept as text.
std::optional<std::string> user_id_of(const json_member* m) {
  if (!m) return std::nullopt;
  std::string id;
  if (m->kind == json_kind::string) id = decode_string(m->raw);
  else if (m->kind == json_kind::number) id = std::string(m->raw);
  else return std::nullopt;
  if (id.empty() || id.size() > max_user_id_bytes) return std::nullopt;
  return id;
}

}  // namespace

std::optional<channel_kind> classify_channel(std::string_view name) {
  if (name.empty() || name.size() > max_channel_length) return std::nullopt;
  channel_kind k;
  std::string_view rest = name;
  if (rest.starts_with(user_channel_prefix)) {
    rest.remove_prefix(user_channel_prefix.size());
    if (rest.empty()) return std::nullopt;
    for (char c : rest)
      if (!channel_char(c)) return std::nullopt;
    k.type = channel_type::user;
    return k;
  }
  for (char c : name)
    if (!channel_char(c)) return std::nullopt;
  if (rest.starts_with("private-encrypted-")) {
    k.type = channel_type::encrypted;
    rest.remove_prefix(18);
  } else if (rest.starts_with("private-")) {
    k.type = channel_type::private_;
    rest.remove_prefix(8);
  } else if (rest.starts_with("presence-")) {
    k.type = channel_type::presence;
    rest.remove_prefix(9);
  }
  if (rest.starts_with("cache-")) k.cache = true;
  return k;
}

pusher_session::pusher_session(session_config cfg, std::uint64_t now) : cfg_(std::move(cfg)) {
  event_tokens_ = static_cast<double>(cfg_.client_events_per_s);
  event_at_ = now;
}

void pusher_session::refuse(close_code c, std::string_view why) {
  send_error(static_cast<int>(c), why);
  close(c, why);
}

void pusher_session::start() {
  std::string data = "{\"socket_id\":";
  append_json_string(data, cfg_.socket_id);
  data += ",\"activity_timeout\":";
  append_uint(data, cfg_.activity_timeout_s);
  data += '}';
  send("pusher:connection_established", {}, data);
}

void pusher_session::encode_message(std::string& out, std::string_view event, std::string_view channel,
                                    std::string_view data, std::string_view user_id) {
  out += "{\"event\":";
  append_json_string(out, event);
  if (!channel.empty()) {
    out += ",\"channel\":";
    append_json_string(out, channel);
  }
  out += ",\"data\":";
  append_json_string(out, data);
  if (!user_id.empty()) {
    out += ",\"user_id\":";
    append_json_string(out, user_id);
  }
  out += '}';
}

std::string pusher_session::hub_channel(std::string_view name) const { return pusher::hub_channel(cfg_.ns, name); }

std::string pusher_session::pusher_channel(std::string_view hub) const { return std::string(pusher_name(hub)); }

void pusher_session::send(std::string_view event, std::string_view channel, std::string_view data) {
  session_action a;
  a.kind = session_action_kind::send;
  encode_message(a.text, event, channel, data);
  actions_.push_back(std::move(a));
}

void pusher_session::send_error(std::optional<int> code, std::string_view message) {
  std::string data = "{\"message\":";
  append_json_string(data, message);
  data += ",\"code\":";
  if (code) append_uint(data, static_cast<std::uint64_t>(*code));
  else data += "null";
  data += '}';
  send("pusher:error", {}, data);
}

void pusher_session::subscription_error(std::string_view channel, std::string_view type, std::string_view error,
                                        int status) {
  std::string data = "{\"type\":";
  append_json_string(data, type);
  data += ",\"error\":";
  append_json_string(data, error);
  data += ",\"status\":";
  append_uint(data, static_cast<std::uint64_t>(status));
  data += '}';
  send("pusher:subscription_error", channel, data);
}

void pusher_session::close(close_code c, std::string_view reason) {
  if (state_ != pusher_state::open) return;
  state_ = pusher_state::closing;
  session_action a;
  a.kind = session_action_kind::close;
  a.close_code = static_cast<code>(c);
  a.reason = std::string(reason);
  actions_.push_back(std::move(a));
}

void pusher_session::disconnect(code c, std::string_view reason, bool reconnect) {
  if (state_ != pusher_state::open) return;
  close_code pc = close_code::reconnect_now;
  if (c == code::slow_consumer) pc = close_code::over_capacity;
  else if (!reconnect) pc = close_code::unauthorized;
  send_error(static_cast<int>(pc), reason);
  close(pc, reason);
}

void pusher_session::shell_closed() { state_ = pusher_state::closed; }

void pusher_session::connection_lost() {
  for (auto& [name, ch] : channels_) {
    if (ch.kind.type != channel_type::presence || !ch.presence.ready) continue;
    auto u = ch.presence.users.find(ch.user);
    if (u != ch.presence.users.end() && u->second.first <= 1)
      notes_.push_back(note{note::kind::member_removed, name, ch.user, {}, {}});
  }
  channels_.clear();
}

std::optional<session_action> pusher_session::poll_action() {
  if (actions_.empty()) return std::nullopt;
  return actions_.pop_front();
}

std::optional<note> pusher_session::poll_note() {
  if (notes_.empty()) return std::nullopt;
  return notes_.pop_front();
}

void pusher_session::handle_text(std::string_view message, std::uint64_t now) {
  if (state_ != pusher_state::open) return;
  std::vector<json_member> m;
  scan_error err;
  if (!scan_object(message, m, err)) return send_error(std::nullopt, "the message is not a JSON object");
  auto event = string_of(find(m, "event"));
  if (!event) return send_error(std::nullopt, "the message has no string \"event\"");
  const json_member* data = find(m, "data");
  std::string_view data_raw = data ? data->raw : std::string_view{};
  bool data_object = data && data->kind == json_kind::object;
  bool data_string = data && data->kind == json_kind::string;
  if (*event == "pusher:ping") return send("pusher:pong", {}, "{}");
  if (*event == "pusher:pong") return;
  if (*event == "pusher:subscribe") return on_subscribe(data_raw, data_object || data_string);
  if (*event == "pusher:unsubscribe") return on_unsubscribe(data_raw, data_object || data_string);
  if (*event == "pusher:signin") return on_signin(data_raw, data_object || data_string);
  if (event->starts_with("client-")) {
    auto channel = string_of(find(m, "channel"));
    if (!channel) return send_error(std::nullopt, "a client event needs a string \"channel\"");
    if (!take_client_event(now))
      return send_error(client_event_rate_limited,
                        "client event rejected: over " + std::to_string(cfg_.client_events_per_s) + " per second");
    return on_client_event(*event, *channel, data ? data_raw : std::string_view("{}"), data_string);
  }
  // The name is quoted back only when it is text: a cut inside a character made the error itself
  // invalid (the long pusher_fuzz run of issue 18).
  std::string_view name = utf8_prefix(*event, 64);
  if (!valid_utf8(name)) return send_error(std::nullopt, "unknown event");
  std::string why = "unknown event \"";
  why += name;
  why += '"';
  send_error(std::nullopt, why);
}

bool pusher_session::valid_signature(std::string_view auth, std::string_view signed_text) const {
  auto colon = auth.find(':');
  if (colon == std::string_view::npos || auth.substr(0, colon) != cfg_.app_key) return false;
  std::string expected = cfg_.sign(signed_text);
  std::string_view given = auth.substr(colon + 1);
  if (expected.empty() || given.size() != expected.size()) return false;
  unsigned char diff = 0;   // constant time: a signature check must not leak a matching prefix
  for (std::size_t i = 0; i < given.size(); ++i) diff |= static_cast<unsigned char>(given[i] ^ expected[i]);
  return diff == 0;
}

void pusher_session::on_subscribe(std::string_view data_raw, bool ok_type) {
  std::vector<json_member> d;
  std::string holder;
  if (!ok_type || !object_members(data_raw, data_raw.starts_with('"'), d, holder))
    return send_error(std::nullopt, "pusher:subscribe needs a data object");
  auto name = string_of(find(d, "channel"));
  if (!name) return send_error(std::nullopt, "pusher:subscribe needs a string \"channel\"");
  auto kind = classify_channel(*name);
  if (!kind) return subscription_error(*name, "InvalidChannel", "invalid channel name (at most 164 of [A-Za-z0-9_-=@,.;])", 400);
  if (auto it = channels_.find(*name); it != channels_.end()) {
    // pusher-js subscribes once per connection; a repeat is answered like the first when done.
    if (it->second.state == sub_state::subscribed && it->second.kind.type != channel_type::presence)
      send("pusher_internal:subscription_succeeded", *name, "{}");
    return;
  }
  if (channels_.size() >= cfg_.max_subscriptions)
    return subscription_error(*name, "LimitReached",
                              "too many subscriptions on this connection (at most " + std::to_string(cfg_.max_subscriptions) + ")",
                              400);
  channel ch;
  ch.kind = *kind;
  if (kind->type == channel_type::user) {
    if (user_.empty() || name->substr(user_channel_prefix.size()) != user_)
      return subscription_error(*name, "AuthError", "only the signed-in user may subscribe to its own channel", 401);
  }
  if (kind->type == channel_type::private_ || kind->type == channel_type::encrypted || kind->type == channel_type::presence) {
    auto auth = string_of(find(d, "auth"));
    std::string signed_text = cfg_.socket_id;
    signed_text += ':';
    signed_text += *name;
    std::optional<std::string> channel_data;
    if (kind->type == channel_type::presence) {
      channel_data = string_of(find(d, "channel_data"));
      if (!channel_data) return subscription_error(*name, "AuthError", "a presence subscription needs channel_data", 401);
      if (channel_data->size() > max_channel_data_bytes)
        return subscription_error(*name, "AuthError", "channel_data is over 4096 bytes", 400);
      signed_text += ':';
      signed_text += *channel_data;
    }
    if (!auth || !valid_signature(*auth, signed_text))
      return subscription_error(*name, "AuthError",
                                "invalid signature: expected HMAC-SHA256 of \"socket_id:channel" +
                                    std::string(channel_data ? ":channel_data" : "") + "\" with the app secret",
                                401);
    if (channel_data) {
      std::vector<json_member> cd;
      scan_error err;
      if (!scan_object(*channel_data, cd, err)) return subscription_error(*name, "AuthError", "channel_data is not a JSON object", 400);
      auto id = user_id_of(find(cd, "user_id"));
      if (!id) return subscription_error(*name, "AuthError", "channel_data needs a user_id (string or number, 1-128 bytes)", 400);
      ch.user = *id;
      if (auto* info = find(cd, "user_info")) ch.info = std::string(info->raw);
    }
  }
  auto [it, _] = channels_.emplace(*name, std::move(ch));
  if (it->second.kind.cache) {
    // The newest position first: the subscribe then resumes from just before it, so the cached
    // event comes as the replay, ordered with live ones by the stream machine.
    it->second.state = sub_state::reading_top;
    it->second.request = next_request_++;
    pending_[it->second.request] = pending{pending_kind::top, *name};
    session_action a;
    a.kind = session_action_kind::history;
    a.request = it->second.request;
    a.channel = hub_channel(*name);
    a.limit = 1;
    actions_.push_back(std::move(a));
    return;
  }
  start_subscribe(it->first, it->second, std::nullopt);
}

void pusher_session::start_subscribe(const std::string& name, channel& ch, std::optional<position> since) {
  ch.state = sub_state::subscribing;
  ch.request = next_request_++;
  pending_[ch.request] = pending{pending_kind::subscribe, name};
  session_action a;
  a.kind = session_action_kind::subscribe;
  a.request = ch.request;
  a.channel = hub_channel(name);
  a.since = std::move(since);
  if (ch.kind.type == channel_type::presence) {
    a.join_presence = true;
    a.member_user = ch.user;
    a.member_info = ch.info.empty() ? "null" : ch.info;
    a.with_members = true;
  }
  actions_.push_back(std::move(a));
}

void pusher_session::on_unsubscribe(std::string_view data_raw, bool ok_type) {
  std::vector<json_member> d;
  std::string holder;
  if (!ok_type || !object_members(data_raw, data_raw.starts_with('"'), d, holder))
    return send_error(std::nullopt, "pusher:unsubscribe needs a data object");
  auto name = string_of(find(d, "channel"));
  if (!name) return send_error(std::nullopt, "pusher:unsubscribe needs a string \"channel\"");
  auto it = channels_.find(*name);
  if (it == channels_.end()) return;   // pusher-js may unsubscribe what never succeeded
  auto& ch = it->second;
  if (ch.kind.type == channel_type::presence && ch.presence.ready) {
    // Our own leave reaches the others; the webhook's member_removed is told here when this was
    // the user's last connection as this connection saw the channel.
    auto u = ch.presence.users.find(ch.user);
    if (u != ch.presence.users.end() && u->second.first <= 1)
      notes_.push_back(note{note::kind::member_removed, *name, ch.user, {}, {}});
  }
  pending_.erase(ch.request);
  session_action a;
  a.kind = session_action_kind::unsubscribe;
  a.request = next_request_++;
  a.channel = hub_channel(*name);
  channels_.erase(it);
  actions_.push_back(std::move(a));
}

void pusher_session::on_signin(std::string_view data_raw, bool ok_type) {
  std::vector<json_member> d;
  std::string holder;
  if (!ok_type || !object_members(data_raw, data_raw.starts_with('"'), d, holder))
    return send_error(std::nullopt, "pusher:signin needs a data object");
  auto auth = string_of(find(d, "auth"));
  auto user_data = string_of(find(d, "user_data"));
  if (!auth || !user_data || user_data->size() > max_channel_data_bytes) {
    send_error(static_cast<int>(close_code::unauthorized), "pusher:signin needs auth and user_data (at most 4096 bytes)");
    return close(close_code::unauthorized, "bad sign-in");
  }
  std::string signed_text = cfg_.socket_id;
  signed_text += "::user::";
  signed_text += *user_data;
  std::vector<json_member> ud;
  scan_error err;
  std::optional<std::string> id;
  if (scan_object(*user_data, ud, err)) id = user_id_of(find(ud, "id"));
  if (!valid_signature(*auth, signed_text) || !id) {
    send_error(static_cast<int>(close_code::unauthorized),
               !id ? "user_data needs an id (string or number, 1-128 bytes)"
                   : "invalid signature: expected HMAC-SHA256 of \"socket_id::user::user_data\" with the app secret");
    return close(close_code::unauthorized, "sign-in refused");
  }
  if (!user_.empty() && user_ != *id) {
    send_error(static_cast<int>(close_code::unauthorized), "this connection is signed in as another user");
    return close(close_code::unauthorized, "sign-in refused");
  }
  user_ = *id;
  notes_.push_back(note{note::kind::signed_in, {}, user_, {}, {}});
  std::string data = "{\"user_data\":";
  append_json_string(data, *user_data);
  data += '}';
  send("pusher:signin_success", {}, data);
}

bool pusher_session::take_client_event(std::uint64_t now) {
  double rate = static_cast<double>(cfg_.client_events_per_s);
  if (now > event_at_) {
    event_tokens_ = std::min(rate, event_tokens_ + rate * static_cast<double>(now - event_at_) / 1000.0);
    event_at_ = now;
  }
  if (event_tokens_ < 1.0) return false;
  event_tokens_ -= 1.0;
  return true;
}

void pusher_session::on_client_event(std::string_view event, std::string_view name, std::string_view data_raw,
                                     bool data_string) {
  if (!cfg_.client_events) return send_error(std::nullopt, "client events are not enabled for this app");
  auto it = channels_.find(name);
  if (it == channels_.end() || it->second.state != sub_state::subscribed)
    return send_error(std::nullopt, "client event on a channel this connection is not subscribed to");
  auto type = it->second.kind.type;
  if (type != channel_type::private_ && type != channel_type::presence)
    return send_error(std::nullopt, "client events are only allowed on private and presence channels");
  if (event.size() > 200) return send_error(std::nullopt, "client event name is over 200 bytes");
  std::string data = data_string ? decode_string(data_raw) : std::string(data_raw);
  if (data.size() > cfg_.max_message_bytes)
    return send_error(std::nullopt, "client event data is over " + std::to_string(cfg_.max_message_bytes) + " bytes");
  std::string user = type == channel_type::presence ? it->second.user : std::string();
  notes_.push_back(note{note::kind::client_event, std::string(name), user, std::string(event), data});
  session_action a;
  a.kind = session_action_kind::publish;
  a.request = next_request_++;
  pending_[a.request] = pending{pending_kind::publish, std::string(name)};
  a.channel = hub_channel(name);
  a.data = hub_data(event, data, cfg_.socket_id, user);
  actions_.push_back(std::move(a));
}

void pusher_session::handle_result(const engine_reply& r, std::uint64_t) {
  auto p = pending_.find(r.request);
  if (p == pending_.end()) return;
  auto what = p->second;
  pending_.erase(p);
  if (state_ != pusher_state::open) return;
  if (what.kind == pending_kind::publish) {
    if (r.error != code::ok) send_error(std::nullopt, "client event not delivered: " + r.reason);
    return;
  }
  auto it = channels_.find(what.channel);
  if (it == channels_.end()) return;
  auto& ch = it->second;
  if (r.error != code::ok) {
    std::string name = what.channel;
    channels_.erase(it);
    return subscription_error(name, r.error == code::presence_full ? "LimitReached" : "ServerError",
                              r.reason.empty() ? std::string(code_name(r.error)) : r.reason,
                              r.error == code::presence_full ? 400 : 503);
  }
  if (what.kind == pending_kind::top) {
    std::optional<position> since;
    if (r.pos.offset > 0) since = position{r.pos.epoch, r.pos.offset - 1};
    return start_subscribe(it->first, ch, std::move(since));
  }
  subscribed(it->first, ch, r);
}

void pusher_session::subscribed(const std::string& name, channel& ch, const engine_reply& r) {
  ch.state = sub_state::subscribed;
  if (ch.kind.type != channel_type::presence) {
    send("pusher_internal:subscription_succeeded", name, "{}");
  } else {
    auto& pv = ch.presence;
    for (auto& m : r.members) apply(name, ch, member_event{true, {}, m.user, m.client, m.info}, false);
    pv.ready = true;
    for (auto& e : pv.early) apply(name, ch, e, true);
    pv.early.clear();
    std::string ids = "[", hash = "{";
    for (auto& [user, v] : pv.users) {
      if (ids.size() > 1) { ids += ','; hash += ','; }
      append_json_string(ids, user);
      append_json_string(hash, user);
      hash += ':';
      hash += v.second.empty() ? "null" : v.second;
    }
    ids += ']';
    hash += '}';
    std::string data = "{\"presence\":{\"ids\":" + ids + ",\"hash\":" + hash + ",\"count\":";
    append_uint(data, pv.users.size());
    data += "}}";
    send("pusher_internal:subscription_succeeded", name, data);
    if (auto u = pv.users.find(ch.user); u != pv.users.end() && u->second.first == 1)
      notes_.push_back(note{note::kind::member_added, name, ch.user, {}, {}});
  }
  // A cache channel whose newest event is gone (or that never had one) says so.
  if (ch.kind.cache && !r.recovered.value_or(false)) send("pusher:cache_miss", name, "{}");
}

void pusher_session::handle_member_event(const member_event& e) {
  if (state_ != pusher_state::open) return;
  std::string name = pusher_channel(e.hub_channel);
  auto it = channels_.find(name);
  if (it == channels_.end() || it->second.kind.type != channel_type::presence) return;
  auto& pv = it->second.presence;
  if (!pv.ready) {
    // Bounded like the member list the subscribe brings: older ones are in that list anyway.
    if (pv.early.size() < 1024) pv.early.push_back(e);
    return;
  }
  apply(name, it->second, e, true);
}

void pusher_session::apply(const std::string& name, channel& ch, const member_event& e, bool tell) {
  auto& pv = ch.presence;
  if (e.joined) {
    if (pv.client_user.contains(e.client)) return;   // already counted (the list and the event both had it)
    pv.client_user.emplace(e.client, e.user);
    auto [u, added] = pv.users.try_emplace(e.user, 0, e.info);
    ++u->second.first;
    if (added && tell) {
      std::string data = "{\"user_id\":";
      append_json_string(data, e.user);
      data += ",\"user_info\":";
      data += e.info.empty() ? "null" : e.info;
      data += '}';
      send("pusher_internal:member_added", name, data);
    }
    return;
  }
  auto c = pv.client_user.find(e.client);
  if (c == pv.client_user.end()) return;
  auto u = pv.users.find(c->second);
  pv.client_user.erase(c);
  if (u == pv.users.end() || --u->second.first > 0) return;
  std::string user = u->first;
  pv.users.erase(u);
  if (!tell) return;
  std::string data = "{\"user_id\":";
  append_json_string(data, user);
  data += '}';
  send("pusher_internal:member_removed", name, data);
}

}  // namespace pushwire::protocol::pusher

// The synchronous HTTP handlers: /api/*, /demo/publish and /cmd. No networking header: they take a
// parsed request and return a reply; the HTTP session does the I/O.
#include <algorithm>
#include <boost/json.hpp>

#include "protocol/channel_name.hpp"
#include "protocol/frame_codec.hpp"
#include "protocol/json_scan.hpp"
#include "server/jwt.hpp"
#include "server/memory_engine.hpp"
#include "server/shell.hpp"

namespace pushwire::server {

namespace json = boost::json;
using protocol::code;

unsigned http_status(code c) {
  switch (c) {
    case code::ok: return 200;
    case code::going_away: case code::shutting_down: case code::too_many_connections: return 503;
    case code::message_too_big: case code::message_too_large: return 413;
    case code::bad_frame: case code::unknown_command: case code::bad_channel: case code::too_many_subscriptions:
    case code::not_subscribed: case code::already_subscribed: case code::bad_resume_token: case code::not_connected:
      return 400;
    case code::permission_denied: return 403;
    case code::unauthorized: case code::token_expired: return 401;
    case code::rate_limited: case code::too_many_requests_in_flight: return 429;
    case code::timeout: return 408;
    case code::internal_error: return 500;
    default: return 400;
  }
}

std::string error_json(code c, std::string_view reason) {
  std::string out = "{\"error\":{\"code\":";
  protocol::append_uint(out, static_cast<std::uint64_t>(c));
  out += ",\"reason\":";
  protocol::append_json_string(out, protocol::valid_utf8(reason) ? reason : std::string_view("invalid"));
  out += "}}";
  return out;
}

http_reply error_reply(code c, std::string_view reason) {
  http_reply r;
  r.status = http_status(c);
  r.body = error_json(c, reason);
  return r;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> parse_query(std::string_view q) {
  std::map<std::string, std::string> out;
  while (!q.empty()) {
    auto amp = q.find('&');
    auto kv = q.substr(0, amp);
    auto eq = kv.find('=');
    if (!kv.empty()) {
      if (eq == std::string_view::npos) out[percent_decode(kv)] = "";
      else out[percent_decode(kv.substr(0, eq))] = percent_decode(kv.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return out;
}

namespace {

protocol::session_policy make_policy(const config& c) {
  protocol::session_policy p;
  p.allow_anonymous = c.anonymous;
  p.allow_drop = c.demo;
  p.max_subscriptions = c.max_subscriptions;
  p.max_message_bytes = c.max_message_bytes;
  p.ping_ms = c.ping_interval_ms;
  p.handshake_timeout_ms = c.handshake_timeout_ms;
  p.max_batch = c.max_batch;
  p.max_token_bytes = c.max_token_bytes;
  p.namespaces.push_back(protocol::namespace_policy{});
  for (auto& [name, n] : c.namespaces) {
    protocol::namespace_policy np{name, n.client_publish, n.presence, n.anonymous_presence, n.private_channels};
    if (name.empty()) p.namespaces[0] = np;
    else p.namespaces.push_back(np);
  }
  return p;
}

std::uint64_t wall_seconds() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::system_clock::now().time_since_epoch()).count());
}

http_reply ok_json(std::string body) {
  http_reply r;
  r.body = std::move(body);
  return r;
}

std::string position_json(std::string_view channel, const protocol::position& p) {
  std::string out = "{\"channel\":";
  protocol::append_json_string(out, channel);
  out += ",\"epoch\":";
  protocol::append_json_string(out, p.epoch);
  out += ",\"offset\":";
  protocol::append_uint(out, p.offset);
  out += '}';
  return out;
}

// Validates a channel for the API (no permission checks: the key is all-powerful).
bool api_channel(shared_state& s, std::string_view ch, code& c, std::string& reason) {
  if (!protocol::valid_channel(ch)) { c = code::bad_channel; reason = "invalid channel name"; return false; }
  if (!s.policy.find(protocol::channel_namespace(ch))) { c = code::bad_channel; reason = "unknown namespace"; return false; }
  return true;
}

// One publish from an API body object; returns the result object text.
std::string publish_one(shared_state& s, const json::object& o, code& err, std::string& reason) {
  err = code::ok;
  auto* ch = o.if_contains("channel");
  auto* data = o.if_contains("data");
  if (!ch || !ch->is_string() || !data) { err = code::bad_frame; reason = "channel and data are required"; return {}; }
  std::string channel(ch->as_string());
  if (!api_channel(s, channel, err, reason)) return {};
  std::string payload = json::serialize(*data);
  if (payload.size() > s.cfg.max_message_bytes) {
    err = code::message_too_large;
    reason = "message is larger than " + std::to_string(s.cfg.max_message_bytes) + " bytes";
    return {};
  }
  std::string key;
  if (auto* k = o.if_contains("idempotency_key")) {
    if (!k->is_string()) { err = code::bad_frame; reason = "idempotency_key must be a string"; return {}; }
    key = std::string(k->as_string());
  }
  auto out = s.eng->publish(channel, payload, key, steady_ms(), steady_ns());
  if (out.error != code::ok) { err = out.error; reason = out.reason; return {}; }
  if (!out.duplicate) s.met.messages_published.fetch_add(1, std::memory_order_relaxed);
  return position_json(channel, out.pos);
}

bool parse_body(const http_in& in, json::object& out, http_reply& fail) {
  boost::system::error_code ec;
  auto v = json::parse(in.body, ec);
  if (ec || !v.is_object()) {
    fail = error_reply(code::bad_frame, "body must be a JSON object");
    return false;
  }
  out = std::move(v.as_object());
  return true;
}

bool key_matches(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ b[i]);
  return d == 0;
}

}  // namespace

shared_state::shared_state(config c) : cfg(std::move(c)), rng_(steady_ns() ^ 0x5bd1e995u) {
  auto ecfg = cfg.engine_cfg();
  ecfg.epoch_seed = steady_ns() ^ (static_cast<std::uint64_t>(wall_seconds()) << 20);
  eng = std::make_unique<memory_engine>(ecfg);
  eng->set_presence_listener([this](const message_ptr& m) { lease_presence_event(m); });
  policy = make_policy(cfg);
  if (!cfg.token_secret.empty()) {
    std::string secret = cfg.token_secret;
    verifier = [secret](std::string_view token, std::uint64_t) {
      auto r = verify_jwt(token, secret, static_cast<std::int64_t>(wall_seconds()));
      protocol::verified_token v;
      v.error = r.error;
      v.reason = r.reason;
      v.user = r.claims.user;
      v.channels = r.claims.channels;
      v.restricts_channels = r.claims.restricts_channels;
      return v;
    };
  }
}

std::uint64_t shared_state::jitter(std::uint64_t max) {
  if (max == 0) return 0;
  std::lock_guard lk(rng_mu_);
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  return rng_ % (max + 1);
}

void shared_state::register_conn(const std::string& client, unsigned worker, const std::string& user) {
  std::lock_guard lk(reg_mu);
  registry[client] = entry{worker, user};
}
void shared_state::unregister_conn(const std::string& client) {
  std::lock_guard lk(reg_mu);
  registry.erase(client);
}

bool shared_state::valid_client_id(std::string_view id) {
  if (id.size() < 2 || id.size() > 20 || id[0] != 'c') return false;
  for (char c : id.substr(1))
    if (c < '0' || c > '9') return false;
  return true;
}

namespace {
// Drops `id` from the channel -> lease index for `channels`. Call with lease_mu held.
void unwatch(std::unordered_map<std::string, std::vector<std::string>>& index, const std::string& id,
             const std::vector<std::string>& channels) {
  for (auto& ch : channels) {
    auto it = index.find(ch);
    if (it == index.end()) continue;
    std::erase(it->second, id);
    if (it->second.empty()) index.erase(it);
  }
}
}  // namespace

shared_state::lease_status shared_state::acquire_lease(std::string& id, const std::string& user, bool open,
                                                       std::uint64_t now, disconnect_target& advice) {
  std::vector<std::string> leave;
  std::string old_id;
  lease_status st = lease_status::created;
  {
    std::lock_guard lk(lease_mu);
    auto it = id.empty() ? leases.end() : leases.find(id);
    if (it != leases.end() && (it->second.user != user || it->second.expires_ms <= now)) {
      // Another user's id is not taken over (and not disturbed); an expired one is gone.
      if (it->second.expires_ms <= now) {
        leave = std::move(it->second.presence);
        old_id = it->first;
        unwatch(lease_watchers, it->first, it->second.watched);
        leases.erase(it);
      }
      it = leases.end();
    }
    if (it != leases.end() && it->second.marked) {
      advice = *it->second.marked;
      leave = std::move(it->second.presence);
      old_id = it->first;
      unwatch(lease_watchers, it->first, it->second.watched);
      leases.erase(it);
      st = lease_status::disconnect;
    } else if (it != leases.end() && !open) {
      it->second.expires_ms = now + cfg.effective_lease_ms();
      st = lease_status::renewed;
    } else {
      if (it != leases.end()) {   // open=1 with a live lease: the client starts over
        leave = std::move(it->second.presence);
        old_id = it->first;
        unwatch(lease_watchers, it->first, it->second.watched);
        leases.erase(it);
      }
      if (leases.size() >= cfg.max_poll_leases) {
        st = lease_status::full;
      } else {
        id = new_client_id();
        auto& l = leases[id];
        l.user = user;
        l.expires_ms = now + cfg.effective_lease_ms();
        st = lease_status::created;
      }
    }
    met.connections_polling.store(leases.size(), std::memory_order_relaxed);
  }
  for (auto& ch : leave) eng->presence_leave(ch, old_id);
  return st;
}

void shared_state::lease_presence(const std::string& id, std::vector<std::string> channels) {
  std::vector<std::string> leave;
  {
    std::lock_guard lk(lease_mu);
    auto it = leases.find(id);
    if (it == leases.end()) {
      leave = std::move(channels);   // removed meanwhile (disconnect): do not leave a ghost member
    } else {
      for (auto& ch : it->second.presence)
        if (std::find(channels.begin(), channels.end(), ch) == channels.end()) leave.push_back(ch);
      it->second.presence = std::move(channels);
    }
  }
  for (auto& ch : leave) eng->presence_leave(ch, id);
}

void shared_state::remove_lease(const std::string& id) {
  std::vector<std::string> leave;
  {
    std::lock_guard lk(lease_mu);
    auto it = leases.find(id);
    if (it == leases.end()) return;
    leave = std::move(it->second.presence);
    unwatch(lease_watchers, it->first, it->second.watched);
    leases.erase(it);
    met.connections_polling.store(leases.size(), std::memory_order_relaxed);
  }
  for (auto& ch : leave) eng->presence_leave(ch, id);
}

std::size_t shared_state::mark_leases(const disconnect_target& t) {
  std::lock_guard lk(lease_mu);
  std::size_t n = 0;
  for (auto& [id, l] : leases) {
    if (t.all || (!t.client.empty() && id == t.client) || (!t.user.empty() && l.user == t.user)) {
      l.marked = t;
      ++n;
    }
  }
  return n;
}

void shared_state::sweep_leases(std::uint64_t now) {
  std::vector<std::pair<std::string, std::vector<std::string>>> gone;
  {
    std::lock_guard lk(lease_mu);
    for (auto it = leases.begin(); it != leases.end();) {
      if (it->second.expires_ms <= now) {
        gone.emplace_back(it->first, std::move(it->second.presence));
        unwatch(lease_watchers, it->first, it->second.watched);
        it = leases.erase(it);
      } else {
        ++it;
      }
    }
    met.connections_polling.store(leases.size(), std::memory_order_relaxed);
  }
  for (auto& [id, chans] : gone)
    for (auto& ch : chans) eng->presence_leave(ch, id);
}

void shared_state::lease_watch(const std::string& id, std::vector<std::string> channels) {
  std::lock_guard lk(lease_mu);
  auto it = leases.find(id);
  if (it == leases.end()) return;
  auto& l = it->second;
  unwatch(lease_watchers, id, l.watched);
  std::sort(channels.begin(), channels.end());
  channels.erase(std::unique(channels.begin(), channels.end()), channels.end());
  for (auto& ch : channels) lease_watchers[ch].push_back(id);
  std::erase_if(l.queued, [&](const message_ptr& m) {
    return !std::binary_search(channels.begin(), channels.end(), m->channel);
  });
  l.watched = std::move(channels);
}

std::vector<message_ptr> shared_state::lease_park(const std::string& id, std::uint64_t serial,
                                                  std::function<void()> wake) {
  std::lock_guard lk(lease_mu);
  auto it = leases.find(id);
  if (it == leases.end()) return {};
  auto& l = it->second;
  if (!l.queued.empty()) {
    std::vector<message_ptr> out(std::make_move_iterator(l.queued.begin()), std::make_move_iterator(l.queued.end()));
    l.queued.clear();
    return out;
  }
  l.parked = serial;
  l.wake = std::move(wake);
  return {};
}

std::vector<message_ptr> shared_state::lease_unpark(const std::string& id, std::uint64_t serial) {
  std::function<void()> old;   // destroyed outside the lock
  std::lock_guard lk(lease_mu);
  auto it = leases.find(id);
  if (it == leases.end()) return {};
  auto& l = it->second;
  if (l.parked == serial) {
    l.parked = 0;
    old = std::move(l.wake);
    l.wake = nullptr;
  }
  std::vector<message_ptr> out(std::make_move_iterator(l.queued.begin()), std::make_move_iterator(l.queued.end()));
  l.queued.clear();
  return out;
}

void shared_state::lease_presence_event(const message_ptr& m) {
  std::lock_guard lk(lease_mu);
  auto w = lease_watchers.find(m->channel);
  if (w == lease_watchers.end()) return;
  for (auto& id : w->second) {
    // Its own join/leave is no news to a lease (and must not answer its parked poll).
    if (m->frame.ends_with(",\"client\":\"" + id + "\"}}\n")) continue;
    auto it = leases.find(id);
    if (it == leases.end()) continue;
    auto& l = it->second;
    if (l.queued.size() >= max_queued_presence) l.queued.pop_front();   // presence is state: presence() refreshes it
    l.queued.push_back(m);
    if (l.wake) {
      l.wake();   // only posts to the poll's thread
      l.wake = nullptr;
      l.parked = 0;
    }
  }
}

bool shared_state::acquire_ip_slot(const std::string& ip, std::shared_ptr<void>& slot) {
  if (cfg.max_connections_per_ip == 0) return true;
  struct releaser {
    releaser(shared_state& st, std::string a) : s(st), ip(std::move(a)) {}
    releaser(const releaser&) = delete;
    releaser& operator=(const releaser&) = delete;
    shared_state& s;
    std::string ip;
    ~releaser() {
      std::lock_guard lk(s.ip_mu);
      auto it = s.ip_conns.find(ip);
      if (it != s.ip_conns.end() && --it->second == 0) s.ip_conns.erase(it);
    }
  };
  {
    std::lock_guard lk(ip_mu);
    auto& n = ip_conns[ip];
    if (n >= cfg.max_connections_per_ip) return false;
    ++n;
  }
  slot = std::make_shared<releaser>(*this, ip);
  return true;
}

std::size_t shared_state::ip_connections(const std::string& ip) {
  std::lock_guard lk(ip_mu);
  auto it = ip_conns.find(ip);
  return it == ip_conns.end() ? 0 : it->second;
}

std::size_t shared_state::lease_count() {
  std::lock_guard lk(lease_mu);
  return leases.size();
}

http_reply handle_api(shared_state& s, const http_in& in) {
  s.met.api_requests.fetch_add(1, std::memory_order_relaxed);
  auto fail = [&](code c, std::string_view reason) {
    s.met.api_errors.fetch_add(1, std::memory_order_relaxed);
    return error_reply(c, reason);
  };
  if (in.authorization.empty() || !key_matches(in.authorization, s.api_key))
    return fail(code::unauthorized, "a valid API key is required (Authorization: Bearer <key>)");
  const std::string& p = in.path;
  if (p == "/api/publish" || p == "/api/publish_batch" || p == "/api/disconnect") {
    if (in.method != "POST") return fail(code::bad_frame, "use POST");
    json::object body;
    http_reply bad;
    if (!parse_body(in, body, bad)) { s.met.api_errors++; return bad; }
    if (p == "/api/publish") {
      code c;
      std::string reason;
      auto out = publish_one(s, body, c, reason);
      if (c != code::ok) return fail(c, reason);
      return ok_json(out);
    }
    if (p == "/api/publish_batch") {
      auto* msgs = body.if_contains("messages");
      if (!msgs || !msgs->is_array()) return fail(code::bad_frame, "messages must be an array");
      if (msgs->as_array().size() > s.cfg.max_batch)
        return fail(code::bad_frame, "at most " + std::to_string(s.cfg.max_batch) + " messages per batch");
      std::string out = "{\"results\":[";
      bool first = true;
      for (auto& m : msgs->as_array()) {
        if (!first) out += ',';
        first = false;
        code c = code::bad_frame;
        std::string reason = "each message must be an object";
        std::string one;
        if (auto* o = m.if_object()) one = publish_one(s, *o, c, reason);
        out += c == code::ok ? one : error_json(c, reason);
      }
      out += "]}";
      return ok_json(out);
    }
    disconnect_target t;
    if (auto* c = body.if_contains("client"); c && c->is_string()) t.client = std::string(c->as_string());
    else if (auto* u = body.if_contains("user"); u && u->is_string()) t.user = std::string(u->as_string());
    else t.all = true;
    if (auto* r = body.if_contains("reconnect"); r && r->is_bool()) t.reconnect = r->as_bool();
    auto num = [&](const char* k, std::uint64_t& out) {
      if (auto* v = body.if_contains(k)) {
        if (auto* i = v->if_int64(); i && *i >= 0) out = static_cast<std::uint64_t>(*i);
        else if (auto* u = v->if_uint64()) out = *u;
      }
    };
    num("after_ms", t.after_ms);
    t.jitter_ms = 2000;
    num("jitter_ms", t.jitter_ms);
    std::size_t n = s.disconnect ? s.disconnect(t) : 0;
    return ok_json("{\"disconnected\":" + std::to_string(n) + "}");
  }
  if (in.method != "GET") return fail(code::bad_frame, "use GET");
  auto q = [&](const char* k) -> std::string {
    auto it = in.query.find(k);
    return it == in.query.end() ? std::string{} : it->second;
  };
  if (p == "/api/history" || p == "/api/presence") {
    std::string ch = q("channel");
    code c;
    std::string reason;
    if (!api_channel(s, ch, c, reason)) return fail(c, reason);
    if (p == "/api/presence") {
      std::string out = "{\"channel\":";
      protocol::append_json_string(out, ch);
      out += ",\"members\":" + members_json(s.eng->presence(ch)) + "}";
      return ok_json(out);
    }
    std::optional<protocol::position> since;
    if (auto t = q("since"); !t.empty()) {
      auto tok = protocol::decode_resume_token(t);
      if (!tok || tok->size() != 1) return fail(code::bad_resume_token, "since must be one position");
      since = (*tok)[0];
    }
    std::uint64_t limit = 0;
    if (auto l = q("limit"); !l.empty()) {
      auto v = protocol::parse_uint(l);
      if (!v) return fail(code::bad_frame, "limit must be an integer");
      limit = *v;
    }
    auto out = s.eng->history(ch, since, limit, steady_ms());
    if (out.error != code::ok) return fail(out.error, out.reason);
    std::string body = position_json(ch, out.pos);
    body.pop_back();
    body += ",\"publications\":" + publications_json(out.publications) + "}";
    return ok_json(body);
  }
  if (p == "/api/channels") {
    std::string out = "{\"channels\":[";
    bool first = true;
    for (auto& c : s.eng->channels()) {
      if (!first) out += ',';
      first = false;
      std::string one = position_json(c.channel, c.pos);
      one.pop_back();
      out += one + ",\"subscribers\":" + std::to_string(c.subscribers) + "}";
    }
    out += "]}";
    return ok_json(out);
  }
  if (p == "/api/stats") {
    auto st = s.eng->stats();
    s.met.channels.store(st.channels, std::memory_order_relaxed);
    return ok_json(s.met.render_json());
  }
  return fail(code::unknown_command, "no such API endpoint");
}

http_reply handle_demo_publish(shared_state& s, const http_in& in) {
  if (in.method != "POST") return error_reply(code::bad_frame, "use POST");
  {
    std::lock_guard lk(s.demo_mu);
    std::uint64_t now_s = steady_ms() / 1000;
    auto& w = s.demo_windows[in.remote];
    if (w.first != now_s) w = {now_s, 0};
    if (++w.second > s.cfg.demo_rate_per_s) return error_reply(code::rate_limited, "demo publish rate limit");
    if (s.demo_windows.size() > 10000) s.demo_windows.clear();
  }
  json::object body;
  http_reply bad;
  if (!parse_body(in, body, bad)) return bad;
  auto* ch = body.if_contains("channel");
  if (!ch || !ch->is_string() || protocol::channel_namespace(std::string(ch->as_string())) != "demo" ||
      !protocol::valid_channel(std::string(ch->as_string())))
    return error_reply(code::permission_denied, "/demo/publish only publishes into the demo namespace");
  code c;
  std::string reason;
  auto out = publish_one(s, body, c, reason);
  if (c != code::ok) return error_reply(c, reason);
  return ok_json(out);
}

http_reply handle_cmd(shared_state& s, const http_in& in, local_hub& hub, unsigned worker) {
  if (in.method != "POST") return error_reply(code::bad_frame, "use POST");
  std::uint64_t now = steady_ms();
  collect_shell sh(s, hub, worker, s.new_client_id(), now, s.policy);
  // A connect without a token takes the Authorization header's.
  std::string body = in.body;
  if (!in.authorization.empty()) {
    protocol::command first;
    protocol::decode_error err;
    std::string_view line(body);
    line = line.substr(0, line.find('\n'));
    if (protocol::decode_command(line, first, err) && first.kind == protocol::command_kind::connect &&
        first.token.empty()) {
      first.token = in.authorization;
      sh.session().handle_command(first, now);
      body.erase(0, std::min(body.size(), line.size() + 1));
    }
  }
  sh.session().handle_text(body, now);
  sh.drain(now);
  sh.release();
  http_reply r;
  r.content_type = "application/x-ndjson";
  for (auto& f : sh.frames) r.body += f->frame;
  if (sh.closed && sh.session().user().empty() && sh.frames.size() == 1) r.status = http_status(*sh.closed);
  return r;
}

}  // namespace pushwire::server

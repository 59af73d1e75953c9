#include "server/ops/config.hpp"

#include "server/redis/redis_reply.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>

namespace pushwire::server {
namespace {

struct option {
  std::string name;   // flag name without "--", with '-' separators
  std::string help;
  bool is_bool;
  std::function<bool(config&, std::string_view)> set;
  std::function<std::string(const config&)> get;
};

bool parse_u64(std::string_view s, std::uint64_t& out) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc{} && r.ptr == s.data() + s.size() && !s.empty();
}
bool parse_bool(std::string_view s, bool& out) {
  if (s == "1" || s == "true" || s == "yes" || s == "on" || s.empty()) { out = true; return true; }
  if (s == "0" || s == "false" || s == "no" || s == "off") { out = false; return true; }
  return false;
}
std::vector<std::string> split_list(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    auto c = s.find(',');
    auto item = s.substr(0, c);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
    if (c == std::string_view::npos) break;
    s.remove_prefix(c + 1);
  }
  return out;
}
std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (auto& s : v) { if (!out.empty()) out += ','; out += s; }
  return out;
}

template <class T>
option num(std::string name, T config::*field, std::string help) {
  return option{std::move(name), std::move(help), false,
                [field](config& c, std::string_view v) {
                  // Every number fits its field (no wrap on the way in) and the protocol's integer
                  // range, 0 ... 2^53 - 1: durations such as the ping interval go out in frames.
                  constexpr std::uint64_t max_number = (std::uint64_t{1} << 53) - 1;
                  std::uint64_t x;
                  if (!parse_u64(v, x) || x > max_number) return false;
                  if (x > static_cast<std::uint64_t>(std::numeric_limits<T>::max())) return false;
                  c.*field = static_cast<T>(x);
                  return true;
                },
                [field](const config& c) { return std::to_string(c.*field); }};
}
option str(std::string name, std::string config::*field, std::string help) {
  return option{std::move(name), std::move(help), false,
                [field](config& c, std::string_view v) { c.*field = std::string(v); return true; },
                [field](const config& c) { return c.*field; }};
}
option flag(std::string name, bool config::*field, std::string help) {
  return option{std::move(name), std::move(help), true,
                [field](config& c, std::string_view v) { return parse_bool(v, c.*field); },
                [field](const config& c) { return std::string(c.*field ? "true" : "false"); }};
}

const std::vector<option>& options() {
  static const std::vector<option> opts = [] {
    std::vector<option> o;
    o.push_back(str("config", &config::config_file, "JSON config file (flags > env > file > defaults)"));
    o.push_back(num("port", &config::port, "TCP port; 0 = any free port"));
    o.push_back(str("address", &config::address, "listen address; 0.0.0.0 to expose it"));
    o.push_back(option{"transports", "enabled transports: websocket,sse,polling", false,
                       [](config& c, std::string_view v) {
                         c.websocket = c.sse = c.polling = false;
                         for (auto& t : split_list(v)) {
                           if (t == "websocket" || t == "ws") c.websocket = true;
                           else if (t == "sse") c.sse = true;
                           else if (t == "polling" || t == "poll") c.polling = true;
                           else return false;
                         }
                         return true;
                       },
                       [](const config& c) {
                         std::vector<std::string> v;
                         if (c.websocket) v.push_back("websocket");
                         if (c.sse) v.push_back("sse");
                         if (c.polling) v.push_back("polling");
                         return join(v);
                       }});
    o.push_back(flag("demo", &config::demo, "demo mode: `demo` namespace, /demo/publish, drop, localhost CORS"));
    o.push_back(str("log-level", &config::log_level, "debug, info, warn, error, off"));
    o.push_back(str("api-key", &config::api_key,
                    "key for /api/* (Authorization: Bearer); wins over --key-file's; neither = a random key for "
                    "this run, printed once on stdout (never logged); reloaded on SIGHUP"));
    o.push_back(str("token-secret", &config::token_secret,
                    "HS256 secret for connection tokens; wins over --key-file's; neither = tokens refused; "
                    "reloaded on SIGHUP"));
    o.push_back(str("key-file", &config::key_file,
                    "JSON file {\"api_key\":..,\"token_secret\":..}; created once (mode 0600, random keys) when "
                    "missing; re-read on SIGHUP"));
    o.push_back(option{"no-anonymous", "refuse connections without a token", true,
                       [](config& c, std::string_view v) { bool b; if (!parse_bool(v, b)) return false; c.anonymous = !b; return true; },
                       [](const config& c) { return std::string(c.anonymous ? "false" : "true"); }});
    o.push_back(flag("anonymous", &config::anonymous, "allow connections without a token"));
    o.push_back(str("web-root", &config::web_root, "directory served at /"));
    o.push_back(str("client-root", &config::client_root, "client package root; /pushwire/<f> from dist/ or src/"));
    o.push_back(str("port-file", &config::port_file, "write the bound port to this file"));
    o.push_back(str("tls-cert", &config::tls_cert,
                    "PEM certificate chain (leaf first): HTTPS and WSS on --port; reloaded on SIGHUP"));
    o.push_back(str("tls-key", &config::tls_key, "PEM private key of --tls-cert; reloaded on SIGHUP"));
    o.push_back(num("threads", &config::threads, "I/O threads; 0 = one per core"));
    o.push_back(option{"allowed-origins", "origins allowed for CORS and WS/SSE (comma list, * = any)", false,
                       [](config& c, std::string_view v) { c.allowed_origins = split_list(v); return true; },
                       [](const config& c) { return join(c.allowed_origins); }});
    o.push_back(num("max-connections", &config::max_connections, "0 = RLIMIT_NOFILE minus 64 (descriptors for files, logs, the spare)"));
    o.push_back(option{"trusted-proxy",
                       "CIDR list (IPv4/IPv6, at most 64) of reverse proxies whose X-Forwarded-For names the client "
                       "for per-IP limits and logs (the right-most untrusted entry); from others it is ignored",
                       false,
                       [](config& c, std::string_view v) {
                         std::string why;
                         if (!parse_cidr_list(v, c.trusted_proxies, why)) return false;
                         c.trusted_proxy_text = std::string(v);
                         return true;
                       },
                       [](const config& c) { return c.trusted_proxy_text; }});
    o.push_back(option{"admin-port",
                       "serve /metrics and /api/* on this port (plain HTTP; 0 = any free port) instead of --port, "
                       "which then answers them 404; off = one listener",
                       false,
                       [](config& c, std::string_view v) {
                         if (v == "off") { c.admin_port = -1; return true; }
                         std::uint64_t x;
                         if (!parse_u64(v, x) || x > 65535) return false;
                         c.admin_port = static_cast<int>(x);
                         return true;
                       },
                       [](const config& c) { return c.admin_port < 0 ? std::string("off") : std::to_string(c.admin_port); }});
    o.push_back(str("admin-address", &config::admin_address, "address of --admin-port (operators only)"));
    o.push_back(num("max-connections-per-ip", &config::max_connections_per_ip,
                    "WebSocket, SSE and parked long-polls per remote address (503, 4015 over it); 0 = off: "
                    "clients behind one proxy or NAT share an address"));
    o.push_back(num("max-message-bytes", &config::max_message_bytes, "payload of one message; N passes, N+1 refused"));
    o.push_back(num("max-subscriptions", &config::max_subscriptions, "subscriptions per connection"));
    o.push_back(num("queue-bytes", &config::queue_bytes, "send queue bound per connection; over it: 4008 slow consumer"));
    o.push_back(num("socket-send-buffer-bytes", &config::socket_send_buffer_bytes,
                    "SO_SNDBUF per connection (kernel doubles it); 0 = kernel autotuning"));
    o.push_back(num("slow-consumer-grace-ms", &config::slow_consumer_grace_ms,
                    "a slow consumer's stuck write may finish this long, to send it 4008; then the socket is cut"));
    o.push_back(flag("io-uring", &config::io_uring,
                     "send a flush pass's writes as one io_uring batch (Linux; cheaper per delivery at fixed rates); "
                     "off: one sendmsg per connection"));
    o.push_back(num("write-coalesce-us", &config::write_coalesce_us,
                    "under load, the longest a fan-out write waits so frames share it (0-1000000); 0 = at once"));
    o.push_back(num("write-coalesce-factor", &config::write_coalesce_factor,
                    "under load, the pause before the next pass of writes is this many times the last pass's length, "
                    "up to --write-coalesce-us (0-64); 0 = a fixed --write-coalesce-us"));
    o.push_back(num("header-limit", &config::header_limit, "HTTP header bytes (431 over it)"));
    o.push_back(num("body-limit", &config::body_limit, "HTTP body bytes (413 over it)"));
    o.push_back(num("handshake-timeout-ms", &config::handshake_timeout_ms, "WebSocket open -> connect command"));
    o.push_back(num("request-timeout-ms", &config::request_timeout_ms, "time to receive one complete HTTP request"));
    o.push_back(num("idle-timeout-ms", &config::idle_timeout_ms, "keep-alive HTTP connection without a request"));
    o.push_back(num("ping-interval-ms", &config::ping_interval_ms, "heartbeat frames on WebSocket and SSE"));
    o.push_back(num("dead-peer-timeout-ms", &config::dead_peer_timeout_ms, "WebSocket silent this long is closed; 0 = 2 x ping"));
    o.push_back(num("poll-hold-ms", &config::poll_hold_ms, "long-poll hold time"));
    o.push_back(num("max-parked-polls", &config::max_parked_polls, "parked long-polls in total"));
    o.push_back(num("max-poll-leases", &config::max_poll_leases, "live long-poll clients (leases) in total"));
    o.push_back(num("max-batch", &config::max_batch, "commands per batch, messages per publish_batch"));
    o.push_back(num("subscribe-churn-burst", &config::subscribe_churn_burst,
                    "subscribes + unsubscribes a connection may send at once (then the rate applies; 4011 over it)"));
    o.push_back(num("subscribe-churn-per-s", &config::subscribe_churn_per_s,
                    "subscribes + unsubscribes per second per connection after the burst; 0 = no limit"));
    o.push_back(num("max-token-bytes", &config::max_token_bytes, "connection token length"));
    o.push_back(num("token-refresh-warning-ms", &config::token_refresh_warning_ms,
                    "an open connection is warned (error 4005) this long before its token expires, cut at expiry"));
    o.push_back(num("max-stream-channels", &config::max_stream_channels, "channels per SSE stream or long-poll"));
    o.push_back(num("max-channels", &config::max_channels, "channels in total"));
    o.push_back(num("history-size", &config::history_size, "history per channel (default namespace)"));
    o.push_back(num("history-ttl-ms", &config::history_ttl_ms, "history age (default namespace)"));
    o.push_back(num("history-total-bytes", &config::history_total_bytes, "history of all channels together"));
    o.push_back(num("max-presence-members", &config::max_presence_members, "presence members per channel"));
    o.push_back(num("channel-idle-ms", &config::channel_idle_ms,
                    "forget a channel unused this long (new epoch); 0 = its history TTL"));
    o.push_back(num("idempotency-keys", &config::idempotency_keys, "remembered API idempotency keys"));
    o.push_back(num("idempotency-ttl-ms", &config::idempotency_ttl_ms, "how long an idempotency key is remembered"));
    o.push_back(num("max-idempotency-key-bytes", &config::max_idempotency_key_bytes,
                    "length of an API publish's idempotency_key; longer is refused with 400"));
    o.push_back(num("presence-lease-ms", &config::presence_lease_ms, "presence lease of one-way clients; 0 = poll hold + 10 s"));
    o.push_back(num("sse-retry-ms", &config::sse_retry_ms, "SSE retry: field, jittered 50-150 %"));
    o.push_back(num("sse-padding-bytes", &config::sse_padding_bytes,
                    "a `:` comment of this size after each SSE stream's first events, for proxies that hold a "
                    "response's start; 0 = none, at most 65536 (docs/protocol.md, Buffering proxies)"));
    o.push_back(num("reconnect-jitter-ms", &config::reconnect_jitter_ms, "spread of `after` in server disconnects"));
    o.push_back(num("shutdown-timeout-ms", &config::shutdown_timeout_ms, "drain deadline on SIGTERM/SIGINT"));
    o.push_back(num("readiness-drain-ms", &config::readiness_drain_ms,
                    "after SIGTERM keep listening at least this long with /readyz 503 (capped by "
                    "--shutdown-timeout-ms), for a balancer's health check; 0 = stop once connections are gone"));
    o.push_back(num("housekeeping-ms", &config::housekeeping_ms, "timer tick for deadlines, pings and sweeps"));
    o.push_back(num("demo-rate-per-s", &config::demo_rate_per_s, "/demo/publish requests per second per address"));
    o.push_back(str("data-dir", &config::data_dir,
                    "keep channel epochs, offsets and history in this folder (SQLite); empty = in memory only"));
    o.push_back(option{"durability",
                       "with --data-dir: fsync (every commit fsynced before the publish is acknowledged), interval "
                       "(fsync every --fsync-interval-ms), os (the OS writes back)",
                       false, [](config& c, std::string_view v) { return parse_durability(v, c.durable); },
                       [](const config& c) { return std::string(durability_name(c.durable)); }});
    o.push_back(num("fsync-interval-ms", &config::fsync_interval_ms,
                    "--durability interval: fsync this often (bounds what a machine crash loses)"));
    o.push_back(option{"engine", "memory (one node, the default) or redis (several nodes through --redis)", false,
                       [](config& c, std::string_view v) {
                         if (v != "memory" && v != "redis") return false;
                         c.engine = std::string(v);
                         return true;
                       },
                       [](const config& c) { return c.engine; }});
    o.push_back(option{"redis", "--engine redis: redis://[:password@]host:port/db or unix:/path (comma list = shards)",
                       false,
                       [](config& c, std::string_view v) {
                         c.redis = split_list(v);
                         redis_endpoint ep;
                         std::string why;
                         for (auto& u : c.redis)
                           if (!parse_redis_url(u, ep, why)) return false;
                         return !c.redis.empty();
                       },
                       [](const config& c) { return join(c.redis); }});
    o.push_back(str("node-id", &config::node_id, "this node's id in /api/info; empty = random"));
    o.push_back(num("node-heartbeat-ms", &config::node_heartbeat_ms,
                    "--engine redis: node registry heartbeat; a node is gone 3 heartbeats after it stops"));
    o.push_back(num("redis-pool-size", &config::redis_pool_size, "command connections per Redis shard"));
    o.push_back(num("redis-timeout-ms", &config::redis_timeout_ms,
                    "Redis connect and command timeout; past it the connection is lost and retried"));
    o.push_back(num("redis-reconnect-min-ms", &config::redis_reconnect_min_ms,
                    "first Redis reconnect delay; later ones double up to 2 s, each with full jitter"));
    o.push_back(num("redis-max-in-flight", &config::redis_max_in_flight,
                    "commands queued per Redis connection; more fail at once (503)"));
    o.push_back(option{"pusher-app",
                       "Pusher-protocol apps id:key:secret[,...] (docs/pusher.md; the config file's pusher_apps has "
                       "every option)",
                       false,
                       [](config& c, std::string_view v) {
                         c.pusher_apps.clear();
                         return parse_pusher_app_flag(v, c.pusher_apps);
                       },
                       [](const config& c) {
                         std::string out;
                         for (auto& a : c.pusher_apps) { if (!out.empty()) out += ','; out += a.id; out += ":"; out += a.key; out += ":***"; }
                         return out;
                       }});
    o.push_back(num("pusher-activity-timeout-s", &config::pusher_activity_timeout_s,
                    "Pusher endpoint: the activity_timeout pusher-js is told (pings after that much silence)"));
    o.push_back(num("pusher-webhook-batch-ms", &config::pusher_webhook_batch_ms,
                    "Pusher webhooks: events within this window share one request (0-10000)"));
    o.push_back(num("pusher-webhook-max-batch", &config::pusher_webhook_max_batch,
                    "Pusher webhooks: events per request at most (1-1000)"));
    o.push_back(num("pusher-webhook-queue", &config::pusher_webhook_queue,
                    "Pusher webhooks: events waiting at most, all webhooks together; more are dropped (1-1000000)"));
    o.push_back(num("pusher-webhook-attempts", &config::pusher_webhook_attempts,
                    "Pusher webhooks: tries per request before its events are dropped (1-20)"));
    o.push_back(num("pusher-webhook-backoff-ms", &config::pusher_webhook_backoff_ms,
                    "Pusher webhooks: first retry delay, doubling up to 30 s (1-60000)"));
    o.push_back(num("pusher-webhook-timeout-ms", &config::pusher_webhook_timeout_ms,
                    "Pusher webhooks: one attempt's connect, send and response head (1-60000)"));
    return o;
  }();
  return opts;
}

const option* find_option(std::string_view name) {
  std::string n(name);
  for (auto& ch : n) if (ch == '_') ch = '-';
  for (auto& o : options())
    if (o.name == n) return &o;
  return nullptr;
}

bool read_namespaces(const boost::json::object& obj, config& c, std::string& err) {
  for (auto& [k, v] : obj) {
    auto* o = v.if_object();
    if (!o) { err = "namespace " + std::string(k) + " must be an object"; return false; }
    namespace_config n;
    for (auto& member : *o) {
      // Not a structured binding: clang 14 (the fuzz build) cannot capture one in the lambdas below.
      std::string_view fk = member.key();
      const boost::json::value& fv = member.value();
      auto u = [&](auto& field) {
        if (auto* i = fv.if_int64(); i && *i >= 0) { field = static_cast<std::remove_reference_t<decltype(field)>>(*i); return true; }
        if (auto* i = fv.if_uint64()) { field = static_cast<std::remove_reference_t<decltype(field)>>(*i); return true; }
        return false;
      };
      auto b = [&](bool& field) { if (auto* x = fv.if_bool()) { field = *x; return true; } return false; };
      bool ok = fk == "history_size" ? u(n.history_size)
              : fk == "history_ttl_ms" ? u(n.history_ttl_ms)
              : fk == "presence" ? b(n.presence)
              : fk == "client_publish" ? b(n.client_publish)
              : fk == "anonymous_presence" ? b(n.anonymous_presence)
              : fk == "private" ? b(n.private_channels)
              : false;
      if (!ok) { err = "namespace " + std::string(k) + ": bad field " + std::string(fk); return false; }
    }
    c.namespaces[std::string(k)] = n;
  }
  return true;
}

bool read_file(const std::string& path, config& c, std::string& err) {
  std::ifstream in(path);
  if (!in) { err = "cannot read config file " + path; return false; }
  std::stringstream ss;
  ss << in.rdbuf();
  boost::system::error_code ec;
  auto v = boost::json::parse(ss.str(), ec);
  if (ec || !v.is_object()) { err = "config file " + path + " is not a JSON object"; return false; }
  for (auto& [k, val] : v.as_object()) {
    if (k == "pusher_apps") {
      if (!read_pusher_apps(val, c.pusher_apps, err)) return false;
      continue;
    }
    if (k == "namespaces") {
      auto* o = val.if_object();
      if (!o) { err = "namespaces must be an object"; return false; }
      if (!read_namespaces(*o, c, err)) return false;
      continue;
    }
    auto* opt = find_option(k);
    if (!opt || opt->name == "config") { err = "unknown config key " + std::string(k); return false; }
    std::string text;
    if (auto* s = val.if_string()) text = std::string(*s);
    else if (auto* b = val.if_bool()) text = *b ? "true" : "false";
    else if (auto* i = val.if_int64()) text = std::to_string(*i);
    else if (auto* u = val.if_uint64()) text = std::to_string(*u);
    else if (auto* a = val.if_array()) {
      for (auto& e : *a) if (auto* s = e.if_string()) { if (!text.empty()) text += ','; text += std::string(*s); }
    } else { err = "bad value for " + std::string(k); return false; }
    if (!opt->set(c, text)) { err = "bad value for " + std::string(k); return false; }
  }
  return true;
}

std::string env_name(const std::string& flag) {
  std::string out = "PUSHWIRE_";
  for (char ch : flag) out += ch == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return out;
}

}  // namespace

memory_history_config config::history_cfg() const {
  memory_history_config h;
  h.max_channels = max_channels;
  h.total_bytes = history_total_bytes;
  h.channel_idle_ms = channel_idle_ms;
  h.keys = idempotency_limits{idempotency_keys, idempotency_ttl_ms};
  h.namespaces[""] = history_policy{history_size, history_ttl_ms};
  for (auto& [name, n] : namespaces) h.namespaces[name] = history_policy{n.history_size, n.history_ttl_ms};
  return h;
}

config_result parse_config(int argc, const char* const* argv, const std::map<std::string, std::string>& env) {
  config_result r;
  // Flags first into a list, so the file named by --config (or the env) is read before they apply.
  std::vector<std::pair<const option*, std::string>> flags;
  std::string file;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") { r.help = true; return r; }
    if (a == "--version") { r.version = true; return r; }
    if (!a.starts_with("--")) { r.ok = false; r.error = "unexpected argument " + std::string(a); return r; }
    a.remove_prefix(2);
    std::string value;
    bool has_value = false;
    if (auto eq = a.find('='); eq != std::string_view::npos) { value = std::string(a.substr(eq + 1)); a = a.substr(0, eq); has_value = true; }
    auto* opt = find_option(a);
    if (!opt) { r.ok = false; r.error = "unknown flag --" + std::string(a); return r; }
    if (!has_value && !opt->is_bool) {
      if (i + 1 >= argc) { r.ok = false; r.error = "--" + opt->name + " needs a value"; return r; }
      value = argv[++i];
    }
    if (opt->name == "config") file = value;
    flags.emplace_back(opt, value);
  }
  if (file.empty())
    if (auto it = env.find("PUSHWIRE_CONFIG"); it != env.end()) file = it->second;
  if (!file.empty() && !read_file(file, r.cfg, r.error)) { r.ok = false; return r; }
  r.cfg.config_file = file;
  for (auto& o : options()) {
    if (o.name == "config") continue;
    if (auto it = env.find(env_name(o.name)); it != env.end() && !o.set(r.cfg, it->second)) {
      r.ok = false; r.error = "bad value in " + env_name(o.name); return r;
    }
  }
  for (auto& [opt, v] : flags)
    if (!opt->set(r.cfg, v)) { r.ok = false; r.error = "bad value for --" + opt->name; return r; }
  if (r.cfg.port < 0 || r.cfg.port > 65535) { r.ok = false; r.error = "bad port"; return r; }
  if (r.cfg.engine == "redis" && r.cfg.redis.empty()) { r.ok = false; r.error = "--engine redis needs --redis URL"; return r; }
  if (r.cfg.engine == "redis" && !r.cfg.data_dir.empty()) {
    r.ok = false; r.error = "--data-dir is for the memory engine; with --engine redis, history lives in Redis"; return r;
  }
  if (r.cfg.engine != "redis" && !r.cfg.redis.empty()) { r.ok = false; r.error = "--redis needs --engine redis"; return r; }
  if (r.cfg.tls_cert.empty() != r.cfg.tls_key.empty()) {
    r.ok = false; r.error = "--tls-cert and --tls-key go together"; return r;
  }
  if (r.cfg.demo && !r.cfg.namespaces.contains("demo"))
    r.cfg.namespaces["demo"] = namespace_config{1000, 300000, true, true, true, false};   // history: config.hpp, history_size
  // The demo's Pusher app: its channels are the demo namespace's, so web/pusher.html and the
  // Pushwire demo pages meet on them.
  if (r.cfg.demo && r.cfg.pusher_apps.empty()) {
    pusher_app demo;
    demo.id = "demo";
    demo.key = "pushwire-demo";
    demo.secret = "demo-secret";
    demo.ns = "demo";
    r.cfg.pusher_apps.push_back(std::move(demo));
  }
  if (auto why = check_pusher_apps(r.cfg.pusher_apps); !why.empty()) { r.ok = false; r.error = why; return r; }
  // An app's namespace is a Pushwire namespace too (the API and Pushwire clients reach its
  // channels); unless configured, it has the default namespace's history.
  for (auto& a : r.cfg.pusher_apps)
    if (!a.ns.empty() && !r.cfg.namespaces.contains(a.ns)) {
      namespace_config n;
      n.history_size = r.cfg.history_size;
      n.history_ttl_ms = r.cfg.history_ttl_ms;
      r.cfg.namespaces[a.ns] = n;
    }
  {
    auto& c = r.cfg;
    const char* bad = c.pusher_webhook_batch_ms > 10000 ? "--pusher-webhook-batch-ms must be 0-10000"
                    : c.pusher_webhook_max_batch < 1 || c.pusher_webhook_max_batch > 1000 ? "--pusher-webhook-max-batch must be 1-1000"
                    : c.pusher_webhook_queue < 1 || c.pusher_webhook_queue > 1000000 ? "--pusher-webhook-queue must be 1-1000000"
                    : c.pusher_webhook_attempts < 1 || c.pusher_webhook_attempts > 20 ? "--pusher-webhook-attempts must be 1-20"
                    : c.pusher_webhook_backoff_ms < 1 || c.pusher_webhook_backoff_ms > 60000 ? "--pusher-webhook-backoff-ms must be 1-60000"
                    : c.pusher_webhook_timeout_ms < 1 || c.pusher_webhook_timeout_ms > 60000 ? "--pusher-webhook-timeout-ms must be 1-60000"
                    : nullptr;
    if (bad) { r.ok = false; r.error = bad; return r; }
  }
  // Sent on every SSE open: a bound keeps a config typo from costing megabytes per connection.
  if (r.cfg.sse_padding_bytes > max_sse_padding_bytes) {
    r.ok = false; r.error = "--sse-padding-bytes must be 0-" + std::to_string(max_sse_padding_bytes); return r;
  }
  // A write that waits a second is an outage, not coalescing; the factor multiplies a duration.
  if (r.cfg.write_coalesce_us > 1000000) {
    r.ok = false; r.error = "--write-coalesce-us must be 0-1000000"; return r;
  }
  if (r.cfg.write_coalesce_factor > 64) {
    r.ok = false; r.error = "--write-coalesce-factor must be 0-64"; return r;
  }
  if (r.cfg.pusher_activity_timeout_s == 0 || r.cfg.pusher_activity_timeout_s > 3600) {
    r.ok = false; r.error = "--pusher-activity-timeout-s must be 1-3600"; return r;
  }
  return r;
}

std::vector<std::string> changed_settings(const config& a, const config& b) {
  std::vector<std::string> out;
  for (auto& o : options())
    if (o.get(a) != o.get(b)) out.push_back(o.name);
  auto ns_same = a.namespaces.size() == b.namespaces.size() &&
                 std::equal(a.namespaces.begin(), a.namespaces.end(), b.namespaces.begin(), [](auto& x, auto& y) {
                   auto& p = x.second;
                   auto& q = y.second;
                   return x.first == y.first && p.history_size == q.history_size && p.history_ttl_ms == q.history_ttl_ms &&
                          p.presence == q.presence && p.client_publish == q.client_publish &&
                          p.anonymous_presence == q.anonymous_presence && p.private_channels == q.private_channels;
                 });
  if (!ns_same) out.push_back("namespaces");
  // The flag's text masks secrets: compare them here too (only whether, never what).
  bool apps_same = a.pusher_apps.size() == b.pusher_apps.size();
  for (std::size_t i = 0; apps_same && i < a.pusher_apps.size(); ++i)
    apps_same = a.pusher_apps[i].secret == b.pusher_apps[i].secret;
  if (!apps_same && std::find(out.begin(), out.end(), "pusher-app") == out.end()) out.push_back("pusher-app");
  std::sort(out.begin(), out.end());   // a stable order for the log, whatever the option table's
  return out;
}

std::string help_text() {
  config d;
  std::string out = "Usage: pushwire-server [flags]   (--version: the version and build)\n"
                    "Flags override PUSHWIRE_<FLAG> environment variables, which override the --config file.\n\n";
  for (auto& o : options()) {
    std::string line = "  --" + o.name + (o.is_bool ? "" : " V");
    line.resize(std::max<std::size_t>(line.size() + 2, 32), ' ');   // a long name still gets a gap
    line += o.help;
    line += " (default: ";
    std::string dv = o.get(d);
    line += dv.empty() ? "none" : dv;
    line += ")\n";
    out += line;
  }
  out += "\nThe config file is one JSON object whose keys are the flag names (either '-' or '_'), e.g.\n"
         "  {\"address\":\"0.0.0.0\",\"port\":8080,\"key_file\":\"/var/lib/pushwire/keys\",\"log_level\":\"info\"}\n"
         "Lists (transports, allowed-origins, redis) may be JSON arrays of strings.\n"
         "\nSignals: SIGTERM/SIGINT drain and stop (exit 0); SIGHUP re-reads the config file, the environment\n"
         "and the key file and applies api-key, token-secret, key-file, log-level, the TLS files and the limits\n"
         "max-connections, max-connections-per-ip and demo-rate-per-s at once (the log names what changed,\n"
         "never a secret); other settings changed meanwhile need a restart.\n"
         "Under systemd (Type=notify) it sends READY=1, RELOADING=1/READY=1 around a reload, STOPPING=1.\n"
         "\nNamespaces are configured in the config file:\n"
         "  {\"namespaces\":{\"demo\":{\"history_size\":1000,\"history_ttl_ms\":300000,\"presence\":true,\n"
         "   \"client_publish\":true,\"anonymous_presence\":true,\"private\":false}}}\n";
  return out;
}

}  // namespace pushwire::server

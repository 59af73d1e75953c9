#include "server/node/node.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <random>
#include <thread>

#include "server/hub/disk/disk_history.hpp"
#include "server/hub/memory/memory_broker.hpp"
#include "server/hub/memory/memory_history.hpp"
#include "server/hub/memory/memory_presence.hpp"
#include "server/ops/jwt.hpp"
#include "server/redis/redis_stores.hpp"

namespace pushwire::server {

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
  p.churn_burst = c.subscribe_churn_burst;
  p.churn_per_s = c.subscribe_churn_per_s;
  p.token_refresh_warning_ms = c.token_refresh_warning_ms;
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

unsigned io_threads(const config& c) {
  return c.threads ? c.threads : std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace

store_set node::memory_stores(const config& c, const clock& clk) {
  auto h = c.history_cfg();
  // Epochs differ between runs of the process: its start time and the wall clock.
  h.epoch_seed = clk.now_ns() ^ (wall_seconds() << 20);
  return store_set{std::make_unique<memory_history>(std::move(h)), std::make_unique<memory_broker>(),
                   std::make_unique<memory_presence>(c.max_presence_members)};
}

store_set node::disk_stores(const config& c, const clock& clk) {
  auto s = memory_stores(c, clk);
  disk_history_config d;
  d.mem = c.history_cfg();
  d.mem.epoch_seed = clk.now_ns() ^ (wall_seconds() << 20);
  d.dir = c.data_dir;
  d.policy = c.durable;
  d.fsync_interval_ms = c.fsync_interval_ms;
  d.time_base_ms = static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count()) -
                   static_cast<std::int64_t>(clk.now_ms());
  std::ifstream boot("/proc/sys/kernel/random/boot_id");
  std::getline(boot, d.boot_id);
  s.history = std::make_unique<disk_history>(std::move(d));
  s.engine = "disk";
  return s;
}

namespace {

// A node without a configured id gets a random one (12 hex digits): ids of nodes started together
// must differ, and /api/info shows it.
config with_node_id(config c) {
  if (!c.node_id.empty()) return c;
  std::random_device rd;
  std::uint64_t v = (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^ wall_seconds();
  static constexpr char hex[] = "0123456789abcdef";
  for (int i = 0; i < 12; ++i, v >>= 4) c.node_id += hex[v & 15];
  return c;
}

store_set default_stores(const config& c, const clock& clk) {
  if (c.engine == "redis") return redis_stores(c, clk);
  return c.data_dir.empty() ? node::memory_stores(c, clk) : node::disk_stores(c, clk);
}

}  // namespace

std::string node::new_socket_id() {
  std::string id = std::to_string(socket_prefix_);
  id += '.';
  id += std::to_string(next_client_.fetch_add(1));
  return id;
}

node::node(config c, const clock& clock_source, const store_maker& make)
    : cfg_(with_node_id(std::move(c))),
      stores_(make ? make(cfg_, clock_source) : default_stores(cfg_, clock_source)),
      hub_(std::make_unique<hub>(hub_stores{*stores_.history, *stores_.brk, *stores_.presence},
                                 clock_source, io_threads(cfg_))),
      clk(clock_source),
      started_wall_ms(static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch()).count())),
      leases(poll_leases::limits{cfg_.max_poll_leases, cfg_.effective_lease_ms(), 64}, *hub_,
             [this] { return new_client_id(); }, met.connections_polling),
      ips(cfg_.max_connections_per_ip),
      demo(cfg_.demo_rate_per_s),
      rng_(clock_source.now_ns() ^ 0x5bd1e995u) {
  hub_->set_event_listener([this](const channel_event_ptr& e) { leases.on_event(e); });
  // Client ids are presence member ids and long-poll lease ids: on a shared engine they must not
  // repeat between nodes, so each node counts from a random start (still "c" + digits).
  if (stores_.cluster) next_client_ = 1'000'000'000 + std::random_device{}() % 1'000'000'000ull * 1'000'000ull;
  socket_prefix_ = 1 + std::random_device{}() % 1'000'000'000u;
  pusher_connections = std::make_unique<std::atomic<std::size_t>[]>(cfg_.pusher_apps.size());
  secrets_ = std::make_shared<const node_secrets>(node_secrets{cfg_.api_key, cfg_.token_secret});
  auto verifier = [this](std::string_view token, std::uint64_t) {
    auto keys = secrets();
    protocol::verified_token v;
    if (keys->token_secret.empty()) {
      v.error = protocol::code::unauthorized;
      v.reason = "tokens are not accepted";
      return v;
    }
    auto r = verify_jwt(token, keys->token_secret, static_cast<std::int64_t>(wall_seconds()));
    v.error = r.error;
    v.reason = r.reason;
    v.user = r.claims.user;
    v.channels = r.claims.channels;
    v.restricts_channels = r.claims.restricts_channels;
    if (r.error == protocol::code::ok) {
      // Accepted until exp + the verifier's leeway (the instant it would refuse the token).
      auto left_s = r.claims.exp + jwt_leeway_seconds - static_cast<std::int64_t>(wall_seconds());
      v.expires_in_ms = static_cast<std::uint64_t>(std::max<std::int64_t>(0, left_s)) * 1000;
    }
    return v;
  };
  session_rules = protocol::make_session_rules(make_policy(cfg_), std::move(verifier));
}

std::shared_ptr<const node_secrets> node::secrets() const {
  std::lock_guard lk(secrets_mu_);
  return secrets_;
}

void node::set_secrets(node_secrets s) {
  auto fresh = std::make_shared<const node_secrets>(std::move(s));
  std::lock_guard lk(secrets_mu_);
  secrets_.swap(fresh);   // `fresh` now holds the old set: released after the lock (declared before it)
}

node::~node() {
  stores_.history->drain();   // completions still queued feed the hub: they run before it goes
  hub_->set_event_listener(nullptr);
  hub_->set_disconnect_listener(nullptr);
}

protocol::stream_policy node::stream_policy(bool reads) const {
  protocol::stream_policy p;
  p.queue_bytes = cfg_.queue_bytes;
  p.slow_grace_ms = cfg_.slow_consumer_grace_ms;
  p.ping_ms = cfg_.ping_interval_ms;
  p.dead_peer_ms = reads ? cfg_.effective_dead_peer_ms() : 0;
  return p;
}

bool node::valid_client_id(std::string_view id) {
  if (id.size() < 2 || id.size() > 20 || id[0] != 'c') return false;
  for (char ch : id.substr(1))
    if (ch < '0' || ch > '9') return false;
  return true;
}

std::uint64_t node::jitter(std::uint64_t max) {
  if (max == 0) return 0;
  std::lock_guard lk(rng_mu_);
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  // max + 1 wraps to 0 at the top of the range: then every value is in [0, max].
  return max == UINT64_MAX ? rng_ : rng_ % (max + 1);
}

std::uint64_t node::reconnect_after(const disconnect_order& d) {
  return std::min(d.after_ms, max_reconnect_delay_ms) + jitter(std::min(d.jitter_ms, max_reconnect_delay_ms));
}

void node::disconnect(const disconnect_order& d, std::function<void(std::size_t)> counted) {
  std::size_t polls = leases.mark(d);
  // Each I/O thread counts before it can receive the order itself (posted in that order).
  if (counted && count_streams)
    count_streams(d, [polls, counted = std::move(counted)](std::size_t streams) { counted(polls + streams); });
  else if (counted)
    counted(polls);
  hub_->disconnect(d);
}

}  // namespace pushwire::server

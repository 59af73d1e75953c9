#include "server/app/server.hpp"

#include <sys/resource.h>

#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <latch>
#include <random>

#include "server/app/listener.hpp"
#include "server/node/node.hpp"
#include "server/ops/key_file.hpp"
#include "server/ops/log.hpp"
#include "server/pusher/webhooks.hpp"
#include "server/transport/worker.hpp"

namespace pushwire::server {

using protocol::code;

struct server::impl {
  impl(config c, const clock& clk, const store_maker& make)
      : given(c), n(std::move(c), clk, make), listen(n, workers, n.cfg.tls_cert.empty() ? nullptr : &tls),
        admin(n, workers, nullptr, true) {}

  // The configuration as started, before the node fills in what was left to it (a random node id):
  // a reload compares the re-parsed configuration with this one.
  const config given;

  node n;
  // Before the workers: destroyed after them, so a connection that leaves a channel as the workers
  // go still finds it (stopped: the event is dropped and counted).
  std::unique_ptr<pusher_webhooks> webhooks;
  std::vector<std::unique_ptr<worker>> workers;
  tls_context_source tls;
  listener listen;
  listener admin;   // --admin-port; unused when it is off
  std::mutex mu;
  std::mutex reload_mu;   // one reload at a time; guards `log_level`
  std::string log_level;  // the level in force (reloadable)
  bool random_api_key = false;   // no key configured: the run uses a printed random one (guarded by reload_mu)
  std::condition_variable cv;
  bool started = false, stopping = false, stopped = false;
  std::uint64_t next_count_report_ms = 0;   // (first I/O thread only)

  // The housekeeping tick: every connection's deadlines (heartbeats, dead peers, slow-consumer
  // grace, handshake timeouts), and on the first thread the node's sweeps.
  void arm_tick(worker& w) {
    w.tick_timer.expires_after(std::chrono::milliseconds(n.cfg.housekeeping_ms));
    w.tick_timer.async_wait([this, &w](beast::error_code ec) {
      if (ec) return;
      auto now = n.clk.now_ms();
      std::vector<conn_base*> snapshot(w.conns.begin(), w.conns.end());
      for (auto* c : snapshot)
        if (w.conns.contains(c)) c->tick(now);
      if (w.index == 0) {
        n.leases.sweep(now);   // first: an expired lease leaves its presence itself
        n.the_hub().sweep();
        // Several nodes: this node's subscriber counts, for /api/channels on any node.
        if (auto* c = n.cluster(); c && now >= next_count_report_ms) {
          next_count_report_ms = now + n.cfg.node_heartbeat_ms;
          c->report_subscribers(n.the_hub().subscriber_counts());
        }
      }
      arm_tick(w);
    });
  }

  // How many streaming connections on this node `d` addresses: each I/O thread counts its own.
  void count_streams(const disconnect_order& d, std::function<void(std::size_t)> done) {
    struct tally {
      std::atomic<std::size_t> found{0}, threads_left{0};
      std::function<void(std::size_t)> done;
    };
    auto t = std::make_shared<tally>();
    t->threads_left = workers.size();
    t->done = std::move(done);
    for (auto& w : workers) {
      net::post(w->ioc, [t, d, wp = w.get()] {
        std::size_t k = 0;
        for (auto* c : wp->conns)
          if (c->is_stream() && d.matches(c->client_id(), c->user_id())) ++k;
        t->found.fetch_add(k);
        if (t->threads_left.fetch_sub(1) == 1) t->done(t->found.load());
      });
    }
  }

  // A server disconnect from the broker (this node's API, shutdown, or another node): every
  // matching connection on every I/O thread is told, each with its own jitter.
  void on_disconnect(const disconnect_order& d) {
    n.leases.mark(d);   // polling clients: the next poll gets the disconnect frame at once
    for (auto& w : workers) {
      net::post(w->ioc, [this, d, wp = w.get()] {
        std::vector<conn_base*> snapshot(wp->conns.begin(), wp->conns.end());
        for (auto* c : snapshot) {
          if (!wp->conns.contains(c)) continue;
          if (d.matches(c->client_id(), c->user_id())) c->server_disconnect(d, n.reconnect_after(d));
        }
      });
    }
  }
};

namespace {
steady_clock_source default_clock;

// The keys `c` asks for: --api-key / --token-secret (flag, environment or config file) win over the
// key file's. An empty API key stays empty (the caller decides).
bool resolve_keys(const config& c, node_secrets& out, std::string& error) {
  key_set file;
  if (!c.key_file.empty()) {
    bool created = false;
    if (!load_or_create_key_file(c.key_file, file, created, error)) return false;
    // The path only: the operator reads the keys there.
    log::info(created ? "key file created" : "key file read", {{"path", c.key_file}});
  }
  out.api_key = !c.api_key.empty() ? c.api_key : file.api_key;
  out.token_secret = !c.token_secret.empty() ? c.token_secret : file.token_secret;
  return true;
}

// A key made for this run: its value on stdout once, for the operator at the terminal; the log
// line (stderr) says only that it happened and where to keep a key instead.
void print_run_key(const std::string& api_key) {
  std::printf("pushwire: API key for this run (set --key-file or --api-key to keep one): %s\n", api_key.c_str());
  std::fflush(stdout);
  log::warn("no api key configured: one was made for this run and printed on stdout (not logged); set --key-file or --api-key");
}

// Settings a reload applies (their changes are not "needs a restart"). The limits here are the ones
// checked at the door (accept, a stream's start, a demo publish), so a new value applies to the next
// connection or request and never has to reach into an open one; the others (queue bytes, message
// size, timeouts, history bounds) are copied into sessions and stores at start and need a restart.
bool reloadable(std::string_view name) {
  return name == "api-key" || name == "token-secret" || name == "key-file" || name == "log-level" ||
         name == "tls-cert" || name == "tls-key" || name == "max-connections" ||
         name == "max-connections-per-ip" || name == "demo-rate-per-s";
}

// --max-connections, or with 0 the descriptor cap (RLIMIT_NOFILE) minus a reserve of 64 for files,
// logs and Redis (half the cap when it is tiny).
std::size_t connection_limit(const config& c) {
  if (c.max_connections) return c.max_connections;
  rlimit rl{};
  std::size_t cap = 20000;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) cap = rl.rlim_cur;
  return cap > 128 ? cap - 64 : cap / 2;
}
}  // namespace

server::server(config cfg, const clock* clk, store_maker stores)
    : impl_(std::make_unique<impl>(std::move(cfg), clk ? *clk : default_clock, stores)) {}

server::~server() {
  shutdown();
  wait();
}

unsigned short server::port() const { return impl_->listen.port(); }
std::string server::api_key() const { return impl_->n.secrets()->api_key; }
pushwire::server::metrics& server::stats() { return impl_->n.met; }

bool server::start(std::string& error) {
  auto& im = *impl_;
  auto& n = im.n;
  log::level lvl;
  if (log::parse_level(n.cfg.log_level, lvl)) log::set_level(lvl);
  {
    std::lock_guard lk(im.reload_mu);
    im.log_level = std::string(log::level_name(log::current_level()));
  }
  node_secrets keys;
  if (!resolve_keys(n.cfg, keys, error)) return false;
  if (keys.api_key.empty()) {
    // Never /api/* without a key (DECISIONS.md §9): one made for this run, printed once on stdout
    // for whoever started the server by hand, never in the log (stderr, the journal's structured
    // lines) or the metrics. scripts/start.sh and the package always name a key file instead.
    keys.api_key = random_hex(16);
    std::lock_guard lk(im.reload_mu);
    im.random_api_key = true;
    print_run_key(keys.api_key);
  }
  n.set_secrets(std::move(keys));
  n.max_connections = connection_limit(n.cfg);

  unsigned threads = n.cfg.threads ? n.cfg.threads : std::max(1u, std::thread::hardware_concurrency());
  std::vector<fanout_sink*> sinks;
  for (unsigned i = 0; i < threads; ++i) {
    auto w = std::make_unique<worker>();
    w->index = i;
    w->pacing.cap_ns = n.cfg.write_coalesce_us * 1000;
    w->pacing.factor = n.cfg.write_coalesce_factor;
    w->clk = &n.clk;
    sinks.push_back(w.get());
    im.workers.push_back(std::move(w));
  }
  n.the_hub().set_sinks(sinks);
  n.the_hub().set_disconnect_listener([&im](const disconnect_order& d) { im.on_disconnect(d); });
  n.count_streams = [&im](const disconnect_order& d, std::function<void(std::size_t)> done) {
    im.count_streams(d, std::move(done));
  };
  if (pusher_webhooks::wanted(n.cfg.pusher_apps)) {
    webhook_options o;
    o.batch_ms = n.cfg.pusher_webhook_batch_ms;
    o.max_batch = n.cfg.pusher_webhook_max_batch;
    o.max_queue = n.cfg.pusher_webhook_queue;
    o.attempts = static_cast<unsigned>(n.cfg.pusher_webhook_attempts);
    o.backoff_ms = n.cfg.pusher_webhook_backoff_ms;
    o.timeout_ms = n.cfg.pusher_webhook_timeout_ms;
    im.webhooks = std::make_unique<pusher_webhooks>(n.cfg.pusher_apps, o, n.met);
    n.webhooks = im.webhooks.get();
    // channel_occupied / channel_vacated: this node's first subscriber and its last (docs/pusher.md).
    n.the_hub().set_occupancy_listener(
        [w = im.webhooks.get()](std::string_view channel, bool occupied) { w->hub_occupancy(channel, occupied); });
    im.webhooks->start();
  }

  if (!n.cfg.tls_cert.empty() && !im.tls.load(n.cfg.tls_cert, n.cfg.tls_key, error)) return false;
  if (!im.listen.listen(n.cfg.address, n.cfg.port, error)) return false;
  bool with_admin = n.cfg.admin_port >= 0;
  if (with_admin && !im.admin.listen(n.cfg.admin_address, n.cfg.admin_port, error)) return false;
  if (with_admin)
    log::info("listening", {{"address", n.cfg.address}, {"port", std::to_string(im.listen.port())},
                            {"tls", n.cfg.tls_cert.empty() ? "off" : "on"}, {"admin_address", n.cfg.admin_address},
                            {"admin_port", std::to_string(im.admin.port())}});
  else
    log::info("listening", {{"address", n.cfg.address}, {"port", std::to_string(im.listen.port())},
                            {"tls", n.cfg.tls_cert.empty() ? "off" : "on"}});
  im.listen.start();
  if (with_admin) im.admin.start();
  // Each thread makes its own io_uring ring (send_batch.hpp: by the thread that submits to it)
  // before start() returns, so a started server holds all its descriptors. 256 sends per batch at
  // most: a flush slice rarely takes more (flush_slice_ns); the queues stay ~16 KB per thread.
  std::latch rings_made(static_cast<std::ptrdiff_t>(im.workers.size()));
  for (auto& w : im.workers) {
    im.arm_tick(*w);
    w->thread = std::thread([&n, &rings_made, wp = w.get()] {
      if (n.cfg.io_uring && !wp->sends.enable(256) && wp->index == 0)
        log::warn("io_uring refused by the kernel: each write is its own sendmsg", {});
      rings_made.count_down();
      wp->ioc.run();
    });
  }
  rings_made.wait();
  // Last: a port file that exists means both listeners are bound, the line above is written and
  // every I/O thread runs with its descriptors.
  if (!n.cfg.port_file.empty()) {
    std::string tmp = n.cfg.port_file + ".tmp";
    { std::ofstream out(tmp); out << im.listen.port() << "\n"; }
    std::rename(tmp.c_str(), n.cfg.port_file.c_str());
  }
  std::lock_guard lk(im.mu);
  im.started = true;
  return true;
}

void server::reload(const config& fresh) {
  auto& im = *impl_;
  auto& n = im.n;
  std::lock_guard lk(im.reload_mu);
  std::vector<std::string> changed;

  node_secrets keys;
  std::string error;
  auto old = n.secrets();
  if (!resolve_keys(fresh, keys, error)) {
    log::error("reload: the keys stay as they were", {{"error", error}});
  } else {
    // No key configured any more: as at start, a key made for this run and printed on stdout,
    // unless the run already has one (it stays).
    bool closed = keys.api_key.empty();
    if (closed && im.random_api_key) keys.api_key = old->api_key;
    else if (closed) keys.api_key = random_hex(16);
    if (closed && !im.random_api_key) print_run_key(keys.api_key);
    im.random_api_key = closed;
    if (keys.api_key != old->api_key) changed.emplace_back("api_key");
    if (keys.token_secret != old->token_secret) changed.emplace_back("token_secret");
    n.set_secrets(std::move(keys));
  }
  for (auto& name : changed) log::info(name + " changed");   // the name only, never the value

  log::level lvl;
  if (!log::parse_level(fresh.log_level, lvl)) {
    log::warn("reload: bad log_level, unchanged", {{"log_level", fresh.log_level}});
  } else if (std::string want(log::level_name(lvl)); want != im.log_level) {
    // Said before the switch, so a quieter level still shows this line.
    log::info("log_level changed", {{"from", im.log_level}, {"to", want}});
    log::set_level(lvl);
    im.log_level = want;
    changed.emplace_back("log_level");
  }

  // Limits checked at the door: the next connection or request sees the new value.
  auto limit = [&](const char* name, std::uint64_t in_force, std::uint64_t want, auto apply) {
    if (want == in_force) return;
    log::info("limit changed", {{"setting", name}, {"from", std::to_string(in_force)}, {"to", std::to_string(want)}});
    apply(want);
    changed.emplace_back(name);
  };
  limit("max_connections", n.max_connections.load(), connection_limit(fresh), [&](std::uint64_t v) { n.max_connections = v; });
  limit("max_connections_per_ip", n.ips.limit(), fresh.max_connections_per_ip, [&](std::uint64_t v) { n.ips.set_limit(v); });
  limit("demo_rate_per_s", n.demo.limit(), fresh.demo_rate_per_s, [&](std::uint64_t v) { n.demo.set_limit(v); });

  // TLS: on or off is fixed at start (the listener's kind); the files (and their paths) reload.
  bool tls_on = !n.cfg.tls_cert.empty();
  if (tls_on && !fresh.tls_cert.empty()) {
    if (im.tls.load(fresh.tls_cert, fresh.tls_key, error)) {
      log::info("tls reloaded", {{"cert", fresh.tls_cert}, {"key", fresh.tls_key}});
      changed.emplace_back("tls");
    } else {
      log::error("tls reload failed, the previous certificate stays", {{"error", error}});
    }
  }

  std::vector<std::string> ignored;
  for (auto& name : changed_settings(im.given, fresh)) {
    bool tls_name = name == "tls-cert" || name == "tls-key";
    if (reloadable(name) && !(tls_name && tls_on == fresh.tls_cert.empty())) continue;
    log::warn("setting changed, needs a restart: ignored", {{"setting", name}});
    ignored.push_back(name);
  }
  auto listed = [](const std::vector<std::string>& names) {
    std::string out;
    for (auto& name : names) out += (out.empty() ? "" : ",") + name;
    return out.empty() ? std::string("nothing") : out;
  };
  log::info("reloaded", {{"changed", listed(changed)}, {"ignored", listed(ignored)}});
}

void server::shutdown() {
  auto& im = *impl_;
  {
    std::lock_guard lk(im.mu);
    if (!im.started || im.stopping) return;
    im.stopping = true;
  }
  auto& n = im.n;
  n.draining = true;   // /readyz answers 503 from now on; the listener stays open until the drain ends
  disconnect_order d;
  d.all = true;
  d.code = code::shutting_down;
  d.reason = "server shutting down";
  d.reconnect = true;
  d.jitter_ms = n.cfg.reconnect_jitter_ms;
  n.disconnect(d);
  // Drain: wait until every connection is gone (and --readiness-drain-ms has passed) or the deadline
  // passes. The drain is real time even under a manual clock (it bounds how long a process takes to
  // stop).
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + std::chrono::milliseconds(n.cfg.shutdown_timeout_ms);
  auto ready_until = start + std::chrono::milliseconds(n.cfg.readiness_drain_ms);
  auto now = start;
  while (now < deadline && (n.open_streams.load() > 0 || now < ready_until)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));   // a drain poll, not synchronisation
    now = std::chrono::steady_clock::now();
  }
  im.listen.stop();
  if (n.cfg.admin_port >= 0) im.admin.stop();
  for (auto& w : im.workers) w->ioc.stop();
  for (auto& w : im.workers)
    if (w->thread.joinable()) w->thread.join();
  // The connections are gone: send the webhooks their last events (vacated ...), within a deadline.
  if (im.webhooks) im.webhooks->stop(std::chrono::milliseconds(n.cfg.shutdown_timeout_ms));
  std::lock_guard lk(im.mu);
  im.stopped = true;
  im.cv.notify_all();
}

void server::wait() {
  auto& im = *impl_;
  std::unique_lock lk(im.mu);
  if (!im.started) return;
  im.cv.wait(lk, [&] { return im.stopped; });
}

}  // namespace pushwire::server

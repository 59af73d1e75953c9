#include "server/app/server.hpp"

#include <sys/resource.h>

#include <condition_variable>
#include <fstream>
#include <random>

#include "server/app/listener.hpp"
#include "server/node/node.hpp"
#include "server/ops/log.hpp"
#include "server/pusher/webhooks.hpp"
#include "server/transport/worker.hpp"

namespace pushwire::server {

using protocol::code;

struct server::impl {
  impl(config c, const clock& clk, const store_maker& make)
      : n(std::move(c), clk, make), listen(n, workers, n.cfg.tls_cert.empty() ? nullptr : &tls),
        admin(n, workers, nullptr, true) {}

  node n;
  // Before the workers: destroyed after them, so a connection that leaves a channel as the workers
  // go still finds it (stopped: the event is dropped and counted).
  std::unique_ptr<pusher_webhooks> webhooks;
  std::vector<std::unique_ptr<worker>> workers;
  tls_context_source tls;
  listener listen;
  listener admin;   // --admin-port; unused when it is off
  std::mutex mu;
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
}

server::server(config cfg, const clock* clk, store_maker stores)
    : impl_(std::make_unique<impl>(std::move(cfg), clk ? *clk : default_clock, stores)) {}

server::~server() {
  shutdown();
  wait();
}

unsigned short server::port() const { return impl_->listen.port(); }
const std::string& server::api_key() const { return impl_->n.api_key; }
pushwire::server::metrics& server::stats() { return impl_->n.met; }

bool server::start(std::string& error) {
  auto& im = *impl_;
  auto& n = im.n;
  log::level lvl;
  if (log::parse_level(n.cfg.log_level, lvl)) log::set_level(lvl);
  if (n.cfg.api_key.empty()) {
    std::random_device rd;
    static constexpr char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    for (int i = 0; i < 32; ++i) n.api_key += digits[rd() % 36];
    log::warn("generated api key", {{"api_key", n.api_key}});
  } else {
    n.api_key = n.cfg.api_key;
  }
  rlimit rl{};
  std::size_t cap = 20000;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) cap = rl.rlim_cur;
  n.max_connections = n.cfg.max_connections ? n.cfg.max_connections : (cap > 128 ? cap - 64 : cap / 2);

  unsigned threads = n.cfg.threads ? n.cfg.threads : std::max(1u, std::thread::hardware_concurrency());
  std::vector<fanout_sink*> sinks;
  for (unsigned i = 0; i < threads; ++i) {
    auto w = std::make_unique<worker>();
    w->index = i;
    w->coalesce_ns = n.cfg.write_coalesce_us * 1000;
    w->clk = &n.clk;
    sinks.push_back(w.get());
    im.workers.push_back(std::move(w));
  }
  n.the_hub().set_sinks(sinks);
  n.the_hub().set_disconnect_listener([&im](const disconnect_order& d) { im.on_disconnect(d); });
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
  // Last: a port file that exists means both listeners are bound and the line above is written.
  if (!n.cfg.port_file.empty()) {
    std::string tmp = n.cfg.port_file + ".tmp";
    { std::ofstream out(tmp); out << im.listen.port() << "\n"; }
    std::rename(tmp.c_str(), n.cfg.port_file.c_str());
  }

  im.listen.start();
  if (with_admin) im.admin.start();
  for (auto& w : im.workers) {
    im.arm_tick(*w);
    w->thread = std::thread([wp = w.get()] { wp->ioc.run(); });
  }
  std::lock_guard lk(im.mu);
  im.started = true;
  return true;
}

void server::reload() {
  auto& n = impl_->n;
  if (n.cfg.tls_cert.empty()) return log::info("reload: nothing to reload (no TLS)");
  std::string error;
  if (impl_->tls.load(n.cfg.tls_cert, n.cfg.tls_key, error))
    log::info("tls reloaded", {{"cert", n.cfg.tls_cert}, {"key", n.cfg.tls_key}});
  else
    log::error("tls reload failed, the previous certificate stays", {{"error", error}});
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
  while (now < deadline && (n.registry.size() > 0 || now < ready_until)) {
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

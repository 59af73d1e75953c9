#include "server/pusher/webhooks.hpp"

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "protocol/json_scan.hpp"
#include "server/ops/log.hpp"
#include "server/ops/metrics.hpp"
#include "server/pusher/pusher_signature.hpp"

namespace pushwire::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

struct url_parts {
  std::string host, port, target;
};

// http://host[:port][/path]; host may be [v6].
bool parse_url(std::string_view url, url_parts& out) {
  if (!url.starts_with("http://")) return false;
  url.remove_prefix(7);
  auto slash = url.find('/');
  auto hostport = url.substr(0, slash);
  out.target = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
  std::string_view host = hostport, port = "80";
  if (hostport.starts_with('[')) {
    auto close = hostport.find(']');
    if (close == std::string_view::npos) return false;
    host = hostport.substr(1, close - 1);
    auto rest = hostport.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return false;
      port = rest.substr(1);
    }
  } else if (auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
    host = hostport.substr(0, colon);
    port = hostport.substr(colon + 1);
  }
  out.host = std::string(host);
  out.port = std::string(port);
  auto p = protocol::parse_uint(out.port);
  return !out.host.empty() && p && *p >= 1 && *p <= 65535;
}

std::uint64_t wall_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

// One POST on a connection of its own: resolve, connect, write, read the response head. The whole
// exchange shares one deadline; `done(true)` for a 2xx status.
class post_op : public std::enable_shared_from_this<post_op> {
 public:
  post_op(net::io_context& ioc, const url_parts& url, http::request<http::string_body> req,
          std::chrono::milliseconds timeout, std::function<void(bool)> done)
      : resolver_(ioc), stream_(ioc), timer_(ioc), url_(url), req_(std::move(req)), timeout_(timeout),
        done_(std::move(done)) {}

  void run() {
    auto self = shared_from_this();
    timer_.expires_after(timeout_);   // bounds the resolve (the stream's own expiry bounds the rest)
    timer_.async_wait([self](beast::error_code ec) {
      if (!ec) self->resolver_.cancel();
    });
    stream_.expires_after(timeout_);
    resolver_.async_resolve(url_.host, url_.port, [self](beast::error_code ec, tcp::resolver::results_type r) {
      self->timer_.cancel();
      if (ec) return self->finish(false, "resolve", ec);
      self->stream_.async_connect(r, [self](beast::error_code ec, const tcp::endpoint&) {
        if (ec) return self->finish(false, "connect", ec);
        http::async_write(self->stream_, self->req_, [self](beast::error_code ec, std::size_t) {
          if (ec) return self->finish(false, "write", ec);
          self->parser_.emplace();
          http::async_read_header(self->stream_, self->buffer_, *self->parser_, [self](beast::error_code ec, std::size_t) {
            if (ec) return self->finish(false, "read", ec);
            auto status = self->parser_->get().result_int();
            self->finish(status >= 200 && status < 300, "status", {}, status);
          });
        });
      });
    });
  }

 private:
  void finish(bool ok, const char* step, beast::error_code ec, unsigned status = 0) {
    if (!ok)
      log::debug("pusher webhook failed", {{"step", step}, {"error", ec.message()}, {"status", std::to_string(status)}});
    beast::error_code ignore;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignore);
    auto done = std::move(done_);
    done(ok);
  }

  tcp::resolver resolver_;
  beast::tcp_stream stream_;
  net::steady_timer timer_;
  url_parts url_;
  http::request<http::string_body> req_;
  std::chrono::milliseconds timeout_;
  std::function<void(bool)> done_;
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::empty_body>> parser_;
};

}  // namespace

struct pusher_webhooks::impl {
  // One webhook URL of one app.
  struct target {
    const pusher_app* app = nullptr;
    std::vector<std::string> kinds;   // empty: every kind
    std::string url_text;
    url_parts url;
    std::deque<std::string> queue;    // event objects (JSON); guarded by mu
    // I/O thread only:
    std::unique_ptr<net::steady_timer> timer;   // the batch window, then a retry's backoff
    bool busy = false;                           // a batch is gathering, in flight or waiting to retry
  };

  impl(const std::vector<pusher_app>& a, webhook_options o, metrics& m) : opt(o), met(m), apps(a) {
    for (auto& app : apps)
      for (auto& w : app.webhooks) {
        auto t = std::make_unique<target>();
        t->app = &app;
        t->kinds = w.events;
        t->url_text = w.url;
        if (!parse_url(w.url, t->url)) {
          log::warn("pusher webhook url not understood, skipped", {{"url", w.url}});
          continue;
        }
        t->timer = std::make_unique<net::steady_timer>(ioc);
        by_app[app.id].push_back(t.get());
        targets.push_back(std::move(t));
      }
  }

  webhook_options opt;
  metrics& met;
  const std::vector<pusher_app> apps;   // (targets point into it: never resized)
  net::io_context ioc;
  net::executor_work_guard<net::io_context::executor_type> guard = net::make_work_guard(ioc);
  std::thread thread;
  std::vector<std::unique_ptr<target>> targets;
  std::unordered_map<std::string, std::vector<target*>> by_app;
  mutable std::mutex mu;
  std::size_t total = 0;          // events queued, all targets (mu)
  bool started = false, stopped = false;   // (mu)
  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> busy_targets{0};
  std::chrono::steady_clock::time_point deadline{};

  static bool wants(const target& t, std::string_view kind) {
    return t.kinds.empty() || std::find(t.kinds.begin(), t.kinds.end(), kind) != t.kinds.end();
  }

  void enqueue(const pusher_app& app, std::string_view kind, const std::string& event) {
    auto it = by_app.find(app.id);
    if (it == by_app.end()) return;
    std::vector<target*> kick;
    bool running;
    {
      std::lock_guard lk(mu);
      running = started && !stopped;
      for (auto* t : it->second) {
        if (stopped) {   // after stop(): nothing will send it
          met.pusher_webhook_events_dropped.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        if (!wants(*t, kind)) continue;
        if (total >= opt.max_queue) {
          met.pusher_webhook_events_dropped.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        if (t->queue.empty()) kick.push_back(t);
        t->queue.push_back(event);
        ++total;
      }
    }
    if (!running) return;   // start() kicks every target that has events
    for (auto* t : kick) net::post(ioc, [this, t] { begin(*t); });
  }

  // I/O thread: the first event of an idle target opens its batch window.
  void begin(target& t) {
    if (t.busy) return;   // the running cycle takes the new events when it is done
    {
      std::lock_guard lk(mu);
      if (t.queue.empty()) return;
    }
    t.busy = true;
    busy_targets.fetch_add(1);
    t.timer->expires_after(std::chrono::milliseconds(stopping ? 0 : opt.batch_ms));
    t.timer->async_wait([this, &t](beast::error_code) { send_next(t); });   // (cancelled by stop(): send now)
  }

  // I/O thread: sends the next batch of `t`, or goes idle when there is none.
  void send_next(target& t) {
    std::vector<std::string> batch;
    {
      std::lock_guard lk(mu);
      while (!t.queue.empty() && batch.size() < opt.max_batch) {
        batch.push_back(std::move(t.queue.front()));
        t.queue.pop_front();
        --total;
      }
    }
    if (batch.empty()) {
      t.busy = false;
      busy_targets.fetch_sub(1);
      return;
    }
    std::string body = "{\"time_ms\":";
    protocol::append_uint(body, wall_ms());
    body += ",\"events\":[";
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (i) body += ',';
      body += batch[i];
    }
    body += "]}";
    http::request<http::string_body> req{http::verb::post, t.url.target, 11};
    std::string host = t.url.host;
    if (host.find(':') != std::string::npos) {   // an IPv6 literal goes back in brackets
      host.insert(host.begin(), '[');
      host += ']';
    }
    host += ':';
    host += t.url.port;
    req.set(http::field::host, host);
    req.set(http::field::user_agent, "pushwire-webhooks");
    req.set(http::field::content_type, "application/json");
    req.set(http::field::connection, "close");
    req.set("X-Pusher-Key", t.app->key);
    req.set("X-Pusher-Signature", hmac_sha256_hex(t.app->secret, body));
    req.body() = std::move(body);
    req.prepare_payload();
    attempt(t, std::make_shared<http::request<http::string_body>>(std::move(req)), batch.size(), 1);
  }

  void attempt(target& t, std::shared_ptr<http::request<http::string_body>> req, std::size_t events, unsigned n) {
    auto op = std::make_shared<post_op>(ioc, t.url, *req, std::chrono::milliseconds(opt.timeout_ms),
                                        [this, &t, req, events, n](bool ok) {
      if (ok) {
        met.pusher_webhook_events_sent.fetch_add(events, std::memory_order_relaxed);
        return send_next(t);
      }
      bool past_deadline = stopping && std::chrono::steady_clock::now() >= deadline;
      if (n >= opt.attempts || past_deadline) {
        met.pusher_webhook_events_failed.fetch_add(events, std::memory_order_relaxed);
        log::warn("pusher webhook gave up", {{"url", t.url_text}, {"events", std::to_string(events)},
                                             {"attempts", std::to_string(n)}});
        return send_next(t);
      }
      // Doubling backoff: backoff_ms, 2x, 4x ..., at most max_backoff_ms.
      std::uint64_t delay = opt.backoff_ms;
      for (unsigned i = 1; i < n && delay < opt.max_backoff_ms; ++i) delay *= 2;
      delay = std::min(delay, opt.max_backoff_ms);
      t.timer->expires_after(std::chrono::milliseconds(delay));
      t.timer->async_wait([this, &t, req, events, n](beast::error_code) { attempt(t, req, events, n + 1); });
    });
    op->run();
  }
};

pusher_webhooks::pusher_webhooks(const std::vector<pusher_app>& apps, webhook_options opt, metrics& m)
    : impl_(std::make_unique<impl>(apps, opt, m)) {}

pusher_webhooks::~pusher_webhooks() { stop(std::chrono::milliseconds(0)); }

bool pusher_webhooks::wanted(const std::vector<pusher_app>& apps) {
  for (auto& a : apps)
    if (!a.webhooks.empty()) return true;
  return false;
}

void pusher_webhooks::start() {
  auto& im = *impl_;
  {
    std::lock_guard lk(im.mu);
    if (im.started || im.stopped) return;
    im.started = true;
  }
  im.thread = std::thread([&im] { im.ioc.run(); });
  for (auto& t : im.targets) net::post(im.ioc, [&im, tp = t.get()] { im.begin(*tp); });
}

void pusher_webhooks::stop(std::chrono::milliseconds deadline) {
  auto& im = *impl_;
  bool was_started;
  {
    std::lock_guard lk(im.mu);
    if (im.stopped) return;
    im.stopped = true;
    was_started = im.started;
  }
  if (was_started) {
    im.deadline = std::chrono::steady_clock::now() + deadline;
    im.stopping = true;
    // Flush: batch windows and backoffs end now; idle targets with events start.
    net::post(im.ioc, [&im] {
      for (auto& t : im.targets) {
        if (t->busy) t->timer->cancel();
        else im.begin(*t);
      }
    });
    // A shutdown poll (bounded by the deadline), not synchronisation of a result.
    while (std::chrono::steady_clock::now() < im.deadline && (im.busy_targets.load() > 0 || queued() > 0))
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    im.ioc.stop();
    if (im.thread.joinable()) im.thread.join();
  }
  std::lock_guard lk(im.mu);
  im.met.pusher_webhook_events_dropped.fetch_add(im.total, std::memory_order_relaxed);
  im.total = 0;
  for (auto& t : im.targets) t->queue.clear();
}

std::size_t pusher_webhooks::queued() const {
  std::lock_guard lk(impl_->mu);
  return impl_->total;
}

namespace {
std::string channel_event_json(std::string_view name, std::string_view channel) {
  std::string out = "{\"name\":";
  protocol::append_json_string(out, name);
  out += ",\"channel\":";
  protocol::append_json_string(out, channel);
  return out;   // (the caller closes it)
}
void add_field(std::string& out, std::string_view key, std::string_view value) {
  out += ",\"";
  out += key;
  out += "\":";
  protocol::append_json_string(out, value);
}
}  // namespace

void pusher_webhooks::occupied(const pusher_app& app, std::string_view channel) {
  auto e = channel_event_json("channel_occupied", channel);
  e += '}';
  impl_->enqueue(app, "channel_occupied", e);
}

void pusher_webhooks::vacated(const pusher_app& app, std::string_view channel) {
  auto e = channel_event_json("channel_vacated", channel);
  e += '}';
  impl_->enqueue(app, "channel_vacated", e);
}

void pusher_webhooks::member_added(const pusher_app& app, std::string_view channel, std::string_view user_id) {
  auto e = channel_event_json("member_added", channel);
  add_field(e, "user_id", user_id);
  e += '}';
  impl_->enqueue(app, "member_added", e);
}

void pusher_webhooks::member_removed(const pusher_app& app, std::string_view channel, std::string_view user_id) {
  auto e = channel_event_json("member_removed", channel);
  add_field(e, "user_id", user_id);
  e += '}';
  impl_->enqueue(app, "member_removed", e);
}

void pusher_webhooks::client_event(const pusher_app& app, std::string_view channel, std::string_view event,
                                   std::string_view data, std::string_view socket_id, std::string_view user_id) {
  auto e = channel_event_json("client_event", channel);
  add_field(e, "event", event);
  add_field(e, "data", data);
  add_field(e, "socket_id", socket_id);
  if (!user_id.empty()) add_field(e, "user_id", user_id);
  e += '}';
  impl_->enqueue(app, "client_event", e);
}

void pusher_webhooks::hub_occupancy(std::string_view hub_channel, bool occupied_now) {
  for (auto& app : impl_->apps) {
    if (!app.owns(hub_channel)) continue;
    if (!impl_->by_app.contains(app.id)) return;
    auto ch = app.pusher_channel(hub_channel);
    if (occupied_now) occupied(app, ch);
    else vacated(app, ch);
    return;
  }
}

}  // namespace pushwire::server

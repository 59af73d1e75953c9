// Listener, HTTP session and router, static files, housekeeping and shutdown. The transports live
// in ws_session.cpp, sse_session.cpp and poll_handler.cpp; the synchronous handlers in
// api_handler.cpp.
#include "server/server.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <condition_variable>
#include <fstream>
#include <random>
#include <sstream>

#include "server/log.hpp"
#include "server/net.hpp"

namespace pushwire::server {

using protocol::code;

bool origin_allowed(shared_state& s, std::string_view origin) {
  if (origin.empty()) return true;
  for (auto& o : s.cfg.allowed_origins)
    if (o == "*" || o == origin) return true;
  if (s.cfg.demo) {
    for (std::string_view prefix : {"http://localhost", "http://127.0.0.1"}) {
      if (!origin.starts_with(prefix)) continue;
      auto rest = origin.substr(prefix.size());
      if (rest.empty()) return true;
      if (rest[0] != ':' || rest.size() < 2) continue;
      bool digits = true;
      for (char c : rest.substr(1)) digits = digits && c >= '0' && c <= '9';
      if (digits) return true;
    }
  }
  return false;
}

void add_cors(shared_state& s, const request& req, http::fields& out) {
  auto origin = req[http::field::origin];
  if (origin.empty() || !origin_allowed(s, origin)) return;
  out.set(http::field::access_control_allow_origin, origin);
  out.set(http::field::vary, "Origin");
  out.set(http::field::access_control_expose_headers, "Pushwire-Cursor");
}

bool parse_stream_params(shared_state& s, std::string_view channels, std::string_view token_text, std::string token,
                         stream_params& out, code& c, std::string& reason) {
  out.token = std::move(token);
  std::string_view list = channels;
  while (!list.empty()) {
    auto comma = list.find(',');
    out.channels.emplace_back(list.substr(0, comma));
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  if (out.channels.size() > s.cfg.max_stream_channels) {
    c = code::too_many_subscriptions;
    reason = "at most " + std::to_string(s.cfg.max_stream_channels) + " channels per stream";
    return false;
  }
  out.since.assign(out.channels.size(), std::nullopt);
  if (!token_text.empty()) {
    auto t = protocol::decode_resume_token(token_text);
    if (!t || t->size() != out.channels.size()) {
      c = code::bad_resume_token;
      reason = "malformed resume token, or its entry count differs from channels";
      return false;
    }
    out.since = std::move(*t);
  }
  return true;
}

namespace {

http::response<http::string_body> make_response(shared_state& s, const request& req, const http_reply& r) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), req.version()};
  res.set(http::field::server, "pushwire");
  res.set(http::field::content_type, r.content_type);
  for (auto& [k, v] : r.headers) res.set(k, v);
  add_cors(s, req, res.base());
  res.body() = r.body;
  res.keep_alive(req.keep_alive());
  res.prepare_payload();
  return res;
}

std::string_view mime_type(std::string_view path) {
  auto dot = path.rfind('.');
  auto ext = dot == std::string_view::npos ? std::string_view{} : path.substr(dot);
  if (ext == ".js" || ext == ".mjs") return "text/javascript";
  if (ext == ".wasm") return "application/wasm";
  if (ext == ".html" || ext == ".htm") return "text/html; charset=utf-8";
  if (ext == ".css") return "text/css";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".json" || ext == ".map") return "application/json";
  if (ext == ".png") return "image/png";
  if (ext == ".ico") return "image/x-icon";
  if (ext == ".txt") return "text/plain; charset=utf-8";
  if (ext == ".d.ts" || ext == ".ts") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

bool safe_relative(std::string_view p) {
  if (p.find('\0') != std::string_view::npos || p.find('\\') != std::string_view::npos) return false;
  std::size_t i = 0;
  while (i <= p.size()) {
    auto j = p.find('/', i);
    auto seg = p.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i);
    if (seg == ".." || seg == ".") return false;
    if (j == std::string_view::npos) break;
    i = j + 1;
  }
  return true;
}

bool read_regular_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  // Reject directories: an ifstream opens them on Linux but reading fails.
  std::ostringstream ss;
  ss << in.rdbuf();
  if (!in.good() && !in.eof()) return false;
  out = ss.str();
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) { ::close(fd); return false; }
  return true;
}

http_reply serve_static(shared_state& s, std::string_view path) {
  http_reply r;
  std::string rel = percent_decode(path);
  std::vector<std::string> candidates;
  if (rel.starts_with("/pushwire/")) {
    std::string f = rel.substr(10);
    if (!s.cfg.client_root.empty() && !f.empty() && safe_relative(f)) {
      candidates.push_back(s.cfg.client_root + "/dist/" + f);
      candidates.push_back(s.cfg.client_root + "/src/" + f);
    }
  } else if (!s.cfg.web_root.empty() && safe_relative(rel.substr(1))) {
    if (rel.ends_with("/")) rel += "index.html";
    candidates.push_back(s.cfg.web_root + rel);
    candidates.push_back(s.cfg.web_root + rel + "/index.html");
  }
  for (auto& c : candidates) {
    if (read_regular_file(c, r.body)) {
      r.content_type = std::string(mime_type(c));
      r.headers.emplace_back("Cache-Control", "no-cache");
      return r;
    }
  }
  r.status = 404;
  r.content_type = "text/plain; charset=utf-8";
  r.body = "not found\n";
  return r;
}

http_in to_http_in(const request& req, std::string remote) {
  http_in in;
  in.method = std::string(req.method_string());
  std::string_view target = req.target();
  auto qpos = target.find('?');
  in.path = std::string(target.substr(0, qpos));
  if (qpos != std::string_view::npos) in.query = parse_query(target.substr(qpos + 1));
  in.body = req.body();
  auto auth = req[http::field::authorization];
  if (auth.size() > 7 && (auth.starts_with("Bearer ") || auth.starts_with("bearer "))) in.authorization = std::string(auth.substr(7));
  in.origin = std::string(req[http::field::origin]);
  in.remote = std::move(remote);
  in.content_type = std::string(req[http::field::content_type]);
  return in;
}

// Counts live TCP connections for the connection limit (decremented when the last owner goes).
struct conn_counter {
  explicit conn_counter(shared_state& s) : s_(s) {}
  ~conn_counter() { s_.connections.fetch_sub(1); }
  shared_state& s_;
};

class http_session : public std::enable_shared_from_this<http_session> {
 public:
  http_session(shared_state& s, worker& w, beast::tcp_stream stream, beast::flat_buffer buffer, bool first,
               std::shared_ptr<void> life)
      : s_(s), w_(w), stream_(std::move(stream)), buffer_(std::move(buffer)), first_(first), life_(std::move(life)) {}

  void run() { do_read(); }

 private:
  void do_read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(s_.cfg.header_limit));
    parser_->body_limit(s_.cfg.body_limit);
    stream_.expires_after(std::chrono::milliseconds(first_ ? s_.cfg.request_timeout_ms : s_.cfg.idle_timeout_ms));
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&http_session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream || ec == net::error::operation_aborted || ec == beast::error::timeout ||
        ec == net::error::connection_reset || ec == net::error::eof) {
      return close();
    }
    if (ec) {
      unsigned status = ec == http::error::header_limit ? 431 : ec == http::error::body_limit ? 413 : 400;
      code c = status == 413 ? code::message_too_big : code::bad_frame;
      std::string body = error_json(c, ec.message());
      std::string raw = "HTTP/1.1 " + std::to_string(status) + (status == 431 ? " Request Header Fields Too Large" : status == 413 ? " Payload Too Large" : " Bad Request") +
                        "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
      auto self = shared_from_this();
      auto buf = std::make_shared<std::string>(std::move(raw));
      stream_.expires_after(std::chrono::seconds(2));
      net::async_write(stream_, net::buffer(*buf), [self, buf](beast::error_code, std::size_t) { self->close(); });
      return;
    }
    first_ = true;   // the next request must also complete within the request timeout once it starts
    request req = parser_->release();
    route(std::move(req));
  }

  void route(request req) {
    std::string_view target = req.target();
    std::string_view path = target.substr(0, target.find('?'));
    std::string remote;
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote = ep.address().to_string();

    if (req.method() == http::verb::options) {
      http_reply r;
      r.status = 204;
      r.content_type = "text/plain";
      r.headers.emplace_back("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      r.headers.emplace_back("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID");
      r.headers.emplace_back("Access-Control-Max-Age", "600");
      if (!origin_allowed(s_, req[http::field::origin])) r.headers.clear();
      return reply(req, r);
    }
    if (path == "/ws" && websocket::is_upgrade(req)) {
      if (!s_.cfg.websocket) return reply(req, error_reply(code::bad_frame, "websocket transport is disabled"));
      if (!origin_allowed(s_, req[http::field::origin])) return reply(req, error_reply(code::permission_denied, "origin not allowed"), true);
      if (s_.draining) return reply(req, error_reply(code::shutting_down, "server is shutting down"), true);
      if (!take_ip_slot(req, remote, "websocket")) return;
      stream_.expires_never();
      return run_ws_session(s_, w_, std::move(stream_), std::move(req), with_slot());
    }
    if (path == "/sse" && req.method() == http::verb::get) {
      if (!s_.cfg.sse) return reply(req, error_reply(code::bad_frame, "sse transport is disabled"));
      if (!origin_allowed(s_, req[http::field::origin])) return reply(req, error_reply(code::permission_denied, "origin not allowed"), true);
      if (s_.draining) return reply(req, error_reply(code::shutting_down, "server is shutting down"), true);
      if (!take_ip_slot(req, remote, "sse")) return;
      stream_.expires_never();
      return run_sse_session(s_, w_, std::move(stream_), std::move(req), with_slot());
    }
    if (path == "/poll" && req.method() == http::verb::get) {
      if (!s_.cfg.polling) return reply(req, error_reply(code::bad_frame, "polling transport is disabled"));
      if (s_.draining) return reply(req, error_reply(code::shutting_down, "server is shutting down"), true);
      if (!take_ip_slot(req, remote, "polling")) return;
      stream_.expires_never();
      return run_poll(s_, w_, std::move(stream_), std::move(buffer_), std::move(req), std::move(life_),
                      std::move(ip_slot_));
    }
    if (path == "/cmd") {
      if (!s_.cfg.sse && !s_.cfg.polling) return reply(req, error_reply(code::bad_frame, "one-way transports are disabled"));
      return reply(req, handle_cmd(s_, to_http_in(req, remote), w_.hub, w_.index));
    }
    if (path.starts_with("/api/")) return reply(req, handle_api(s_, to_http_in(req, remote)));
    if (path == "/demo/publish" && s_.cfg.demo) return reply(req, handle_demo_publish(s_, to_http_in(req, remote)));
    if (path == "/healthz") {
      http_reply r;
      r.content_type = "text/plain";
      r.status = s_.draining ? 503 : 200;
      r.body = s_.draining ? "draining\n" : "ok\n";
      return reply(req, r);
    }
    if (path == "/metrics") {
      auto st = s_.eng->stats();
      s_.met.channels.store(st.channels, std::memory_order_relaxed);
      http_reply r;
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = s_.met.render_prometheus();
      return reply(req, r);
    }
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      http_reply r;
      r.status = 405;
      r.content_type = "text/plain";
      r.body = "method not allowed\n";
      return reply(req, r);
    }
    reply(req, serve_static(s_, path));
  }

  // --max-connections-per-ip: takes a slot for a WebSocket, SSE stream or long-poll from `remote`
  // (into ip_slot_), or answers 503 with error 4015, logs and counts the refusal.
  bool take_ip_slot(const request& req, const std::string& remote, std::string_view transport) {
    if (s_.acquire_ip_slot(remote, ip_slot_)) return true;
    s_.met.connections_refused.fetch_add(1, std::memory_order_relaxed);
    log::warn("connection refused",
              {{"reason", "too many connections from this address"}, {"remote", remote},
               {"transport", std::string(transport)}, {"limit", std::to_string(s_.cfg.max_connections_per_ip)}});
    reply(req, error_reply(code::too_many_connections, "too many connections from this address"), true);
    return false;
  }
  // The connection-limit slot and the per-address slot, held together by a streaming transport.
  std::shared_ptr<void> with_slot() {
    if (!ip_slot_) return std::move(life_);
    return std::make_shared<std::pair<std::shared_ptr<void>, std::shared_ptr<void>>>(std::move(life_), std::move(ip_slot_));
  }

  void reply(const request& req, const http_reply& r, bool close_after = false) {
    auto res = std::make_shared<http::response<http::string_body>>(make_response(s_, req, r));
    if (close_after) res->keep_alive(false);
    if (req.method() == http::verb::head) res->body().clear();
    bool keep = res->keep_alive();
    stream_.expires_after(std::chrono::milliseconds(s_.cfg.request_timeout_ms));
    http::async_write(stream_, *res, [self = shared_from_this(), res, keep](beast::error_code ec, std::size_t n) {
      self->s_.met.bytes_sent.fetch_add(n, std::memory_order_relaxed);
      if (ec || !keep) return self->close();
      self->first_ = false;
      self->do_read();
    });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  shared_state& s_;
  worker& w_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool first_;
  std::shared_ptr<void> life_;   // the connection-limit slot, passed on with the stream
  std::shared_ptr<void> ip_slot_;   // the per-address slot of the transport being started
};


}  // namespace

void continue_http(shared_state& s, worker& w, beast::tcp_stream stream, beast::flat_buffer buffer,
                   std::shared_ptr<void> life) {
  std::make_shared<http_session>(s, w, std::move(stream), std::move(buffer), false, std::move(life))->run();
}

void write_error_and_close(shared_state& s, beast::tcp_stream stream, const request& req, code c, std::string_view reason) {
  auto st = std::make_shared<beast::tcp_stream>(std::move(stream));
  auto res = std::make_shared<http::response<http::string_body>>(make_response(s, req, error_reply(c, reason)));
  res->keep_alive(false);
  st->expires_after(std::chrono::seconds(5));
  http::async_write(*st, *res, [st, res](beast::error_code, std::size_t) {
    beast::error_code ec;
    st->socket().shutdown(tcp::socket::shutdown_send, ec);
    st->close();
  });
}

struct server::impl {
  explicit impl(config c) : shared(std::move(c)) {}

  shared_state shared;
  std::vector<std::unique_ptr<worker>> workers;
  std::unique_ptr<tcp::acceptor> acceptor;
  unsigned short port = 0;
  unsigned next_worker = 0;
  int spare_fd = -1;
  std::unique_ptr<net::steady_timer> backoff;   // accept retry after a failing accept()
  std::uint64_t last_refused_log_ms = 0, refused_unlogged = 0;   // acceptor thread only
  std::mutex mu;
  std::condition_variable cv;
  bool started = false, stopping = false, stopped = false;
  std::thread drain_thread;

  // A refused connection: what already arrived of its request is read (so closing does not reset
  // the connection and lose the answer), then 503 with error 4015, then close. Never blocks.
  static void refuse(tcp::socket& sock) {
    static const std::string msg = [] {
      std::string body = error_json(code::too_many_connections, "too many connections");
      return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
             "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    }();
    beast::error_code ec;
    sock.non_blocking(true, ec);
    char sink[4096];
    sock.read_some(net::buffer(sink), ec);
    sock.write_some(net::buffer(msg), ec);
    sock.shutdown(tcp::socket::shutdown_both, ec);
    sock.close(ec);
  }

  // One log line per second at most while connections are refused at accept (a flood must not
  // flood the log too); `refused` counts those since the last line.
  void log_refused(std::string_view reason) {
    shared.met.connections_refused.fetch_add(1, std::memory_order_relaxed);
    ++refused_unlogged;
    auto now = steady_ms();
    if (last_refused_log_ms != 0 && now < last_refused_log_ms + 1000) return;
    last_refused_log_ms = now;
    log::warn("connection refused", {{"reason", std::string(reason)}, {"refused", std::to_string(refused_unlogged)},
                                     {"connections", std::to_string(shared.connections.load())},
                                     {"max_connections", std::to_string(shared.max_connections)}});
    refused_unlogged = 0;
  }

  // Accepts again after `ms` (a failing accept() is never retried in a busy loop).
  void accept_later(unsigned ms) {
    backoff->expires_after(std::chrono::milliseconds(ms));
    backoff->async_wait([this](beast::error_code ec) {
      if (ec || !acceptor->is_open()) return;
      do_accept();
    });
  }

  void do_accept() {
    auto& target = *workers[next_worker];
    next_worker = (next_worker + 1) % workers.size();
    acceptor->async_accept(target.ioc, [this, &target](beast::error_code ec, tcp::socket sock) {
      if (ec == net::error::operation_aborted || !acceptor->is_open()) return;
      if (ec == net::error::no_descriptors || ec.value() == EMFILE || ec.value() == ENFILE) {
        // At the descriptor cap (DECISIONS §11): free the spare, accept the waiting connection and
        // refuse it, then take the spare back. The peer learns at once, and the pending connection
        // is consumed, so the loop does not spin on a listening socket that stays readable.
        if (spare_fd >= 0) { ::close(spare_fd); spare_fd = -1; }
        beast::error_code ec2;
        acceptor->non_blocking(true, ec2);
        tcp::socket extra(acceptor->get_executor());
        acceptor->accept(extra, ec2);
        bool took = !ec2;
        if (took) refuse(extra);
        acceptor->non_blocking(false, ec2);
        spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        log_refused(ec.value() == ENFILE ? "system descriptor cap (ENFILE)" : "descriptor cap (EMFILE)");
        // accept() fails with EMFILE even when no connection is pending (the descriptor comes
        // first): then wait until one is, instead of spinning. Without a spare (another thread
        // took the descriptor), wait a little.
        if (spare_fd < 0) return accept_later(50);
        if (!took) {
          return acceptor->async_wait(tcp::acceptor::wait_read, [this](beast::error_code ec3) {
            if (ec3 || !acceptor->is_open()) return;
            do_accept();
          });
        }
        return do_accept();
      }
      if (ec) {
        // A connection aborted before accept is routine; anything else (ENOBUFS, ENOMEM, ...) may
        // persist: back off.
        if (ec == net::error::connection_aborted) return do_accept();
        log::warn("accept failed", {{"error", ec.message()}});
        return accept_later(50);
      }
      if (spare_fd < 0) spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      take(std::move(sock), target);
      // A reconnect storm fills the listen backlog faster than one accept per handler drains it
      // (the overflow turns into SYN retransmits, seconds late): take what else is already
      // waiting, without blocking, up to a bound that keeps this thread's other work going.
      beast::error_code ec2;
      acceptor->non_blocking(true, ec2);
      for (int i = 0; i < max_accepts_per_wakeup && !ec2; ++i) {
        auto& w = *workers[next_worker];
        tcp::socket more(w.ioc);
        acceptor->accept(more, ec2);
        if (ec2) break;   // would_block (nothing waiting) or an error the async path handles
        next_worker = (next_worker + 1) % workers.size();
        take(std::move(more), w);
      }
      acceptor->non_blocking(false, ec2);
      do_accept();
    });
  }

  static constexpr int max_accepts_per_wakeup = 64;

  // An accepted socket: refused at the limits, else handed to its worker's HTTP reader.
  void take(tcp::socket sock, worker& target) {
    if (shared.connections.load() >= shared.max_connections || shared.draining) {
      refuse(sock);
      log_refused(shared.draining ? "draining" : "max connections");
      return;
    }
    shared.connections.fetch_add(1);
    shared.met.connections_total.fetch_add(1, std::memory_order_relaxed);
    net::post(target.ioc, [this, &target, s = std::move(sock)]() mutable {
      beast::error_code ec3;
      s.set_option(tcp::no_delay(true), ec3);
      std::shared_ptr<void> counter = std::make_shared<conn_counter>(shared);
      beast::tcp_stream stream(std::move(s));
      std::make_shared<http_session>(shared, target, std::move(stream), beast::flat_buffer{}, true,
                                     std::move(counter))->run();
    });
  }

  void arm_tick(worker& w) {
    w.tick_timer.expires_after(std::chrono::milliseconds(shared.cfg.housekeeping_ms));
    w.tick_timer.async_wait([this, &w](beast::error_code ec) {
      if (ec) return;
      auto now = steady_ms();
      std::vector<conn_base*> snapshot(w.conns.begin(), w.conns.end());
      for (auto* c : snapshot)
        if (w.conns.contains(c)) c->tick(now);
      if (w.index == 0) {
        shared.sweep_leases(now);   // first: an expired lease leaves its presence itself
        shared.eng->sweep(now);
      }
      arm_tick(w);
    });
  }

  std::size_t disconnect(const disconnect_target& t) {
    std::size_t n = 0;
    {
      std::lock_guard lk(shared.reg_mu);
      for (auto& [client, e] : shared.registry)
        if (t.all || (!t.client.empty() && client == t.client) || (!t.user.empty() && e.user == t.user)) ++n;
    }
    // Polling clients: their leases are marked first (the next poll gets the disconnect frame at
    // once); a poll parked right now is answered by the per-worker pass below.
    n += shared.mark_leases(t);
    for (auto& w : workers) {
      net::post(w->ioc, [this, t, wp = w.get()] {
        std::vector<conn_base*> snapshot(wp->conns.begin(), wp->conns.end());
        for (auto* c : snapshot) {
          if (!wp->conns.contains(c)) continue;
          if (t.all || (!t.client.empty() && c->client_id() == t.client) || (!t.user.empty() && c->user_id() == t.user))
            c->server_disconnect(t, t.after_ms + shared.jitter(t.jitter_ms));
        }
      });
    }
    return n;
  }
};

server::server(config cfg) : impl_(std::make_unique<impl>(std::move(cfg))) {}

server::~server() {
  shutdown();
  wait();
}

unsigned short server::port() const { return impl_->port; }
const std::string& server::api_key() const { return impl_->shared.api_key; }
pushwire::server::metrics& server::stats() { return impl_->shared.met; }

bool server::start(std::string& error) {
  auto& im = *impl_;
  auto& s = im.shared;
  log::level lvl;
  if (log::parse_level(s.cfg.log_level, lvl)) log::set_level(lvl);
  if (s.cfg.api_key.empty()) {
    std::random_device rd;
    static constexpr char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    for (int i = 0; i < 32; ++i) s.api_key += digits[rd() % 36];
    log::warn("generated api key", {{"api_key", s.api_key}});
  } else {
    s.api_key = s.cfg.api_key;
  }
  rlimit rl{};
  std::size_t cap = 20000;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) cap = rl.rlim_cur;
  s.max_connections = s.cfg.max_connections ? s.cfg.max_connections : (cap > 128 ? cap - 64 : cap / 2);
  s.disconnect = [&im](const disconnect_target& t) { return im.disconnect(t); };

  unsigned n = s.cfg.threads ? s.cfg.threads : std::max(1u, std::thread::hardware_concurrency());
  std::vector<fanout_sink*> sinks;
  for (unsigned i = 0; i < n; ++i) {
    auto w = std::make_unique<worker>();
    w->index = i;
    w->coalesce_ns = s.cfg.write_coalesce_us * 1000;
    sinks.push_back(w.get());
    im.workers.push_back(std::move(w));
  }
  s.eng->set_sinks(sinks);

  beast::error_code ec;
  auto addr = net::ip::make_address(s.cfg.address, ec);
  if (ec) { error = "bad address " + s.cfg.address; return false; }
  im.acceptor = std::make_unique<tcp::acceptor>(im.workers[0]->ioc);
  tcp::endpoint ep(addr, static_cast<unsigned short>(s.cfg.port));
  im.acceptor->open(ep.protocol(), ec);
  if (!ec) im.acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) im.acceptor->bind(ep, ec);
  if (!ec) im.acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec) { error = "cannot listen on " + s.cfg.address + ":" + std::to_string(s.cfg.port) + ": " + ec.message(); return false; }
  im.port = im.acceptor->local_endpoint().port();
  im.spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  im.backoff = std::make_unique<net::steady_timer>(im.workers[0]->ioc);

  if (!s.cfg.port_file.empty()) {
    std::string tmp = s.cfg.port_file + ".tmp";
    { std::ofstream out(tmp); out << im.port << "\n"; }
    std::rename(tmp.c_str(), s.cfg.port_file.c_str());
  }
  log::info("listening", {{"address", s.cfg.address}, {"port", std::to_string(im.port)}});

  im.do_accept();
  for (auto& w : im.workers) {
    im.arm_tick(*w);
    w->thread = std::thread([wp = w.get()] { wp->ioc.run(); });
  }
  std::lock_guard lk(im.mu);
  im.started = true;
  return true;
}

void server::shutdown() {
  auto& im = *impl_;
  {
    std::lock_guard lk(im.mu);
    if (!im.started || im.stopping) return;
    im.stopping = true;
  }
  auto& s = im.shared;
  s.draining = true;
  net::post(im.workers[0]->ioc, [&im] {
    beast::error_code ec;
    im.acceptor->close(ec);
    im.backoff->cancel();
  });
  disconnect_target t;
  t.all = true;
  t.code = code::shutting_down;
  t.reason = "server shutting down";
  t.reconnect = true;
  t.after_ms = 0;
  t.jitter_ms = s.cfg.reconnect_jitter_ms;
  im.disconnect(t);
  // Drain: wait until every connection is gone or the deadline passes.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(s.cfg.shutdown_timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    std::size_t open = 0;
    {
      std::lock_guard lk(s.reg_mu);
      open = s.registry.size();
    }
    if (open == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));   // a drain poll, not synchronisation
  }
  for (auto& w : im.workers) w->ioc.stop();
  for (auto& w : im.workers)
    if (w->thread.joinable()) w->thread.join();
  if (im.spare_fd >= 0) ::close(im.spare_fd);
  im.spare_fd = -1;
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

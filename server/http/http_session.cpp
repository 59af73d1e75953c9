// The HTTP reader and router: reads one request at a time on a keep-alive connection, hands the
// streaming transports their connection, and answers everything else through the handlers.
#include "server/http/http_session.hpp"

#include "server/http/chunk_line.hpp"
#include "server/http/cors.hpp"
#include "server/http/handlers.hpp"
#include "server/http/query.hpp"
#include "server/http/responses.hpp"
#include "server/http/static_files.hpp"
#include "server/http/ws_key.hpp"
#include "server/pusher/pusher_api.hpp"
#include "server/ops/log.hpp"
#include "server/transport/client_address.hpp"
#include "server/transport/transports.hpp"

namespace pushwire::server {

using protocol::code;

http::response<http::string_body> make_response(node& n, const request& req, const http_reply& r) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), req.version()};
  res.set(http::field::server, "pushwire");
  res.set(http::field::content_type, r.content_type);
  for (auto& [k, v] : r.headers) res.set(k, v);
  add_cors(n.cfg, req, res.base());
  res.body() = r.body;
  res.keep_alive(req.keep_alive());
  res.prepare_payload();
  return res;
}

namespace {

// Takes the body out of `req` (the reply needs only its headers).
http_in to_http_in(request& req, std::string remote) {
  http_in in;
  in.method = std::string(req.method_string());
  std::string_view target = req.target();
  auto qpos = target.find('?');
  in.path = std::string(target.substr(0, qpos));
  if (qpos != std::string_view::npos) in.query = parse_query(target.substr(qpos + 1));
  in.body = std::move(req.body());
  auto auth = req[http::field::authorization];
  if (auth.size() > 7 && (auth.starts_with("Bearer ") || auth.starts_with("bearer "))) in.authorization = std::string(auth.substr(7));
  in.origin = std::string(req[http::field::origin]);
  in.remote = std::move(remote);
  in.content_type = std::string(req[http::field::content_type]);
  return in;
}

// Counts live TCP connections for the connection limit (decremented when the last owner goes).


class http_session : public std::enable_shared_from_this<http_session> {
 public:
  http_session(node& n, worker& w, http_stream stream, beast::flat_buffer buffer, bool first,
               std::shared_ptr<void> life, bool admin = false)
      : n_(n), w_(w), stream_(std::move(stream)), buffer_(std::move(buffer)), first_(first), life_(std::move(life)),
        admin_(admin) {}

  void run() { do_read(); }

  // A TLS connection: the handshake first, within the request timeout.
  void handshake() {
    stream_.expires_after(std::chrono::milliseconds(n_.cfg.request_timeout_ms));
    stream_.tls()->async_handshake(net::ssl::stream_base::server,
                                   [self = shared_from_this()](beast::error_code ec) {
                                     if (ec) {
                                       self->n_.met.tls_handshake_failures.fetch_add(1, std::memory_order_relaxed);
                                       log::debug("tls handshake failed", {{"error", ec.message()}});
                                       return self->close();
                                     }
                                     self->do_read();
                                   });
  }

 private:
  // One request: the parser is fed by hand (not http::async_read) so that two rules hold that Beast
  // alone does not keep. The head (request line, fields, blank line; bytes as sent) is counted
  // whole against --header-limit, however many fields or reads it comes in: over it is 431. And a
  // chunked body whose chunk line can never parse is 400 at once (chunk_line.hpp).
  void do_read() {
    parser_.emplace();
    // Beast applies its limit to what is not parsed yet; one more than ours never refuses first.
    parser_->header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(n_.cfg.header_limit + 1, UINT32_MAX)));
    parser_->body_limit(n_.cfg.body_limit);
    parser_->eager(false);
    head_bytes_ = 0;
    stream_.expires_after(std::chrono::milliseconds(first_ ? n_.cfg.request_timeout_ms : n_.cfg.idle_timeout_ms));
    parse_buffered();
  }

  // Feeds the parser what the buffer holds; reads more when it needs more.
  void parse_buffered() {
    const std::size_t limit = n_.cfg.header_limit;
    while (!parser_->is_done()) {
      if (buffer_.size() == 0) return read_more();
      beast::error_code ec;
      bool in_head = !parser_->is_header_done();
      auto used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (in_head) {
        head_bytes_ += used;
        // While the head is incomplete, everything buffered belongs to it.
        std::size_t seen = parser_->is_header_done() ? head_bytes_ : head_bytes_ + buffer_.size();
        if (seen > limit) return fail(http::error::header_limit);
        // A transfer coding other than chunked leaves the body's length unknown (RFC 9112 §6.3).
        if (parser_->is_header_done() && !parser_->chunked() && parser_->get().count(http::field::transfer_encoding))
          return fail(http::error::bad_transfer_encoding);
      }
      if (ec == http::error::need_more) {
        if (parser_->is_header_done() && parser_->chunked()) {
          auto pending = std::string_view(static_cast<const char*>(buffer_.data().data()), buffer_.size());
          if (broken_chunk_line(pending)) return fail(http::error::bad_chunk_extension);
          if (pending.size() > limit) return fail(http::error::bad_chunk);   // a chunk line or trailer that long
        }
        return read_more();
      }
      if (ec) return fail(ec);
    }
    on_request();
  }

  void read_more() {
    auto space = buffer_.prepare(beast::read_size(buffer_, 65536));   // as Beast sizes its reads
    stream_.async_read_some(space, [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      self->buffer_.commit(n);
      if (ec == net::error::eof && self->parser_->got_some()) {
        beast::error_code eof_ec;
        self->parser_->put_eof(eof_ec);   // a body that ends with the connection
        if (eof_ec) return self->fail(eof_ec);
        return self->on_request();
      }
      if (ec == net::error::eof) return self->close();
      if (ec) return self->fail(ec);
      self->parse_buffered();
    });
  }

  void fail(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == net::error::operation_aborted || ec == beast::error::timeout ||
        ec == net::error::connection_reset || ec == net::error::eof) {
      return close();
    }
    unsigned status = ec == http::error::header_limit ? 431 : ec == http::error::body_limit ? 413 : 400;
    code c = status == 413 ? code::message_too_big : code::bad_frame;
    std::string body = error_json(c, ec.message());
    std::string raw = "HTTP/1.1 " + std::to_string(status) + (status == 431 ? " Request Header Fields Too Large" : status == 413 ? " Payload Too Large" : " Bad Request") +
                      "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    auto self = shared_from_this();
    auto buf = std::make_shared<std::string>(std::move(raw));
    stream_.expires_after(std::chrono::seconds(2));
    net::async_write(stream_, net::buffer(*buf), [self, buf](beast::error_code, std::size_t) { self->close(); });
  }

  void on_request() {
    first_ = true;   // the next request must also complete within the request timeout once it starts
    request req = parser_->release();
    route(std::move(req));
  }

  void route(request req) {
    std::string_view target = req.target();
    std::string_view path = target.substr(0, target.find('?'));
    std::string remote = client_address(n_.cfg, stream_.socket(), req);

    // --admin-port splits the listeners: the operator's endpoints there and nowhere else, so the
    // public port (a firewall's open door) never shows the metrics or offers the API to guess keys
    // at. 404 rather than 403 on either side: "nothing here" is what it is.
    bool ops_path = path == "/metrics" || path.starts_with("/api/");
    if (admin_ ? !(ops_path || path == "/healthz" || path == "/readyz") : (ops_path && n_.cfg.admin_port >= 0)) {
      http_reply r;
      r.status = 404;
      r.content_type = "text/plain";
      r.body = "not found\n";
      return reply(req, r);
    }

    if (req.method() == http::verb::options) {
      http_reply r;
      r.status = 204;
      r.content_type = "text/plain";
      r.headers.emplace_back("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      r.headers.emplace_back("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID");
      r.headers.emplace_back("Access-Control-Max-Age", "600");
      if (!origin_allowed(n_.cfg, req[http::field::origin])) r.headers.clear();
      return reply(req, r);
    }
    if (path == "/ws" && websocket::is_upgrade(req)) {
      if (!n_.cfg.websocket) return reply(req, error_reply(code::bad_frame, "websocket transport is disabled"));
      if (!valid_websocket_key(req[http::field::sec_websocket_key]))
        return reply(req, error_reply(code::bad_frame, "Sec-WebSocket-Key must be base64 of 16 bytes"), true);
      if (!origin_allowed(n_.cfg, req[http::field::origin])) return reply(req, error_reply(code::permission_denied, "origin not allowed"), true);
      if (n_.draining) return reply(req, error_reply(code::shutting_down, "server is shutting down"), true);
      if (!take_ip_slot(req, remote, "websocket")) return;
      stream_.expires_never();
      return run_ws_session(n_, w_, stream_.take_link(), std::move(req), with_slot());
    }
    if (path.starts_with("/app/") && websocket::is_upgrade(req) && !n_.cfg.pusher_apps.empty()) {
      // The Pusher endpoint (docs/pusher.md): the same checks as /ws; the key is checked after the
      // upgrade, where pusher-js can read the close code.
      if (!n_.cfg.websocket) return reply(req, error_reply(code::bad_frame, "websocket transport is disabled"));
      if (!valid_websocket_key(req[http::field::sec_websocket_key]))
        return reply(req, error_reply(code::bad_frame, "Sec-WebSocket-Key must be base64 of 16 bytes"), true);
      if (!origin_allowed(n_.cfg, req[http::field::origin])) return reply(req, error_reply(code::permission_denied, "origin not allowed"), true);
      if (n_.draining) return reply(req, error_reply(code::shutting_down, "server is shutting down"), true);
      if (!take_ip_slot(req, remote, "pusher")) return;
      auto key = path.substr(5);
      auto query = target.find('?') == std::string_view::npos ? std::string_view{} : target.substr(target.find('?') + 1);
      auto q = parse_query(query);
      std::string version = q.contains("protocol") ? q["protocol"] : std::string();
      const pusher_app* app = find_app_by_key(n_.cfg.pusher_apps, key);   // before req moves: key views it
      stream_.expires_never();
      return run_pusher_session(n_, w_, stream_.take_link(), std::move(req), with_slot(), app, version);
    }
    if (path == "/sse" && req.method() == http::verb::get) {
      if (!n_.cfg.sse) return reply(req, error_reply(code::bad_frame, "sse transport is disabled"));
      if (!origin_allowed(n_.cfg, req[http::field::origin])) return reply(req, error_reply(code::permission_denied, "origin not allowed"), true);
      if (n_.draining) return reply(req, error_reply(code::shutting_down, "server is shutting down"), true);
      if (!take_ip_slot(req, remote, "sse")) return;
      stream_.expires_never();
      return run_sse_session(n_, w_, stream_.take_link(), std::move(req), with_slot());
    }
    if (path == "/poll" && req.method() == http::verb::get) {
      if (!n_.cfg.polling) return reply(req, error_reply(code::bad_frame, "polling transport is disabled"));
      if (n_.draining) return reply(req, error_reply(code::shutting_down, "server is shutting down"), true);
      if (!take_ip_slot(req, remote, "polling")) return;
      stream_.expires_never();
      return run_poll(n_, w_, std::move(stream_), std::move(buffer_), std::move(req), std::move(life_),
                      std::move(ip_slot_));
    }
    if (path == "/cmd") {
      if (!n_.cfg.sse && !n_.cfg.polling) return reply(req, error_reply(code::bad_frame, "one-way transports are disabled"));
      auto in = to_http_in(req, remote);
      return handle_cmd(n_, in, w_.subscribers, w_.index,
                        [&ioc = w_.ioc](std::function<void()> fn) { net::post(ioc, std::move(fn)); },
                        answer(std::move(req), remote));
    }
    if (path.starts_with("/api/")) {
      auto in = to_http_in(req, remote);
      return handle_api(n_, in, answer(std::move(req), remote));
    }
    if (path.starts_with("/apps/")) {   // the Pusher HTTP API (server/pusher/pusher_api.cpp)
      auto in = to_http_in(req, remote);
      return handle_pusher_api(n_, in, answer(std::move(req), remote));
    }
    if (path == "/demo/publish" && n_.cfg.demo) {
      auto in = to_http_in(req, remote);
      return handle_demo_publish(n_, in, answer(std::move(req), remote));
    }
    // Liveness: the process answers. Readiness: it takes new clients; 503 from the moment draining
    // starts, while the listener still answers during the drain, so a balancer moves new clients
    // elsewhere before the port closes.
    if (path == "/healthz" || path == "/readyz") {
      http_reply r;
      r.content_type = "text/plain";
      bool refuse = path == "/readyz" && n_.draining;
      r.status = refuse ? 503 : 200;
      r.body = refuse ? "draining\n" : "ok\n";
      return reply(req, r);
    }
    if (path == "/metrics") {
      auto hs = n_.the_hub().stats();
      n_.met.channels.store(hs.channels, std::memory_order_relaxed);
      n_.met.history_bytes.store(hs.bytes, std::memory_order_relaxed);
      n_.met.connections_polling.store(n_.leases.size(), std::memory_order_relaxed);
      http_reply r;
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = n_.met.render_prometheus();
      return reply(req, r);
    }
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      http_reply r;
      r.status = 405;
      r.content_type = "text/plain";
      r.body = "method not allowed\n";
      return reply(req, r);
    }
    auto q = parse_query(target.find('?') == std::string_view::npos ? std::string_view{} : target.substr(target.find('?') + 1));
    reply(req, serve_static(n_.cfg, static_request{.path = path,
                                                   .version = q["v"],
                                                   .if_none_match = req[http::field::if_none_match],
                                                   .if_modified_since = req[http::field::if_modified_since],
                                                   .accept_encoding = req[http::field::accept_encoding]}));
  }

  // --max-connections-per-ip: takes a slot for a WebSocket, SSE stream or long-poll from `remote`
  // (into ip_slot_), or answers 503 with error 4015, logs and counts the refusal.
  bool take_ip_slot(const request& req, const std::string& remote, std::string_view transport) {
    if (n_.ips.acquire(remote, ip_slot_)) return true;
    n_.met.connections_refused.fetch_add(1, std::memory_order_relaxed);
    log::warn("connection refused",
              {{"reason", "too many connections from this address"}, {"remote", remote},
               {"transport", std::string(transport)}, {"limit", std::to_string(n_.ips.limit())}});
    reply(req, error_reply(code::too_many_connections, "too many connections from this address"), true);
    return false;
  }
  // The connection-limit slot and the per-address slot, held together by a streaming transport.
  std::shared_ptr<void> with_slot() {
    if (!ip_slot_) return std::move(life_);
    return std::make_shared<std::pair<std::shared_ptr<void>, std::shared_ptr<void>>>(std::move(life_), std::move(ip_slot_));
  }

  // A handler's answer may come later (a store behind the network): it is written on this
  // connection's thread, and keeps the request alive until then.
  // API calls are logged at debug, when answered: method, path (never the query: it may hold a
  // token), status, time and the client's address (client_address.hpp).
  http_respond answer(request req, std::string remote) {
    auto r = std::make_shared<request>(std::move(req));
    return [self = shared_from_this(), r, remote = std::move(remote), start = n_.clk.now_ms()](http_reply rep) {
      if (log::enabled(log::level::debug)) {
        std::string_view target = r->target();
        log::debug("http request", {{"method", r->method_string()}, {"path", target.substr(0, target.find('?'))},
                                    {"status", std::to_string(rep.status)}, {"remote", remote},
                                    {"ms", std::to_string(self->n_.clk.now_ms() - start)}});
      }
      net::dispatch(self->w_.ioc, [self, r, rep = std::move(rep)] { self->reply(*r, rep); });
    };
  }

  void reply(const request& req, const http_reply& r, bool close_after = false) {
    auto res = std::make_shared<http::response<http::string_body>>(make_response(n_, req, r));
    if (close_after) res->keep_alive(false);
    if (req.method() == http::verb::head) res->body().clear();
    bool keep = res->keep_alive();
    stream_.expires_after(std::chrono::milliseconds(n_.cfg.request_timeout_ms));
    http::async_write(stream_, *res, [self = shared_from_this(), res, keep](beast::error_code ec, std::size_t n) {
      self->n_.met.bytes_sent.fetch_add(n, std::memory_order_relaxed);
      if (ec || !keep) return self->close();
      self->first_ = false;
      self->do_read();
    });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp_socket::shutdown_send, ec);
    stream_.close();
  }

  node& n_;
  worker& w_;
  http_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool first_;
  std::size_t head_bytes_ = 0;   // of the request being read
  std::shared_ptr<void> life_;   // the connection-limit slot, passed on with the stream
  std::shared_ptr<void> ip_slot_;   // the per-address slot of the transport being started
  bool admin_;                      // accepted on --admin-port
};


}  // namespace

void start_http(node& n, worker& w, tcp_socket sock, std::shared_ptr<void> life,
                std::shared_ptr<net::ssl::context> tls, bool admin) {
  bool secure = tls != nullptr;
  auto s = std::make_shared<http_session>(n, w, http_stream(std::move(sock), std::move(tls)), beast::flat_buffer{}, true,
                                          std::move(life), admin);
  if (secure) s->handshake();
  else s->run();
}

void continue_http(node& n, worker& w, http_stream stream, beast::flat_buffer buffer, std::shared_ptr<void> life) {
  std::make_shared<http_session>(n, w, std::move(stream), std::move(buffer), false, std::move(life))->run();
}

void write_error_and_close(node& n, socket_link stream, const request& req, code c, std::string_view reason) {
  write_error_and_close(n, stream.as_http(), req, c, reason);
}

void write_error_and_close(node& n, http_stream stream, const request& req, code c, std::string_view reason) {
  auto st = std::make_shared<http_stream>(std::move(stream));
  auto res = std::make_shared<http::response<http::string_body>>(make_response(n, req, error_reply(c, reason)));
  res->keep_alive(false);
  st->expires_after(std::chrono::seconds(5));
  http::async_write(*st, *res, [st, res](beast::error_code, std::size_t) {
    beast::error_code ec;
    st->socket().shutdown(tcp_socket::shutdown_send, ec);
    st->close();
  });
}

}  // namespace pushwire::server

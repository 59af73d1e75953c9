// Small blocking Beast clients for the server tests. Every read has a deadline, so a missing frame
// fails the test instead of hanging it. (SO_RCVTIMEO alone does not do it: after the timeout, Asio's
// blocking read polls the socket again with no limit. Reads run as async operations on the client's
// own io_context for at most the deadline, then are cancelled.)
#pragma once
#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <string>
#include <thread>
#include <memory>
#include <vector>

#include "protocol/frame_codec.hpp"

namespace test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
namespace pp = pushwire::protocol;

inline void set_timeout(tcp::socket& s, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

constexpr int default_timeout_ms = 5000;

// Starts an async operation with `start(handler)` and runs `ioc` until it completes or `ms` pass;
// then cancels it and reports timed_out. Returns the bytes the operation reported.
template <class Start>
std::size_t run_with_deadline(net::io_context& ioc, tcp::socket& s, int ms, beast::error_code& ec, Start&& start) {
  bool done = false;
  std::size_t bytes = 0;
  start([&](beast::error_code e, std::size_t n) {
    ec = e;
    bytes = n;
    done = true;
  });
  ioc.restart();
  ioc.run_for(std::chrono::milliseconds(ms));
  if (!done) {
    beast::error_code ignored;
    s.cancel(ignored);
    ioc.restart();
    ioc.run();
    ec = net::error::timed_out;
  }
  return bytes;
}

// Polls `f` until it holds or `d` passes (tests never sleep to synchronise).
template <class F>
bool eventually(F f, std::chrono::milliseconds d = std::chrono::seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + d;
  while (!f()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

inline tcp::socket connect_socket(net::io_context& ioc, unsigned short port, int timeout_ms = default_timeout_ms) {
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  set_timeout(s, timeout_ms);
  return s;
}

struct http_result {
  unsigned status = 0;
  std::string body;
  http::fields headers;
};

inline http_result http_call(unsigned short port, http::verb method, std::string target, std::string body = {},
                             std::vector<std::pair<std::string, std::string>> headers = {}, int timeout_ms = 5000) {
  net::io_context ioc;
  auto s = connect_socket(ioc, port, timeout_ms);
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "127.0.0.1");
  for (auto& [k, v] : headers) req.set(k, v);
  req.body() = std::move(body);
  req.prepare_payload();
  http::write(s, req);
  beast::flat_buffer buf;
  http::response_parser<http::string_body> p;
  p.body_limit(64 << 20);
  beast::error_code ec;
  run_with_deadline(ioc, s, timeout_ms, ec, [&](auto h) { http::async_read(s, buf, p, std::move(h)); });
  http_result r;
  if (ec) return r;
  r.status = p.get().result_int();
  r.body = p.get().body();
  r.headers = p.get().base();
  return r;
}

// The HTTP API with a key (tests' servers use "key").
inline http_result api_get(unsigned short port, const std::string& target, const std::string& key = "key") {
  return http_call(port, http::verb::get, target, {}, {{"Authorization", "Bearer " + key}});
}
inline http_result api_post(unsigned short port, const std::string& target, std::string body,
                            const std::string& key = "key") {
  return http_call(port, http::verb::post, target, std::move(body), {{"Authorization", "Bearer " + key}});
}

// A keep-alive HTTP client for tests that publish in a loop (one TCP connection, many requests).
class api_client {
 public:
  explicit api_client(unsigned short port) : s_(connect_socket(ioc_, port)) {}
  http_result post(const std::string& target, std::string body, const std::string& key = "key") {
    http::request<http::string_body> req{http::verb::post, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::authorization, "Bearer " + key);
    req.body() = std::move(body);
    req.prepare_payload();
    http_result r;
    beast::error_code ec;
    http::write(s_, req, ec);
    if (ec) return r;
    http::response<http::string_body> res;
    run_with_deadline(ioc_, s_, default_timeout_ms, ec, [&](auto h) { http::async_read(s_, buf_, res, std::move(h)); });
    if (ec) return r;
    r.status = res.result_int();
    r.body = res.body();
    return r;
  }

 private:
  net::io_context ioc_;
  tcp::socket s_;
  beast::flat_buffer buf_;
};

inline std::vector<std::string> lines(std::string_view text) {
  std::vector<std::string> out;
  pp::split_batch(text, [&](std::string_view l) { out.emplace_back(l); });
  return out;
}

inline pp::frame parse(std::string_view line) {
  pp::frame f;
  pp::decode_error e;
  if (!pp::decode_frame(line, f, e)) f.reason = "UNPARSED: " + std::string(line);
  return f;
}

class ws_client {
 public:
  explicit ws_client(unsigned short port, std::string origin = {}) : ws_(connect_socket(ioc_, port)) {
    if (!origin.empty())
      ws_.set_option(websocket::stream_base::decorator([origin](websocket::request_type& r) { r.set(http::field::origin, origin); }));
    ws_.handshake(res_, "127.0.0.1", "/ws", ec_);
  }
  bool ok() const { return !ec_; }
  const websocket::response_type& response() const { return res_; }
  // A failed write (the server may close while a refused frame is still being sent) shows up as
  // the close the next read reports, so it is recorded rather than thrown.
  void send(std::string_view text) {
    ws_.text(true);
    beast::error_code ec;
    ws_.write(net::buffer(text), ec);
    if (ec) last_error = ec;
  }
  // Next frame (reads another WebSocket message when needed); a frame with reason "TIMEOUT" on failure.
  pp::frame next() {
    while (queue_.empty()) {
      beast::flat_buffer b;
      beast::error_code ec;
      run_with_deadline(ioc_, ws_.next_layer(), default_timeout_ms, ec, [&](auto h) { ws_.async_read(b, std::move(h)); });
      if (ec) {
        last_error = ec;
        pp::frame f;
        f.reason = "TIMEOUT/CLOSED: " + ec.message();
        f.kind = pp::frame_kind::ping;
        f.error_code = pp::code::internal_error;
        return f;
      }
      ++messages;
      for (auto& l : lines(beast::buffers_to_string(b.data()))) queue_.push_back(l);
    }
    auto l = queue_.front();
    queue_.erase(queue_.begin());
    return parse(l);
  }
  // Next frame that is not a ping.
  pp::frame next_non_ping() {
    for (;;) {
      auto f = next();
      if (f.kind != pp::frame_kind::ping || f.error_code != pp::code::ok) return f;
    }
  }
  pp::frame connect(std::string token = {}) {
    send(token.empty() ? R"({"cmd":"connect","id":1})" : R"({"cmd":"connect","id":1,"token":")" + token + "\"}");
    return next_non_ping();
  }
  void close() { beast::error_code ec; ws_.next_layer().close(ec); }
  websocket::close_reason close_reason() const { return ws_.reason(); }
  websocket::stream<tcp::socket>& stream() { return ws_; }
  beast::error_code last_error;
  int messages = 0;

 private:
  net::io_context ioc_;
  websocket::stream<tcp::socket> ws_;
  websocket::response_type res_;
  beast::error_code ec_;
  std::vector<std::string> queue_;
};

// `n` WebSocket clients, each connected and subscribed to `channel` (its `subscribed` reply read).
inline std::vector<std::unique_ptr<ws_client>> subscribed_ws_clients(unsigned short port, int n, const std::string& channel) {
  std::vector<std::unique_ptr<ws_client>> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(std::make_unique<ws_client>(port));
    out.back()->connect();
    out.back()->send(R"({"cmd":"subscribe","id":2,"channel":")" + channel + "\"}");
    EXPECT_EQ(out.back()->next_non_ping().kind, pp::frame_kind::subscribed) << "subscriber " << i;
  }
  return out;
}

struct sse_event {
  std::string event, id, data;
  bool timeout = false;
};

class sse_client {
 public:
  sse_client(unsigned short port, std::string target, std::vector<std::pair<std::string, std::string>> headers = {})
      : s_(connect_socket(ioc_, port)) {
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    for (auto& [k, v] : headers) req.set(k, v);
    http::write(s_, req);
    http::response_parser<http::empty_body> p;
    p.skip(true);
    beast::error_code ec;
    run_with_deadline(ioc_, s_, default_timeout_ms, ec, [&](auto h) { http::async_read_header(s_, buf_, p, std::move(h)); });
    if (!ec) status = p.get().result_int();
    // Whatever follows the header is event text.
    raw_ = beast::buffers_to_string(buf_.data());
    buf_.consume(buf_.size());
  }
  unsigned status = 0;
  sse_event next() {
    for (;;) {
      auto end = raw_.find("\n\n");
      if (end != std::string::npos) {
        std::string block = raw_.substr(0, end);
        raw_.erase(0, end + 2);
        sse_event e;
        for (auto& l : lines(block)) {
          if (l.starts_with("event: ")) e.event = l.substr(7);
          else if (l.starts_with("id: ")) e.id = l.substr(4);
          else if (l.starts_with("data: ")) e.data = l.substr(6);
        }
        if (e.data.empty()) continue;   // retry: block
        return e;
      }
      char tmp[4096];
      beast::error_code ec;
      auto n = run_with_deadline(ioc_, s_, default_timeout_ms, ec, [&](auto h) { s_.async_read_some(net::buffer(tmp), std::move(h)); });
      if (ec) { sse_event e; e.timeout = true; return e; }
      raw_.append(tmp, n);
    }
  }
  // Next event that is not a ping.
  sse_event next_non_ping() {
    for (;;) {
      auto e = next();
      if (e.event != "ping") return e;
    }
  }
  void close() { beast::error_code ec; s_.close(ec); }
  tcp::socket& socket() { return s_; }

 private:
  net::io_context ioc_;
  tcp::socket s_;
  beast::flat_buffer buf_;
  std::string raw_;
};

}  // namespace test

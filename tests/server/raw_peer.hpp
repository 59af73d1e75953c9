// A raw TCP peer for hostile-input tests: it writes exactly the bytes it is given (no HTTP or
// WebSocket library in between to fix them up) and reads what the server answers, each read with a
// deadline. Also a minimal WebSocket frame writer (client frames, masked or not) and a reader of
// server frames, so that malformed frames can be sent on purpose.
#pragma once
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/server/test_client.hpp"

namespace test {

class raw_peer {
 public:
  explicit raw_peer(unsigned short port) : s_(connect_socket(ioc_, port)) {}
  ~raw_peer() { close(); }

  void send(std::string_view bytes) {
    beast::error_code ec;
    net::write(s_, net::buffer(bytes.data(), bytes.size()), ec);
  }
  // Reads one HTTP response (status 0: none within `ms`, or the connection closed first).
  unsigned read_status(int ms = 3000, std::string* body = nullptr) {
    http::response_parser<http::string_body> p;
    p.body_limit(1 << 20);
    beast::error_code ec;
    run_with_deadline(ioc_, s_, ms, ec, [&](auto h) { http::async_read(s_, buf_, p, std::move(h)); });
    if (ec) return 0;
    if (body) *body = p.get().body();
    return p.get().result_int();
  }
  // Reads until at least `n` bytes are buffered; false on close or deadline.
  bool fill(std::size_t n, int ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (buf_.size() < n) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0) return false;
      beast::error_code ec;
      auto space = buf_.prepare(4096);
      auto got = run_with_deadline(ioc_, s_, static_cast<int>(left), ec, [&](auto h) { s_.async_read_some(space, std::move(h)); });
      buf_.commit(got);
      if (ec && ec != net::error::timed_out) eof_ = true;
      if (ec) return buf_.size() >= n;
    }
    return true;
  }
  // ---- WebSocket ----
  // The opening handshake; true when the server answered 101.
  bool ws_upgrade() {
    send("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    http::response_parser<http::empty_body> p;
    p.skip(true);
    beast::error_code ec;
    run_with_deadline(ioc_, s_, 3000, ec, [&](auto h) { http::async_read_header(s_, buf_, p, std::move(h)); });
    return !ec && p.get().result_int() == 101;
  }
  // One client frame: `b0` is FIN/RSV/opcode, the payload is masked when `masked`. `len_override`
  // replaces the payload length field (the 64-bit form) to lie about the size.
  static std::string frame(std::uint8_t b0, std::string_view payload, bool masked = true,
                           std::optional<std::uint64_t> len_override = std::nullopt) {
    std::string f(1, static_cast<char>(b0));
    std::uint8_t mask_bit = masked ? 0x80 : 0;
    std::uint64_t len = len_override.value_or(payload.size());
    if (len_override || len > 0xffff) {
      f += static_cast<char>(mask_bit | 127);
      for (int i = 7; i >= 0; --i) f += static_cast<char>((len >> (8 * i)) & 0xff);
    } else if (len > 125) {
      f += static_cast<char>(mask_bit | 126);
      f += static_cast<char>(len >> 8);
      f += static_cast<char>(len & 0xff);
    } else {
      f += static_cast<char>(mask_bit | len);
    }
    const char key[4] = {0x11, 0x22, 0x33, 0x44};
    if (masked) f.append(key, 4);
    for (std::size_t i = 0; i < payload.size(); ++i) f += masked ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i];
    return f;
  }
  static std::string text(std::string_view payload) { return frame(0x81, payload); }
  static std::string close_frame(std::string_view payload) { return frame(0x88, payload); }

  // One server frame: its opcode and payload; `status` says whether one came.
  struct ws_frame {
    enum { got, ended, timed_out } status = timed_out;
    int op = 0;
    std::string payload;
  };
  ws_frame read_frame(int ms = 3000) {
    ws_frame f;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    auto left = [&] {
      return static_cast<int>(std::max<long>(1, std::chrono::duration_cast<std::chrono::milliseconds>(
                                                    deadline - std::chrono::steady_clock::now()).count()));
    };
    auto need = [&](std::size_t n) {
      if (fill(n, left())) return true;
      f.status = eof_ ? ws_frame::ended : ws_frame::timed_out;
      return false;
    };
    if (!need(2)) return f;
    auto byte = [&](std::size_t i) { return static_cast<const std::uint8_t*>(buf_.data().data())[i]; };
    std::uint64_t len = byte(1) & 0x7f;
    std::size_t head = len == 126 ? 4 : len == 127 ? 10 : 2;
    if (!need(head)) return f;
    if (len == 126) len = (std::uint64_t{byte(2)} << 8) | byte(3);
    if (len == 127) {
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | byte(2 + i);
    }
    if (!need(head + len)) return f;
    f.status = ws_frame::got;
    f.op = byte(0) & 0x0f;
    f.payload.assign(static_cast<const char*>(buf_.data().data()) + head, len);
    buf_.consume(head + len);
    return f;
  }
  // Reads server frames until the close frame: its code (1005 when it has none), 0 when the
  // connection ended without one, -1 when nothing ended within `ms`. Text messages on the way go
  // to `texts`.
  int ws_close_code(int ms = 3000, std::vector<std::string>* texts = nullptr) {
    for (;;) {
      auto f = read_frame(ms);
      if (f.status == ws_frame::ended) return 0;
      if (f.status == ws_frame::timed_out) return -1;
      if (f.op == 0x8)
        return f.payload.size() >= 2 ? (static_cast<std::uint8_t>(f.payload[0]) << 8) | static_cast<std::uint8_t>(f.payload[1]) : 1005;
      if (f.op == 0x1 && texts) texts->push_back(f.payload);
    }
  }
  // The next text message, or "" when none comes within `ms`.
  std::string ws_text(int ms = 3000) {
    for (;;) {
      auto f = read_frame(ms);
      if (f.status != ws_frame::got || f.op == 0x8) return {};
      if (f.op == 0x1) return f.payload;
    }
  }

  void close() {
    beast::error_code ec;
    s_.close(ec);
  }

 private:
  net::io_context ioc_;
  tcp::socket s_;
  beast::flat_buffer buf_;
  bool eof_ = false;   // the server ended the connection
};

}  // namespace test

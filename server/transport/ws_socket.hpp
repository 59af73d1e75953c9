// The socket under the WebSocket stream, shared by two writers that must never interleave bytes:
// Beast (handshake reply, pongs to client pings, pings, the close frame) and the session's own data
// path (ws_session: publications framed by hand and written with a direct non-blocking sendmsg).
//
// Why the data path bypasses Beast: on the fan-out path, a Beast message write is a chain of
// composed operations (websocket write_some_op, asio write_op, a reactor op of ~1.3 KB allocated per
// write) plus a posted completion; measured with perf, that was a sixth of the server's CPU per
// one-frame write. A direct sendmsg that completes at once costs nothing of that; only a write the
// kernel cannot take whole waits for writability.
//
// Under TLS the data path's write is one SSL write through the same SSL stream Beast writes on
// (stream_conn's TLS branch); the arbitration is the same, since an SSL stream takes one write at a
// time.
//
// Arbitration: a writer owns the socket from its first byte to its last. Beast's composed write calls
// async_write_some again from inside the previous completion handler, so "Beast is idle" is known
// when that handler returns without starting another write. Whoever is blocked by the other waits on
// `gate_` (a timer that never expires; cancel() wakes every waiter) and checks again.
#pragma once
#include <boost/asio.hpp>
#include <boost/beast/websocket/teardown.hpp>
#include <utility>

#include "server/transport/maybe_tls.hpp"

namespace pushwire::server {

// The header of one unmasked, unfragmented text message of `payload` bytes (RFC 6455 §5.2), written
// to `out` (room for 10 bytes); returns its length. The fast write paths frame their messages
// themselves and send them with the shared payload buffers in one gather write.
inline std::size_t ws_text_header(unsigned char* out, std::size_t payload) {
  std::size_t h = 0;
  out[h++] = 0x81;   // FIN + text
  if (payload < 126) {
    out[h++] = static_cast<unsigned char>(payload);
  } else if (payload < 65536) {
    out[h++] = 126;
    for (int shift = 8; shift >= 0; shift -= 8) out[h++] = static_cast<unsigned char>(payload >> shift);
  } else {
    out[h++] = 127;
    for (int shift = 56; shift >= 0; shift -= 8) out[h++] = static_cast<unsigned char>(payload >> shift);
  }
  return h;
}

class ws_socket {
 public:
  using socket_type = boost::asio::ip::tcp::socket;
  using executor_type = socket_link::executor_type;

  explicit ws_socket(socket_link s) : s_(std::move(s)), gate_(s_.get_executor()) {
    gate_.expires_at(boost::asio::steady_timer::time_point::max());
  }

  executor_type get_executor() noexcept { return s_.get_executor(); }
  socket_type& socket() { return s_.socket(); }
  tls_stream* tls() { return s_.tls(); }
  void close(boost::system::error_code& ec) {
    s_.close(ec);
    gate_.cancel();
  }

  template <class Buffers, class Handler>
  void async_read_some(const Buffers& b, Handler&& h) {
    s_.async_read_some(b, std::forward<Handler>(h));
  }

  template <class Buffers, class Handler>
  void async_write_some(const Buffers& b, Handler&& h) {
    if (raw_busy_) {
      ++beast_waiting_;
      ++waiters_;
      gate_.async_wait([this, b, h = std::forward<Handler>(h)](boost::system::error_code) mutable {
        --beast_waiting_;
        --waiters_;
        async_write_some(b, std::move(h));
      });
      return;
    }
    beast_busy_ = true;
    s_.async_write_some(b, [this, h = std::forward<Handler>(h)](boost::system::error_code ec,
                                                                std::size_t n) mutable {
      beast_busy_ = false;
      std::move(h)(ec, n);
      if (!beast_busy_) wake();   // Beast's write is over: wake a waiting data write
    });
  }

  // The data path: true while Beast is in the middle of a write or waits for its turn (a pong must
  // not wait behind a long queue of data: Beast's read stops until its pong is out); then
  // wait_turn() and check again.
  bool beast_busy() const { return beast_busy_ || beast_waiting_; }
  template <class Handler>
  void wait_turn(Handler&& h) {
    ++waiters_;
    gate_.async_wait([this, h = std::forward<Handler>(h)](boost::system::error_code ec) mutable {
      --waiters_;
      std::move(h)(ec);
    });
  }
  // The data path owns the socket from begin_raw() to end_raw().
  void begin_raw() { raw_busy_ = true; }
  void end_raw() {
    raw_busy_ = false;
    wake();
  }

 private:
  socket_link s_;
  boost::asio::steady_timer gate_;
  // Cancelling a timer takes the reactor's lock: only when someone waits (not once per write).
  void wake() {
    if (waiters_) gate_.cancel();
  }

  bool beast_busy_ = false, raw_busy_ = false;
  int beast_waiting_ = 0, waiters_ = 0;
};

// Beast finds these by argument-dependent lookup when it closes the WebSocket.
inline void beast_close_socket(ws_socket& s) {
  boost::system::error_code ec;
  s.close(ec);
}
// Under TLS too the teardown is TCP's (FIN, then read to EOF): no close_notify (maybe_tls.hpp).
inline void teardown(boost::beast::role_type role, ws_socket& s, boost::system::error_code& ec) {
  boost::beast::websocket::teardown(role, s.socket(), ec);
}
template <class Handler>
void async_teardown(boost::beast::role_type role, ws_socket& s, Handler&& h) {
  boost::beast::websocket::async_teardown(role, s.socket(), std::forward<Handler>(h));
}

}  // namespace pushwire::server

// A connection's byte stream, plain or TLS, chosen per connection at run time (one listener serves
// either, by --tls-cert). Two shapes:
//   http_stream = maybe_tls<tcp_stream>  the HTTP reader and long-poll (Beast's timeouts)
//   socket_link = maybe_tls<tcp_socket>        WebSocket and SSE once they own the connection
// A plain connection keeps exactly the types it had before TLS existed (a bare socket under the
// streaming transports, so their fast path still writes with sendmsg on the descriptor). A TLS
// connection lives in one heap-allocated Asio SSL stream over a tcp_stream for its whole life —
// the OpenSSL session cannot move to another stream type — and passes from the HTTP reader to its
// transport as that one object.
//
// Each async call picks its branch at run time; both branches are instantiated, so any handler
// Beast or Asio passes works. The TLS stream keeps the context it was made from alive, so a reload
// (SIGHUP) never frees a context an open connection still uses.
#pragma once
#include <boost/asio/ssl.hpp>
#include <memory>
#include <type_traits>
#include <utility>

#include "server/transport/worker.hpp"

namespace pushwire::server {

using tls_stream = net::ssl::stream<tcp_stream>;

struct tls_conn {
  tls_conn(tcp_socket s, std::shared_ptr<net::ssl::context> c) : ctx(std::move(c)), stream(tcp_stream(std::move(s)), *ctx) {}
  std::shared_ptr<net::ssl::context> ctx;   // declared first: outlives the stream
  tls_stream stream;
};

template <class Plain>
class maybe_tls {
 public:
  using executor_type = io_executor;

  explicit maybe_tls(Plain p) : plain_(std::move(p)) {}
  explicit maybe_tls(std::unique_ptr<tls_conn> t) : plain_(t->stream.get_executor()), tls_(std::move(t)) {}
  // A new connection: TLS when `ctx` is set.
  maybe_tls(tcp_socket s, std::shared_ptr<net::ssl::context> ctx)
      : plain_(ctx ? Plain(s.get_executor()) : Plain(std::move(s))) {
    if (ctx) tls_ = std::make_unique<tls_conn>(std::move(s), std::move(ctx));
  }

  executor_type get_executor() noexcept { return plain_.get_executor(); }
  // The TLS stream, or null for a plain connection.
  tls_stream* tls() noexcept { return tls_ ? &tls_->stream : nullptr; }
  // The TCP socket at the bottom (addresses, shutdown, close; the plain write path's descriptor).
  tcp_socket& socket() {
    if (tls_) return tls_->stream.next_layer().socket();
    if constexpr (std::is_same_v<Plain, tcp_socket>) return plain_;
    else return plain_.socket();
  }

  template <class Buffers, class Handler>
  void async_read_some(const Buffers& b, Handler&& h) {
    if (tls_) tls_->stream.async_read_some(b, std::forward<Handler>(h));
    else plain_.async_read_some(b, std::forward<Handler>(h));
  }
  template <class Buffers, class Handler>
  void async_write_some(const Buffers& b, Handler&& h) {
    if (tls_) tls_->stream.async_write_some(b, std::forward<Handler>(h));
    else plain_.async_write_some(b, std::forward<Handler>(h));
  }

  // No close_notify: a peer that sees the TCP close after a complete HTTP message or WebSocket
  // close frame has all it needs, and waiting for its close_notify could hang a shutdown.
  void close(beast::error_code& ec) { socket().close(ec); }
  void close() {
    beast::error_code ec;
    close(ec);
  }

  // tcp_stream only: Beast's per-operation timeouts.
  template <class Duration>
  void expires_after(Duration d) { timed().expires_after(d); }
  void expires_never() { timed().expires_never(); }

  // tcp_stream only: hands the connection to a streaming transport (the plain socket alone, or the
  // whole TLS stream with its timer switched off).
  maybe_tls<tcp_socket> take_link() {
    if (tls_) {
      tls_->stream.next_layer().expires_never();
      return maybe_tls<tcp_socket>(std::move(tls_));
    }
    return maybe_tls<tcp_socket>(plain_.release_socket());
  }

  // tcp_socket only: back under Beast's timeouts (a transport refusing its request).
  maybe_tls<tcp_stream> as_http() {
    if (tls_) return maybe_tls<tcp_stream>(std::move(tls_));
    return maybe_tls<tcp_stream>(tcp_stream(std::move(plain_)));
  }

 private:
  tcp_stream& timed() { return tls_ ? tls_->stream.next_layer() : plain_; }

  Plain plain_;   // unused (but constructed on the executor) for a TLS connection
  std::unique_ptr<tls_conn> tls_;
};

using http_stream = maybe_tls<tcp_stream>;
using socket_link = maybe_tls<tcp_socket>;

}  // namespace pushwire::server

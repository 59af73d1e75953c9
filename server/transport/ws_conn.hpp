// What the two WebSocket endpoints share — Pushwire's own /ws (ws_session.cpp) and the Pusher
// endpoint's /app/{key} (server/pusher/pusher_ws_session.cpp): the stream connection
// (stream_conn.hpp) over a Beast websocket on a plain or TLS link, its accept, read loop, probe,
// close and teardown. The endpoint (`Derived`) adds its framing and its protocol:
//   static constexpr std::string_view transport_name      for the log lines
//   std::size_t item_size(const outgoing&) const, void build_write(...)   as stream_conn asks
//   void on_accepted()                       registry and metrics, once the handshake is done
//   void on_message(std::string_view text, std::uint64_t now)   one complete message
//   void before_release()                    the protocol session learns the connection is gone
//   void after_release(bool accepted)        registry and metrics undone
//
// Data frames bypass Beast's write path (stream_conn's gather write); Beast still writes the
// handshake reply, pongs, pings and the close frame, and ws_socket.hpp keeps the two writers from
// interleaving bytes.
//
// Memory per idle connection: the stream sits directly on the link (no tcp_stream and its timers
// under it), an idle read waits with a 64-byte buffer instead of Beast's default 1.5 KB, and the
// dead-peer check is the stream machine's deadline, run by the housekeeping tick, rather than one
// armed Beast timer per connection.
#pragma once
#include <memory>
#include <string>

#include "protocol/json_scan.hpp"
#include "server/transport/stream_conn.hpp"
#include "server/transport/ws_socket.hpp"

namespace pushwire::server {

template <class Derived>
class ws_conn : public stream_conn<Derived> {
  using base = stream_conn<Derived>;

 public:
  static constexpr std::size_t max_items_per_write = 64;

  void run(request req) {
    this->note_remote(req);
    // Beast times the handshake and the closing handshake; the open connection's dead-peer check is
    // the stream machine's.
    ws_.set_option(websocket::stream_base::timeout{
        std::chrono::milliseconds(this->node_.cfg.request_timeout_ms), websocket::stream_base::none(), false});
    ws_.control_callback([this](websocket::frame_type, beast::string_view) { this->stream_.received(this->node_.clk.now_ms()); });
    ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
      res.set(http::field::server, "pushwire");
    }));
    // Envelope allowance over the payload limit: channel, id, event name and keys of a message.
    ws_.read_message_max(this->node_.cfg.max_message_bytes + 512 + 128);
    ws_.auto_fragment(false);
    ws_.text(true);
    ws_.async_accept(req, [self = this->self()](beast::error_code ec) { self->on_accept(ec); });
  }

  // --- stream_conn's transport hooks ---
  bool socket_busy() const { return ws_.next_layer().beast_busy(); }
  template <class Handler>
  void wait_turn(Handler&& h) { ws_.next_layer().wait_turn(std::forward<Handler>(h)); }
  void begin_raw() { ws_.next_layer().begin_raw(); }
  void end_raw() { ws_.next_layer().end_raw(); }
  tcp::socket& socket() { return ws_.next_layer().socket(); }
  tls_stream* tls() { return ws_.next_layer().tls(); }

  void close_transport() {
    if (close_started_ || this->state_ == conn_state::closed) return;
    close_started_ = true;
    auto c = this->close_code_;
    auto cc = static_cast<std::uint16_t>(c == protocol::code::ok ? protocol::code::normal_closure : c);
    const auto& why = this->close_reason_;
    // A close reason is at most 123 bytes of UTF-8; a cut inside a character fails the close.
    std::string reason(protocol::utf8_prefix(why, 120));
    ws_.async_close(websocket::close_reason(static_cast<websocket::close_code>(cc), reason),
                    [self = this->self()](beast::error_code) { self->finish(); });
  }

  void on_probe() {
    if (probing_ || close_started_ || this->state_ != conn_state::open) return;
    probing_ = true;
    ws_.async_ping({}, [self = this->self()](beast::error_code) { self->probing_ = false; });
  }

  void cut() {
    beast::error_code ec;
    ws_.next_layer().close(ec);
  }

  void finish() {
    if (this->state_ == conn_state::closed) return;
    // The code of the close: the server's, else the peer's close frame, else 1006 (no close frame).
    if (this->close_code_ != protocol::code::ok) this->log_close(static_cast<unsigned>(this->close_code_), this->close_reason_);
    else if (ws_.reason().code) this->log_close(ws_.reason().code, std::string_view(ws_.reason().reason.data(), ws_.reason().reason.size()));
    else this->log_close(1006, "");
    this->state_ = conn_state::closed;
    this->derived().before_release();
    this->release();
    if (accepted_) this->w_.conns.erase(this);
    this->derived().after_release(accepted_);
    cut();
  }

 protected:
  ws_conn(node& n, worker& w, socket_link sock, std::shared_ptr<void> life)
      : base(n, w, true), ws_(ws_socket(std::move(sock))), life_(std::move(life)) {}

 private:
  void on_accept(beast::error_code ec) {
    if (ec) return finish();
    accepted_ = true;
    this->w_.conns.insert(this);
    this->derived().on_accepted();
    this->log_open(Derived::transport_name);
    auto now = this->node_.clk.now_ms();
    this->stream_.received(now);
    this->opened();
    this->drain(now);   // what the protocol says first (Pusher's connection_established)
    if (this->state_ == conn_state::open) do_read();
  }

  // An idle connection waits with room for 64 bytes; the rest of a longer message is then read in
  // one whole-message read.
  void do_read() {
    if (ws_.is_message_done())
      ws_.async_read_some(rbuf_, idle_read_bytes,
                          [self = this->self()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    else
      ws_.async_read(rbuf_, [self = this->self()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec) return finish();
    auto now = this->node_.clk.now_ms();
    this->stream_.received(now);
    if (!ws_.is_message_done()) return do_read();
    auto data = rbuf_.cdata();
    this->derived().on_message(std::string_view(static_cast<const char*>(data.data()), data.size()), now);
    rbuf_.consume(rbuf_.size());
    if (rbuf_.capacity() > idle_read_bytes) rbuf_ = beast::flat_buffer{};   // small between messages
    this->drain(now);
    if (this->state_ == conn_state::open) do_read();
  }

  static constexpr std::size_t idle_read_bytes = 64;
  websocket::stream<ws_socket> ws_;
  std::shared_ptr<void> life_;
  beast::flat_buffer rbuf_;
  bool accepted_ = false, close_started_ = false, probing_ = false;
};

}  // namespace pushwire::server

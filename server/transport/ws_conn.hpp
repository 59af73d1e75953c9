// What the two WebSocket endpoints share — Pushwire's own /ws (ws_session.cpp) and the Pusher
// endpoint's /app/{key} (server/pusher/pusher_ws_session.cpp): a WebSocket on the raw link (plain
// or TLS, maybe_tls.hpp) under the stream connection (stream_conn.hpp): the opening handshake's
// answer, the read loop, pongs, the probe, the closing handshake and teardown. The endpoint
// (`Derived`) adds its framing and its protocol:
//   static constexpr const char* transport_name           for the log lines
//   std::size_t item_size(const outgoing&) const, void build_write(...)   as stream_conn asks
//   void on_accepted()                       counts and metrics, once the handshake is done
//   void on_message(std::string_view text, std::uint64_t now)   one complete message
//   void before_release()                    the protocol session learns the connection is gone
//   void after_release(bool accepted)        counts and metrics undone
//
// No Beast stream: Beast's HTTP parser reads the upgrade request (http_session.cpp), ws_key.cpp
// builds the answer, protocol/ws_frame_reader.hpp reads frames, and every byte the server writes —
// data messages, pongs, probes, the close frame — goes through stream_conn's one gather-write queue,
// control frames first in the next write (so there is one writer and nothing to arbitrate).
//
// Closing handshake (close_phase):
//   none     open; a close is decided by the server (close_requested: the queue drains first), by
//            the peer's close frame (answered at once with a close echoing its code; what waits
//            unsent is dropped), or by a protocol violation (the reader's code; dropped likewise)
//   queued   the close frame waits for the write in flight; no data is written after it
//   sent     written. Then: the peer had closed -> close TCP; a violation -> shut down our sending
//            side and read to the peer's EOF (what Beast's teardown did); else wait for the peer's
//            close frame. request_timeout_ms after the close was queued, TCP closes regardless.
//
// Memory per idle connection: no read buffer and no composed read operation. A plain connection
// waits for readability (socket async_wait, a small reactor op) and then reads with a non-blocking
// recv into a stack buffer; the reader keeps a partial message only while one is arriving. A TLS
// connection reads through OpenSSL into a 64-byte buffer while idle (larger only mid-message). The
// dead-peer check is the stream machine's deadline, run by the housekeeping tick; the only timer is
// the closing handshake's, made when a close starts.
#pragma once
#include <sys/socket.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "protocol/json_scan.hpp"
#include "protocol/ws_frame_reader.hpp"
#include "server/http/ws_key.hpp"
#include "server/transport/maybe_tls.hpp"
#include "server/transport/exact_allocator.hpp"
#include "server/transport/stream_conn.hpp"
#include "server/transport/ws_framing.hpp"

namespace pushwire::server {

template <class Derived>
class ws_conn : public stream_conn<Derived> {
  using base = stream_conn<Derived>;

 public:
  static constexpr std::size_t max_items_per_write = 64;

  void run(request req) {
    this->note_remote(req);
    auto answer = websocket_handshake(req, "pushwire");
    auto bytes = std::make_shared<std::string>(std::move(answer.response));
    net::async_write(link_, net::buffer(*bytes),
                     [self = this->self(), bytes, ok = answer.accepted](beast::error_code ec, std::size_t) {
                       if (ec || !ok) return self->finish();   // a refused upgrade: its HTTP error, then close
                       self->on_accept();
                     });
  }

  // --- stream_conn's transport hooks ---
  tcp_socket& socket() { return link_.socket(); }
  tls_stream* tls() { return link_.tls(); }

  // The control frames waiting go first in the next write; true if there were any.
  bool take_control(std::vector<net::const_buffer>& bufs) {
    if (close_phase_ == close_phase::in_flight) close_phase_ = close_phase::sent;   // the last write is done
    if (!extra_ || extra_->ctl_next.empty()) return false;
    auto& x = *extra_;
    x.ctl_out.swap(x.ctl_next);
    x.ctl_next.clear();
    pong_len_ = 0;
    probing_ = false;
    if (close_phase_ == close_phase::queued) close_phase_ = close_phase::in_flight;
    bufs.emplace_back(x.ctl_out.data(), x.ctl_out.size());
    return true;
  }
  // Nothing follows a close frame.
  bool data_allowed() const { return close_phase_ == close_phase::none; }

  // The queue drained in `closing`.
  void close_transport() {
    if (this->state_ == conn_state::closed) return;
    switch (close_phase_) {
      case close_phase::none: {
        auto c = this->close_code_;
        auto cc = static_cast<std::uint16_t>(c == protocol::code::ok ? protocol::code::normal_closure : c);
        // A close reason is at most 123 bytes of UTF-8; a cut inside a character fails the close.
        return begin_close(cc, protocol::utf8_prefix(this->close_reason(), 120));
      }
      case close_phase::queued:
      case close_phase::in_flight:
        return;
      case close_phase::sent:
        if (peer_closed_) return finish();
        if (failed_ && !shut_) {
          shut_ = true;
          beast::error_code ec;
          socket().shutdown(tcp_socket::shutdown_send, ec);
        }
        return;   // the read loop sees the peer's close or EOF; else the timer
    }
  }

  void on_probe() {
    if (probing_ || close_phase_ != close_phase::none || this->state_ != conn_state::open) return;
    probing_ = true;
    append_ws_control(extra().ctl_next, ws_op_ping, {});
    send_control();
  }

  void cut() {
    beast::error_code ec;
    link_.close(ec);
  }

  void finish() {
    if (this->state_ == conn_state::closed) return;
    if (extra_ && extra_->close_timer) extra_->close_timer->cancel();
    // The code of the close: the server's, else the peer's close frame, else 1006 (no close frame,
    // an empty one, or a protocol violation: as Beast's stream reported them).
    if (this->close_code_ != protocol::code::ok) this->log_close(static_cast<unsigned>(this->close_code_), this->close_reason());
    else if (peer_code_) this->log_close(peer_code_, this->close_reason());
    else this->log_close(1006, "");
    this->state_ = conn_state::closed;
    this->derived().before_release();
    this->release();
    if (accepted_) this->w_.conns.erase(this);
    this->derived().after_release(accepted_);
    cut();
  }

  // Idle (no write in flight): what a probe or a pong needed goes back. Not under TLS (its pending
  // read uses the buffer) nor once a close began (its timer).
  void release_control_buffers() {
    if (extra_ && extra_->ctl_next.empty() && close_phase_ == close_phase::none && !tls()) extra_.reset();
  }

 protected:
  ws_conn(node& n, worker& w, socket_link sock, std::shared_ptr<void> life)
      : base(n, w, true), link_(std::move(sock)), life_(std::move(life)),
        // Envelope allowance over the payload limit: channel, id, event name and keys of a message.
        reader_(n.cfg.max_message_bytes + 512 + 128) {}

 private:
  enum class close_phase : std::uint8_t { none, queued, in_flight, sent };

  void on_accept() {
    accepted_ = true;
    this->w_.conns.insert(this);
    this->derived().on_accepted();
    this->log_open(Derived::transport_name);
    auto now = this->node_.clk.now_ms();
    this->stream_.received(now);
    this->opened();
    this->drain(now);   // what the protocol says first (Pusher's connection_established)
    if (this->state_ != conn_state::closed) do_read();
  }

  void do_read() {
    if (auto* t = tls()) {
      // OpenSSL needs a buffer that outlives the operation: small while idle.
      std::size_t want = reader_.mid_message() ? tls_read_bytes : idle_read_bytes;
      auto& rbuf = extra().rbuf;
      if (rbuf.size() != want) std::string(want, '\0').swap(rbuf);
      t->async_read_some(net::buffer(rbuf), [self = this->self()](beast::error_code ec, std::size_t n) {
        if (ec) return self->finish();
        if (self->on_bytes(std::string_view(self->extra_->rbuf.data(), n))) self->do_read();
      });
      return;
    }
    // The wait's operation is allocated at its own size (exact_allocator.hpp), not from Asio's
    // per-thread recycling, and stays allocated for the connection's whole idle life.
    socket().async_wait(tcp_socket::wait_read,
                        net::bind_allocator(exact_allocator<void>(), [self = this->self()](beast::error_code ec) {
                          self->on_readable(ec);
                        }));
  }

  void on_readable(beast::error_code ec) {
    if (ec) return finish();
    char buf[16384];
    for (int round = 0; round < 4; ++round) {   // at most 64 KB per wake-up; then others get a turn
      ssize_t n = ::recv(socket().native_handle(), buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        if (!on_bytes(std::string_view(buf, static_cast<std::size_t>(n)))) return;
        if (static_cast<std::size_t>(n) < sizeof buf) break;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      return finish();   // EOF (0) or a socket error
    }
    do_read();
  }

  // Feeds what was read to the frame reader and acts on its events; false once the connection is
  // closed.
  bool on_bytes(std::string_view in) {
    auto now = this->node_.clk.now_ms();
    this->stream_.received(now);
    for (;;) {
      auto e = reader_.read(in);
      switch (e.kind) {
        case protocol::ws_event_kind::need_more:
          return this->state_ != conn_state::closed;
        case protocol::ws_event_kind::message:
          // Once a close has begun, what the peer still sends is read and dropped.
          if (this->state_ != conn_state::open) break;
          this->derived().on_message(e.data, now);
          this->drain(now);
          break;
        case protocol::ws_event_kind::ping:
          if (close_phase_ != close_phase::none) break;
          // Only the latest ping is answered if several wait (RFC 6455 §5.5.3): bounded.
          {
            auto& next = extra().ctl_next;
            next.erase(0, pong_len_);
            std::string pong;
            append_ws_control(pong, ws_op_pong, e.data);
            pong_len_ = static_cast<std::uint8_t>(pong.size());
            next.insert(0, pong);
          }
          send_control();
          break;
        case protocol::ws_event_kind::pong:
          break;
        case protocol::ws_event_kind::close:
          peer_closed_ = true;
          peer_code_ = e.code;
          if (this->close_code_ == protocol::code::ok) this->close_reason_ = std::make_unique<std::string>(e.data);
          if (close_phase_ == close_phase::none) begin_close(e.code ? e.code : 1000, {});   // the echo
          else if (close_phase_ == close_phase::sent) finish();
          break;   // queued / in flight: close_transport() finishes once it is out
        case protocol::ws_event_kind::fail:
          if (close_phase_ != close_phase::none) {
            finish();
            break;
          }
          failed_ = true;
          begin_close(e.code, {});
          break;
      }
      if (this->state_ == conn_state::closed) return false;
    }
  }

  // Queues the close frame; nothing is written after it. What still waits in the queue is dropped
  // (a server close reaches here only once it drained).
  void begin_close(std::uint16_t code, std::string_view reason) {
    this->drop_pending();
    if (this->state_ == conn_state::open) this->state_ = conn_state::closing;
    auto& x = extra();
    append_ws_close(x.ctl_next, code, reason);
    close_phase_ = close_phase::queued;
    x.close_timer = std::make_unique<net::steady_timer>(link_.get_executor());
    x.close_timer->expires_after(std::chrono::milliseconds(this->node_.cfg.request_timeout_ms));
    x.close_timer->async_wait([self = this->self()](beast::error_code ec) {
      if (!ec) self->finish();
    });
    send_control();
  }

  void send_control() {
    if (!this->writing()) this->do_write();
  }

  static constexpr std::size_t idle_read_bytes = 64, tls_read_bytes = 4096;
  socket_link link_;
  std::shared_ptr<void> life_;
  protocol::ws_frame_reader reader_;
  // What an idle plain connection does not need, made on first use: ~100 bytes saved per idle
  // connection (docs/performance.md).
  struct extra_state {
    std::string ctl_next;   // control frames for the next write: [pong][ping][close]
    std::string ctl_out;    // the control frames of the write in flight
    std::string rbuf;       // TLS only: the read buffer
    std::unique_ptr<net::steady_timer> close_timer;   // the closing handshake's bound
  };
  extra_state& extra() {
    if (!extra_) extra_ = std::make_unique<extra_state>();
    return *extra_;
  }
  std::unique_ptr<extra_state> extra_;
  std::uint16_t peer_code_ = 0;
  std::uint8_t pong_len_ = 0;
  close_phase close_phase_ = close_phase::none;
  bool accepted_ = false, probing_ = false, peer_closed_ = false, failed_ = false, shut_ = false;
};

}  // namespace pushwire::server

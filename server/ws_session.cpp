// WebSocket transport: a thin shell around protocol::server_session.
//
// Write path: frames are shared, immutable buffers (server/message.hpp). While a write is in flight
// new frames wait in `pending_`; when it completes, everything pending (up to 64 frames) goes out as
// ONE WebSocket message, a gather write of the shared buffers (DECISIONS §2): this connection's
// 2-10 byte frame header, then the frames, in one non-blocking sendmsg (server/ws_socket.hpp says
// why not through Beast). Only what the kernel does not take at once waits for writability. The
// queue is bounded in bytes; overflow closes the connection with 4008 (the client resumes from its
// last position).
//
// Memory per idle connection (the 10k-connection benchmark; measured with heaptrack): the stream sits
// directly on the socket (no tcp_stream and its timers under it), an idle read waits with a 64-byte
// buffer instead of Beast's default 1.5 KB, and the dead-peer check runs in the housekeeping tick
// rather than as one armed Beast timer per connection.
#include "protocol/frame_codec.hpp"
#include "server/gather_send.hpp"
#include "server/net.hpp"
#include "server/shell.hpp"
#include "server/ws_socket.hpp"

namespace pushwire::server {

using protocol::code;

namespace {

constexpr std::size_t max_frames_per_write = 64;

class ws_session final : public session_conn, public flushable,
                         public std::enable_shared_from_this<ws_session> {
 public:
  ws_session(shared_state& s, worker& w, beast::tcp_stream stream, std::shared_ptr<void> life, std::uint64_t now)
      : session_conn(s, w.hub, w.index, s.new_client_id(), now, s.policy),
        w_(w), ws_(ws_socket(stream.release_socket())), life_(std::move(life)), last_send_(now), last_recv_(now) {}

  ~ws_session() override { finish(); }

  void run(request req) {
    // Beast times the handshake and the closing handshake; the open connection's dead-peer check
    // is tick()'s.
    ws_.set_option(websocket::stream_base::timeout{
        std::chrono::milliseconds(shared_.cfg.request_timeout_ms), websocket::stream_base::none(), false});
    ws_.control_callback([this](websocket::frame_type, beast::string_view) { last_recv_ = steady_ms(); });
    ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
      res.set(http::field::server, "pushwire");
    }));
    // Envelope allowance over the payload limit: channel, id and keys of a publish frame.
    ws_.read_message_max(shared_.cfg.max_message_bytes + 512 + 128);
    ws_.auto_fragment(false);
    ws_.text(true);
    ws_.async_accept(req, beast::bind_front_handler(&ws_session::on_accept, shared_from_this()));
  }

  void tick(std::uint64_t now) override {
    if (slow_cut_at_ && now >= slow_cut_at_) {
      slow_cut_at_ = 0;
      return cut();   // the stuck write completes with an error
    }
    // Dead peer: no byte at all for the timeout (a WebSocket ping at half of it asks for one; every
    // browser answers pings by itself).
    auto dead = shared_.cfg.effective_dead_peer_ms();
    if (now >= last_recv_ + dead) return cut();
    if (!pinging_ && !close_started_ && accepted_ && pinged_for_ != last_recv_ && now >= last_recv_ + dead / 2) {
      pinging_ = true;
      pinged_for_ = last_recv_;   // one probe per silence
      ws_.async_ping({}, [self = shared_from_this()](beast::error_code) { self->pinging_ = false; });
    }
    if (auto d = session_.next_deadline(); d && now >= *d) {
      session_.handle_timeout(now);
      drain(now);
    }
    if (!closing_ && now >= last_send_ + shared_.cfg.ping_interval_ms) {
      static const message_ptr ping = make_ping();
      enqueue(ping);
    }
  }


 private:
  void on_accept(beast::error_code ec) {
    if (ec) return finish();
    accepted_ = true;
    w_.conns.insert(this);
    shared_.register_conn(session_.client(), w_.index, "");
    shared_.met.connections_websocket.fetch_add(1, std::memory_order_relaxed);
    do_read();
  }

  // An idle connection waits with room for 64 bytes; the rest of a longer message is then read in
  // one whole-message read.
  void do_read() {
    if (ws_.is_message_done())
      ws_.async_read_some(rbuf_, idle_read_bytes, beast::bind_front_handler(&ws_session::on_read, shared_from_this()));
    else
      ws_.async_read(rbuf_, beast::bind_front_handler(&ws_session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) return finish();
    auto now = steady_ms();
    last_recv_ = now;
    if (!ws_.is_message_done()) return do_read();
    bool was_open = session_.state() == protocol::session_state::open;
    auto data = rbuf_.cdata();
    std::string_view text(static_cast<const char*>(data.data()), data.size());
    session_.handle_text(text, now);
    rbuf_.consume(rbuf_.size());
    // Keep the read buffer small between messages (memory per idle connection).
    if (rbuf_.capacity() > idle_read_bytes) rbuf_ = beast::flat_buffer{};
    if (!was_open && session_.state() == protocol::session_state::open)
      shared_.register_conn(session_.client(), w_.index, session_.user());
    drain(now);
    if (!closing_) do_read();
  }

  void enqueue(message_ptr m) override {
    if (closing_ && !close_frame_allowed_) return;
    std::size_t n = m->frame.size();
    if (replaying_) replay_bytes_ += n;
    else if (queued_bytes_ - replay_bytes_ + n > shared_.cfg.queue_bytes) return slow_consumer();
    queued_bytes_ += n;
    pending_.push_back(std::move(m));
    if (!writing_) w_.write_soon(shared_from_this(), flush_scheduled_);
  }

  void slow_consumer() {
    if (closing_) return;
    shared_.met.slow_consumer_disconnects.fetch_add(1, std::memory_order_relaxed);
    closing_ = true;
    close_code_ = code::slow_consumer;
    // What waits is dropped at once, so memory stays within the bound.
    for (auto& m : pending_) queued_bytes_ -= m->frame.size();
    pending_.clear();
    if (writing_) {
      // The write in flight is stuck on a peer that reads too slowly (or not at all). If it finishes
      // within the grace period, on_write sends the 4008 notice and close; otherwise tick() cuts.
      slow_cut_at_ = steady_ms() + shared_.cfg.slow_consumer_grace_ms;
      return;
    }
    send_slow_consumer_notice();
  }

  void send_slow_consumer_notice() {
    close_frame_allowed_ = true;
    protocol::frame f{.kind = protocol::frame_kind::disconnect};
    f.error_code = code::slow_consumer;
    f.reason = "send queue over its byte bound; resume from the last position";
    f.reconnect = true;
    enqueue(make_control(protocol::encode(f)));
    close_frame_allowed_ = false;
  }

  void close_requested(code c, const std::string& reason) override {
    if (close_started_) return;
    closing_ = true;
    close_code_ = c;
    close_reason_ = reason;
    close_frame_allowed_ = false;
    if (!writing_) do_close();
  }

  void flush() override {
    flush_scheduled_ = false;
    if (!writing_ && !finished_) do_write();
  }

  void do_write() {
    if (pending_.empty()) {
      if (closing_) do_close();
      return;
    }
    writing_ = true;
    if (pending_.size() <= max_frames_per_write) {
      inflight_.swap(pending_);
    } else {
      inflight_.assign(pending_.begin(), pending_.begin() + max_frames_per_write);
      pending_.erase(pending_.begin(), pending_.begin() + max_frames_per_write);
    }
    std::size_t payload = 0;
    for (auto& m : inflight_) payload += m->frame.size();
    // One unmasked, unfragmented text message (RFC 6455 §5.2).
    std::size_t h = 0;
    header_[h++] = 0x81;
    if (payload < 126) {
      header_[h++] = static_cast<unsigned char>(payload);
    } else if (payload < 65536) {
      header_[h++] = 126;
      for (int shift = 8; shift >= 0; shift -= 8) header_[h++] = static_cast<unsigned char>(payload >> shift);
    } else {
      header_[h++] = 127;
      for (int shift = 56; shift >= 0; shift -= 8) header_[h++] = static_cast<unsigned char>(payload >> shift);
    }
    bufs_.clear();
    bufs_.emplace_back(header_, h);
    for (auto& m : inflight_) bufs_.emplace_back(m->frame.data(), m->frame.size());
    written_ = 0;
    last_send_ = steady_ms();
    send_some();
  }

  // Writes what is left of the message in flight; waits while Beast writes (a pong, say), and for
  // writability when the kernel takes only part.
  void send_some() {
    auto& layer = ws_.next_layer();
    if (written_ == 0) {
      if (layer.beast_busy())
        return layer.wait_turn([self = shared_from_this()](beast::error_code) { self->send_some(); });
      layer.begin_raw();
    }
    if (finished_) return end_write(net::error::operation_aborted);
    beast::error_code ec;
    if (gather_send(layer.socket().native_handle(), bufs_, written_, ec)) return end_write({});
    if (ec) return end_write(ec);
    layer.socket().async_wait(tcp::socket::wait_write, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->end_write(ec);
      self->send_some();
    });
  }

  void end_write(beast::error_code ec) {
    ws_.next_layer().end_raw();
    on_write(ec, written_);
  }

  void on_write(beast::error_code ec, std::size_t n) {
    writing_ = false;
    shared_.met.bytes_sent.fetch_add(n, std::memory_order_relaxed);
    observe_write_latency(shared_.met, inflight_);
    for (auto& m : inflight_) {
      queued_bytes_ -= m->frame.size();
      replay_bytes_ -= std::min(replay_bytes_, m->frame.size());
    }
    inflight_.clear();
    if (ec) return finish();
    if (slow_cut_at_) {
      slow_cut_at_ = 0;
      return send_slow_consumer_notice();
    }
    do_write();
  }

  void do_close() {
    if (close_started_ || !accepted_) return;
    close_started_ = true;
    std::uint16_t cc = static_cast<std::uint16_t>(close_code_ == code::ok ? code::normal_closure : close_code_);
    std::string reason = close_reason_.size() > 120 ? close_reason_.substr(0, 120) : close_reason_;
    ws_.async_close(websocket::close_reason(static_cast<websocket::close_code>(cc), reason), [self = shared_from_this()](beast::error_code) {
      self->finish();
    });
  }

  void cut() {
    beast::error_code ec;
    beast::get_lowest_layer(ws_).close(ec);
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    session_.shell_closed();
    release();
    if (accepted_) {
      w_.conns.erase(this);
      shared_.unregister_conn(session_.client());
      shared_.met.connections_websocket.fetch_sub(1, std::memory_order_relaxed);
    }
    cut();
  }

  static constexpr std::size_t idle_read_bytes = 64;
  worker& w_;
  websocket::stream<ws_socket> ws_;
  std::shared_ptr<void> life_;
  beast::flat_buffer rbuf_;
  std::vector<message_ptr> pending_, inflight_;
  unsigned char header_[10];
  std::vector<net::const_buffer> bufs_;   // the message in flight: header + frames
  std::size_t written_ = 0;               // bytes of it sent
  std::size_t queued_bytes_ = 0;
  std::uint64_t last_send_, last_recv_;
  std::uint64_t pinged_for_ = 0;   // last_recv_ when the last dead-peer probe went out
  bool pinging_ = false;           // a WebSocket ping (dead-peer probe) is in flight
  bool writing_ = false, closing_ = false, close_started_ = false, close_frame_allowed_ = false;
  bool accepted_ = false, finished_ = false;
  bool flush_scheduled_ = false;   // in the worker's to_flush list
  std::uint64_t slow_cut_at_ = 0;  // slow consumer with a write in flight: cut the socket then
  std::size_t replay_bytes_ = 0;   // part of queued_bytes_ that is resume replay (not bounded)
  code close_code_ = code::ok;
  std::string close_reason_;
};

}  // namespace

void run_ws_session(shared_state& s, worker& w, beast::tcp_stream stream, request req, std::shared_ptr<void> life) {
  std::make_shared<ws_session>(s, w, std::move(stream), std::move(life), steady_ms())->run(std::move(req));
}

}  // namespace pushwire::server

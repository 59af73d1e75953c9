// WebSocket transport: the shared stream connection (stream_conn.hpp) with WebSocket framing.
//
// Data frames bypass Beast's write path: one unmasked, unfragmented text message per write (RFC 6455
// §5.2) — this connection's 2-10 byte header, then the shared frames — in one non-blocking sendmsg.
// Beast still writes the handshake reply, pongs, pings and the close frame; ws_socket.hpp keeps the
// two writers from interleaving bytes.
//
// Memory per idle connection: the stream sits directly on the socket (no tcp_stream and its timers
// under it), an idle read waits with a 64-byte buffer instead of Beast's default 1.5 KB, and the
// dead-peer check is the stream machine's deadline, run by the housekeeping tick, rather than one
// armed Beast timer per connection.
#include "server/transport/stream_conn.hpp"
#include "server/transport/transports.hpp"
#include "server/transport/ws_socket.hpp"

namespace pushwire::server {

using protocol::code;

namespace {

class ws_session final : public stream_conn<ws_session> {
 public:
  static constexpr std::size_t max_items_per_write = 64;

  ws_session(node& n, worker& w, socket_link sock, std::shared_ptr<void> life)
      : stream_conn(n, w, true), ws_(ws_socket(std::move(sock))), life_(std::move(life)) {}

  ~ws_session() override { finish(); }

  void run(request req) {
    // Beast times the handshake and the closing handshake; the open connection's dead-peer check is
    // the stream machine's.
    ws_.set_option(websocket::stream_base::timeout{
        std::chrono::milliseconds(node_.cfg.request_timeout_ms), websocket::stream_base::none(), false});
    ws_.control_callback([this](websocket::frame_type, beast::string_view) { stream_.received(node_.clk.now_ms()); });
    ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
      res.set(http::field::server, "pushwire");
    }));
    // Envelope allowance over the payload limit: channel, id and keys of a publish frame.
    ws_.read_message_max(node_.cfg.max_message_bytes + 512 + 128);
    ws_.auto_fragment(false);
    ws_.text(true);
    ws_.async_accept(req, beast::bind_front_handler(&ws_session::on_accept, shared_from_this()));
  }

  // --- stream_conn's transport hooks ---
  std::size_t item_size(const outgoing& o) const { return frame_text(o).size(); }

  void build_write(std::vector<queued>& items, std::vector<net::const_buffer>& bufs) {
    std::size_t payload = 0;
    for (auto& q : items) payload += q.size;   // item_size(): the frame's length
    bufs.emplace_back(header_, ws_text_header(header_, payload));
    for (auto& q : items) {
      auto& t = frame_text(q.item);
      bufs.emplace_back(t.data(), t.size());
    }
  }
  void release_write_buffers() {}
  bool socket_busy() const { return ws_.next_layer().beast_busy(); }
  template <class Handler>
  void wait_turn(Handler&& h) { ws_.next_layer().wait_turn(std::forward<Handler>(h)); }
  void begin_raw() { ws_.next_layer().begin_raw(); }
  void end_raw() { ws_.next_layer().end_raw(); }
  tcp::socket& socket() { return ws_.next_layer().socket(); }
  tls_stream* tls() { return ws_.next_layer().tls(); }

  void close_transport() {
    if (close_started_ || state_ == conn_state::closed) return;
    close_started_ = true;
    auto cc = static_cast<std::uint16_t>(close_code_ == code::ok ? code::normal_closure : close_code_);
    std::string reason = close_reason_.size() > 120 ? close_reason_.substr(0, 120) : close_reason_;
    ws_.async_close(websocket::close_reason(static_cast<websocket::close_code>(cc), reason),
                    [self = shared_from_this()](beast::error_code) { self->finish(); });
  }

  void on_probe() {
    if (probing_ || close_started_ || state_ != conn_state::open) return;
    probing_ = true;
    ws_.async_ping({}, [self = shared_from_this()](beast::error_code) { self->probing_ = false; });
  }

  void cut() {
    beast::error_code ec;
    ws_.next_layer().close(ec);
  }

  void finish() {
    if (state_ == conn_state::closed) return;
    // The code of the close: the server's, else the peer's close frame, else 1006 (no close frame).
    if (close_code_ != code::ok) log_close(static_cast<unsigned>(close_code_), close_reason_);
    else if (ws_.reason().code) log_close(ws_.reason().code, std::string_view(ws_.reason().reason.data(), ws_.reason().reason.size()));
    else log_close(1006, "");
    bool accepted = accepted_;
    state_ = conn_state::closed;
    session_.shell_closed();
    release();
    if (accepted) {
      w_.conns.erase(this);
      node_.registry.remove(session_.client());
      node_.met.connections_websocket.fetch_sub(1, std::memory_order_relaxed);
    }
    cut();
  }

 private:
  void on_accept(beast::error_code ec) {
    if (ec) return finish();
    accepted_ = true;
    w_.conns.insert(this);
    node_.registry.add(session_.client(), w_.index, "");
    node_.met.connections_websocket.fetch_add(1, std::memory_order_relaxed);
    log_open("websocket");
    stream_.received(node_.clk.now_ms());
    opened();
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
    auto now = node_.clk.now_ms();
    stream_.received(now);
    if (!ws_.is_message_done()) return do_read();
    bool was_open = session_.state() == protocol::session_state::open;
    auto data = rbuf_.cdata();
    session_.handle_text(std::string_view(static_cast<const char*>(data.data()), data.size()), now);
    rbuf_.consume(rbuf_.size());
    if (rbuf_.capacity() > idle_read_bytes) rbuf_ = beast::flat_buffer{};   // small between messages
    if (!was_open && session_.state() == protocol::session_state::open)
      node_.registry.add(session_.client(), w_.index, session_.user());
    drain(now);
    if (state_ == conn_state::open) do_read();
  }

  static constexpr std::size_t idle_read_bytes = 64;
  websocket::stream<ws_socket> ws_;
  std::shared_ptr<void> life_;
  beast::flat_buffer rbuf_;
  unsigned char header_[10];
  bool accepted_ = false, close_started_ = false, probing_ = false;
};

}  // namespace

void run_ws_session(node& n, worker& w, socket_link sock, request req, std::shared_ptr<void> life) {
  std::make_shared<ws_session>(n, w, std::move(sock), std::move(life))->run(std::move(req));
}

}  // namespace pushwire::server

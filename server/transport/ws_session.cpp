// WebSocket transport: Pushwire's protocol on the shared WebSocket connection (ws_conn.hpp).
//
// Data frames: one unmasked, unfragmented text message per write (RFC 6455 §5.2) — this
// connection's 2-10 byte header, then the shared frames (newline-delimited) — in one gather write.
#include "server/transport/transports.hpp"
#include "server/transport/ws_conn.hpp"

namespace pushwire::server {

namespace {

class ws_session final : public ws_conn<ws_session> {
 public:
  static constexpr const char* transport_name = "websocket";

  ws_session(node& n, worker& w, socket_link sock, std::shared_ptr<void> life)
      : ws_conn(n, w, std::move(sock), std::move(life)) {}

  ~ws_session() override { finish(); }

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

  // --- ws_conn's protocol hooks ---
  void on_accepted() {
    node_.open_streams.fetch_add(1);
    node_.met.connections_websocket.fetch_add(1, std::memory_order_relaxed);
    count_deliveries_as(transport_kind::websocket);
  }
  void on_message(std::string_view text, std::uint64_t now) {
    session_.handle_text(text, now);
  }
  void before_release() { session_.shell_closed(); }
  void after_release(bool accepted) {
    if (!accepted) return;
    node_.open_streams.fetch_sub(1);
    node_.met.connections_websocket.fetch_sub(1, std::memory_order_relaxed);
  }

 private:
  unsigned char header_[10];
};

}  // namespace

void run_ws_session(node& n, worker& w, socket_link sock, request req, std::shared_ptr<void> life) {
  std::make_shared<ws_session>(n, w, std::move(sock), std::move(life))->run(std::move(req));
}

}  // namespace pushwire::server

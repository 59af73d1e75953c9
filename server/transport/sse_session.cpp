// Server-Sent Events transport (docs/protocol.md "Server-Sent Events"): the shared stream connection
// (stream_conn.hpp) with SSE framing. Stateless: the URL names the channels and positions
// (Last-Event-ID wins over since=), the shell feeds connect + one subscribe per channel into the
// protocol session, and every event goes out from shared buffers. Each event that moves the
// stream's position is preceded by this connection's `id:` line — the resume token of all the
// stream's channels as written so far — from one small per-connection buffer, interleaved with the
// shared events in the same gather write (DECISIONS §4).
#include "server/http/cors.hpp"
#include "server/http/query.hpp"
#include "server/http/responses.hpp"
#include "server/transport/exact_allocator.hpp"
#include "server/transport/stream_conn.hpp"
#include "server/transport/transports.hpp"

namespace pushwire::server {

using protocol::code;

namespace {

// Room counted for an event's id line in the queue bound: 64 channels' positions stay far below it
// per channel on average, and the bound is about memory, not exact bytes.
constexpr std::size_t id_line_allowance = 64;

class sse_session final : public stream_conn<sse_session> {
 public:
  static constexpr std::size_t max_items_per_write = 32;   // two buffers each: id line + event

  sse_session(node& n, worker& w, socket_link sock, std::shared_ptr<void> life)
      : stream_conn(n, w, false), sock_(std::move(sock)), life_(std::move(life)) {}

  ~sse_session() override { finish(); }

  // The URL's channels and positions are fed into the machines here and not kept.
  void run(const request& req, const stream_params& params) {
    note_remote(req);
    header_ = std::make_unique<header_write>();
    auto& res = header_->res;
    res.result(http::status::ok);
    res.version(req.version());
    res.set(http::field::server, "pushwire");
    res.set(http::field::content_type, "text/event-stream");
    res.set(http::field::cache_control, "no-cache");
    res.set("X-Accel-Buffering", "no");
    add_cors(node_.cfg, req, res.base());
    res.keep_alive(false);
    w_.conns.insert(this);
    registered_ = true;
    node_.open_streams.fetch_add(1);
    node_.met.connections_sse.fetch_add(1, std::memory_order_relaxed);
    count_deliveries_as(transport_kind::sse);
    http::async_write_header(sock_, header_->sr, beast::bind_front_handler(&sse_session::on_header, shared_from_this()));

    // retry: jittered 50-150 % so a plain EventSource comes back quickly but not all at once.
    auto base = node_.cfg.sse_retry_ms;
    auto retry = make_control({});
    retry->sse_only += "retry: ";
    retry->sse_only += std::to_string(base / 2 + node_.jitter(base));
    retry->sse_only += "\n\n";
    send_control(std::move(retry));

    auto now = node_.clk.now_ms();
    stream_.declare_channels(params.channels);
    protocol::command c{.kind = protocol::command_kind::connect};
    c.token = params.token;
    session_.handle_command(c, now);
    drain(now);
    if (session_.state() != protocol::session_state::open) return;
    for (std::size_t i = 0; i < params.channels.size(); ++i) {
      protocol::command sub{.kind = protocol::command_kind::subscribe};
      sub.channel = params.channels[i];
      sub.since = params.since[i];
      session_.handle_command(sub, now);
      drain(now);
    }
    // Padding after the first events (queued before the header completes, so in the same write),
    // for a proxy that holds a response's start until it has this much; a size under 2 (no room for
    // ':' and the newline) sends none. It does not make a buffering nginx stream (config.hpp).
    if (auto pad = node_.cfg.sse_padding_bytes; pad >= 2) {
      auto padding = make_control({});
      padding->sse_only.reserve(pad);
      padding->sse_only += ':';
      padding->sse_only.append(pad - 2, ' ');
      padding->sse_only += '\n';
      send_control(std::move(padding));
    }
  }

  // --- stream_conn's transport hooks ---
  std::size_t item_size(const outgoing& o) const {
    return sse_text(o).size() + (mark_of(o).pos ? id_line_allowance : 0);
  }

  void build_write(std::vector<queued>& items, std::vector<net::const_buffer>& bufs) {
    // Every id line first (the string must not reallocate once buffers point into it).
    if (!ids_) ids_ = std::make_unique<id_lines>();
    auto& ids = *ids_;
    ids.text.clear();
    ids.ends.clear();
    for (auto& q : items) {
      auto m = mark_of(q.item);
      if (!m.pos) continue;   // (no id line: `ends` has one entry per marked item)
      stream_.wrote_position(m.channel, *m.pos, m.publication);
      ids.text += "id: ";
      stream_.append_token(ids.text);
      ids.text += '\n';
      ids.ends.push_back(ids.text.size());
    }
    std::size_t id_start = 0, k = 0;
    for (auto& q : items) {
      if (mark_of(q.item).pos) {
        bufs.emplace_back(ids.text.data() + id_start, ids.ends[k] - id_start);
        id_start = ids.ends[k++];
      }
      auto& t = sse_text(q.item);
      bufs.emplace_back(t.data(), t.size());
    }
  }
  void release_write_buffers() { ids_.reset(); }
  tcp_socket& socket() { return sock_.socket(); }
  tls_stream* tls() { return sock_.tls(); }
  void close_transport() { finish(); }
  void on_probe() {}
  void cut() { finish(); }

  void finish() {
    if (state_ == conn_state::closed) return;
    log_close(static_cast<unsigned>(close_code_), close_reason());
    state_ = conn_state::closed;
    session_.shell_closed();
    release();
    if (registered_) {
      w_.conns.erase(this);
      node_.open_streams.fetch_sub(1);
      node_.met.connections_sse.fetch_sub(1, std::memory_order_relaxed);
    }
    beast::error_code ec;
    sock_.socket().shutdown(tcp_socket::shutdown_both, ec);
    sock_.close(ec);
  }

 private:
  void on_header(beast::error_code ec, std::size_t n) {
    node_.met.bytes_sent.fetch_add(n, std::memory_order_relaxed);
    header_.reset();   // memory per idle connection: the response is out
    if (ec) return finish();
    log_open("sse");
    // The client never sends anything: the socket turning readable means it went away. A wait, not
    // a read (no buffer), allocated at its own size (exact_allocator.hpp).
    sock_.socket().async_wait(tcp_socket::wait_read,
                              net::bind_allocator(exact_allocator<void>(), [self = shared_from_this()](beast::error_code) {
                                self->finish();
                              }));
    opened();
  }

  // The response header and its serializer (~500 bytes), on the heap only until the header is out.
  struct header_write {
    http::response<http::empty_body> res;
    http::response_serializer<http::empty_body> sr{res};
  };

  socket_link sock_;
  std::shared_ptr<void> life_;
  std::unique_ptr<header_write> header_;
  // The id lines of the write in flight; on the heap while the connection writes, like the rest of
  // the write path (stream_conn.hpp).
  struct id_lines {
    std::string text;
    std::vector<std::size_t> ends;   // where each marked item's line ends in `text`
  };
  std::unique_ptr<id_lines> ids_;
  bool registered_ = false;
};

}  // namespace

void run_sse_session(node& n, worker& w, socket_link sock, request req, std::shared_ptr<void> life) {
  std::string_view target = req.target();
  auto qpos = target.find('?');
  auto q = parse_query(qpos == std::string_view::npos ? std::string_view{} : target.substr(qpos + 1));
  std::string since = q["since"];
  if (auto h = req["Last-Event-ID"]; !h.empty()) since = std::string(h);
  std::string token = q["token"];
  if (auto a = req[http::field::authorization]; token.empty() && a.starts_with("Bearer ")) token = std::string(a.substr(7));
  stream_params p;
  code c;
  std::string reason;
  if (!parse_stream_params(n.cfg.max_stream_channels, q["channels"], since, token, p, c, reason))
    return write_error_and_close(n, std::move(sock), req, c, reason);
  auto refuse_auth = [&](std::string_view why, code rc) {
    log::warn("auth refused", {{"transport", "sse"}, {"remote", client_address(n.cfg, sock.socket(), req)},
                               {"code", std::to_string(static_cast<unsigned>(rc))}, {"reason", why}});
    write_error_and_close(n, std::move(sock), req, rc, why);
  };
  // A bad token or channel gets an HTTP status before the stream starts, so EventSource reports an
  // error instead of reconnecting forever.
  if (token.empty() && !n.cfg.anonymous) return refuse_auth("a token is required", code::unauthorized);
  if (token.size() > n.cfg.max_token_bytes)   // the same bound the session applies to `connect`
    return refuse_auth("token is too long", code::unauthorized);
  if (!token.empty()) {
    auto v = n.verifier() ? n.verifier()(token, n.clk.now_ms())
                        : protocol::verified_token{code::unauthorized, "tokens are not accepted", {}, {}, false};
    if (v.error != code::ok) return refuse_auth(v.reason, v.error);
  }
  std::make_shared<sse_session>(n, w, std::move(sock), std::move(life))->run(req, p);
}

}  // namespace pushwire::server

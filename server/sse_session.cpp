// Server-Sent Events transport (docs/protocol.md "Server-Sent Events"). Stateless: the URL names the
// channels and positions (Last-Event-ID wins over since=), the shell feeds connect + one subscribe
// per channel into the protocol session, and every event goes out from shared buffers. The
// per-connection `id:` lines (the resume token of all the stream's channels) are written into one
// small buffer and interleaved with the shared events in the same gather write (DECISIONS §4),
// sent with a direct non-blocking sendmsg (server/gather_send.hpp).
#include "protocol/frame_codec.hpp"
#include "server/gather_send.hpp"
#include "server/net.hpp"
#include "server/shell.hpp"

namespace pushwire::server {

using protocol::code;

namespace {

constexpr std::size_t max_buffers_per_write = 64;

class sse_session final : public session_conn, public flushable,
                          public std::enable_shared_from_this<sse_session> {
 public:
  sse_session(shared_state& s, worker& w, beast::tcp_stream stream, std::shared_ptr<void> life, std::uint64_t now,
              stream_params params)
      : session_conn(s, w.hub, w.index, s.new_client_id(), now, s.policy),
        w_(w), stream_(stream.release_socket()), life_(std::move(life)), params_(std::move(params)),
        positions_(params_.since), last_send_(now) {}

  ~sse_session() override { finish(); }

  void run(const request& req) {
    res_.result(http::status::ok);
    res_.version(req.version());
    res_.set(http::field::server, "pushwire");
    res_.set(http::field::content_type, "text/event-stream");
    res_.set(http::field::cache_control, "no-cache");
    res_.set("X-Accel-Buffering", "no");
    add_cors(shared_, req, res_.base());
    res_.keep_alive(false);
    sr_.emplace(res_);
    writing_ = true;
    w_.conns.insert(this);
    registered_ = true;
    shared_.met.connections_sse.fetch_add(1, std::memory_order_relaxed);
    http::async_write_header(stream_, *sr_, beast::bind_front_handler(&sse_session::on_header, shared_from_this()));

    // retry: jittered 50-150 % so a plain EventSource comes back quickly but not all at once.
    auto base = shared_.cfg.sse_retry_ms;
    auto retry = base / 2 + shared_.jitter(base);
    auto m = std::make_shared<message>();
    m->sse = "retry: " + std::to_string(retry) + "\n\n";
    enqueue(std::move(m));

    auto now = steady_ms();
    protocol::command c{.kind = protocol::command_kind::connect};
    c.token = params_.token;
    session_.handle_command(c, now);
    drain(now);
    if (session_.state() == protocol::session_state::open) {
      shared_.register_conn(session_.client(), w_.index, session_.user());
      for (std::size_t i = 0; i < params_.channels.size(); ++i) {
        protocol::command sub{.kind = protocol::command_kind::subscribe};
        sub.channel = params_.channels[i];
        sub.since = params_.since[i];
        session_.handle_command(sub, now);
        drain(now);
      }
    }
  }

  void tick(std::uint64_t now) override {
    if (!closing_ && now >= last_send_ + shared_.cfg.ping_interval_ms) {
      static const message_ptr ping = make_ping();
      enqueue(ping);
    }
  }

 private:
  void on_header(beast::error_code ec, std::size_t n) {
    writing_ = false;
    shared_.met.bytes_sent.fetch_add(n, std::memory_order_relaxed);
    sr_.reset();   // memory per idle connection: the response is out
    res_ = {};
    if (ec) return finish();
    // The client never sends anything; a read completing means it went away.
    stream_.async_read_some(net::buffer(probe_), [self = shared_from_this()](beast::error_code, std::size_t) {
      self->finish();
    });
    do_write();
  }

  void enqueue(message_ptr m) override {
    if (closing_) return;
    std::size_t n = m->sse.size() + (m->sse_id ? 64 : 0);
    if (replaying_) replay_bytes_ += n;
    else if (queued_bytes_ - replay_bytes_ + n > shared_.cfg.queue_bytes) return slow_consumer();
    queued_bytes_ += n;
    pending_.push_back(std::move(m));
    if (!writing_) w_.write_soon(shared_from_this(), flush_scheduled_);
  }

  void slow_consumer() {
    shared_.met.slow_consumer_disconnects.fetch_add(1, std::memory_order_relaxed);
    closing_ = true;
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->finish(); });
  }

  void close_requested(code, const std::string&) override {
    closing_ = true;
    if (!writing_ && pending_.empty()) finish();
  }

  std::size_t channel_index(std::string_view ch) const {
    for (std::size_t i = 0; i < params_.channels.size(); ++i)
      if (params_.channels[i] == ch) return i;
    return params_.channels.size();
  }

  void flush() override {
    flush_scheduled_ = false;
    if (!writing_ && !finished_) do_write();
  }

  void do_write() {
    if (pending_.empty()) {
      if (closing_) finish();
      return;
    }
    writing_ = true;
    // Each event can take two buffers (its id line and the shared event).
    std::size_t take = 0, nbufs = 0;
    while (take < pending_.size() && nbufs + (pending_[take]->sse_id ? 2 : 1) <= max_buffers_per_write) {
      nbufs += pending_[take]->sse_id ? 2 : 1;
      ++take;
    }
    if (take == pending_.size()) {
      inflight_.swap(pending_);
    } else {
      inflight_.assign(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(take));
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(take));
    }
    // Build every id line first (the string must not reallocate once buffers point into it).
    ids_.clear();
    id_ends_.clear();
    for (auto& m : inflight_) {
      if (!m->sse_id) continue;
      auto i = channel_index(m->channel);
      if (i < positions_.size()) positions_[i] = m->pos;
      ids_ += "id: ";
      ids_ += protocol::encode_resume_token(positions_);
      ids_ += '\n';
      id_ends_.push_back(ids_.size());
    }
    bufs_.clear();
    std::size_t id_start = 0, k = 0;
    for (auto& m : inflight_) {
      if (m->sse_id) {
        bufs_.emplace_back(ids_.data() + id_start, id_ends_[k] - id_start);
        id_start = id_ends_[k++];
      }
      bufs_.emplace_back(m->sse.data(), m->sse.size());
    }
    last_send_ = steady_ms();
    written_ = 0;
    send_some();
  }

  void send_some() {
    if (finished_) return on_write(net::error::operation_aborted, written_);
    beast::error_code ec;
    if (gather_send(stream_.native_handle(), bufs_, written_, ec) || ec) return on_write(ec, written_);
    stream_.async_wait(tcp::socket::wait_write, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->on_write(ec, self->written_);
      self->send_some();
    });
  }

  void on_write(beast::error_code ec, std::size_t n) {
    writing_ = false;
    shared_.met.bytes_sent.fetch_add(n, std::memory_order_relaxed);
    observe_write_latency(shared_.met, inflight_);
    for (auto& m : inflight_) {
      queued_bytes_ -= m->sse.size() + (m->sse_id ? 64 : 0);
      replay_bytes_ -= std::min(replay_bytes_, m->sse.size() + (m->sse_id ? 64 : 0));
    }
    inflight_.clear();
    if (ec) return finish();
    do_write();
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    session_.shell_closed();
    release();
    if (registered_) {
      w_.conns.erase(this);
      shared_.unregister_conn(session_.client());
      shared_.met.connections_sse.fetch_sub(1, std::memory_order_relaxed);
    }
    beast::error_code ec;
    stream_.shutdown(tcp::socket::shutdown_both, ec);
    stream_.close(ec);
  }

  worker& w_;
  tcp::socket stream_;
  std::shared_ptr<void> life_;
  stream_params params_;
  std::vector<std::optional<protocol::position>> positions_;
  http::response<http::empty_body> res_;
  std::optional<http::response_serializer<http::empty_body>> sr_;
  std::vector<message_ptr> pending_, inflight_;
  std::vector<net::const_buffer> bufs_;   // the write in flight
  std::size_t written_ = 0;               // bytes of it sent
  std::string ids_;
  std::vector<std::size_t> id_ends_;
  std::size_t queued_bytes_ = 0;
  std::uint64_t last_send_;
  char probe_[1];
  bool writing_ = false, closing_ = false, finished_ = false, registered_ = false;
  bool flush_scheduled_ = false;   // in the worker's to_flush list
  std::size_t replay_bytes_ = 0;   // part of queued_bytes_ that is resume replay (not bounded)
};

}  // namespace

void run_sse_session(shared_state& s, worker& w, beast::tcp_stream stream, request req, std::shared_ptr<void> life) {
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
  if (!parse_stream_params(s, q["channels"], since, token, p, c, reason))
    return write_error_and_close(s, std::move(stream), req, c, reason);
  // Refuse a bad token or channel with an HTTP status before the stream starts, so EventSource
  // reports an error instead of reconnecting forever.
  if (token.empty() && !s.cfg.anonymous)
    return write_error_and_close(s, std::move(stream), req, code::unauthorized, "a token is required");
  if (!token.empty()) {
    auto v = s.verifier ? s.verifier(token, steady_ms())
                        : protocol::verified_token{code::unauthorized, "tokens are not accepted", {}, {}, false};
    if (v.error != code::ok) return write_error_and_close(s, std::move(stream), req, v.error, v.reason);
  }
  std::make_shared<sse_session>(s, w, std::move(stream), std::move(life), steady_ms(), std::move(p))->run(req);
}

}  // namespace pushwire::server

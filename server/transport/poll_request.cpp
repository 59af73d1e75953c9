// Long-polling transport (docs/protocol.md "Long-polling"). Each request names its channels and
// positions (the cursor), so any node can answer it; a collecting shell runs connect + a subscribe
// per channel. The opening poll (`open=1`, or no known `client=`) answers at once with `connected`
// (a fresh client id) and `subscribed` frames; a later poll sends that id back as `client=` and
// renews its lease (node/poll_leases.hpp), which holds the client's presence membership, a pending
// server disconnect and the join/leave events between polls. A cursor that is behind answers at
// once with the missed messages (or `recovered:false`); otherwise the request parks until the first
// item arrives or the hold time passes (then a `ping`).
//
// Lifecycle (poll_state): running (connect + subscribes, until every subscribe has its answer) ->
// parked -> answered; or running -> answered.
#include "protocol/frame_codec.hpp"
#include "server/http/cors.hpp"
#include "server/http/query.hpp"
#include "server/http/responses.hpp"
#include "server/ops/log.hpp"
#include "server/transport/client_address.hpp"
#include "server/transport/shell.hpp"
#include "server/transport/transports.hpp"

namespace pushwire::server {

using protocol::code;

namespace {

enum class poll_state : std::uint8_t { running, parked, answered };

class poll_request final : public conn_base, public std::enable_shared_from_this<poll_request> {
 public:
  poll_request(node& n, worker& w, http_stream stream, beast::flat_buffer buffer, request req,
               std::shared_ptr<void> life, std::shared_ptr<void> ip_slot, stream_params p, std::string client,
               bool open, std::optional<disconnect_order> disconnect)
      : n_(n), w_(w), shell_(n, w.subscribers, w.index, client, poll_stream_policy(n)), stream_(std::move(stream)),
        buffer_(std::move(buffer)), req_(std::move(req)), life_(std::move(life)), ip_slot_(std::move(ip_slot)),
        p_(std::move(p)), open_(open), disconnect_(std::move(disconnect)), hold_(w.ioc),
        serial_(next_serial_.fetch_add(1, std::memory_order_relaxed)) {}

  ~poll_request() override {
    if (state_ == poll_state::parked) n_.met.parked_polls.fetch_sub(1, std::memory_order_relaxed);
    if (registered_) w_.conns.erase(this);
  }

  void run() {
    auto now = n_.clk.now_ms();
    const auto& id = shell_.session().client();
    // Completions that come later (another thread, a store behind the network) come back here.
    shell_.owner = weak_from_this();
    shell_.post = [&ioc = w_.ioc](std::function<void()> fn) { net::post(ioc, std::move(fn)); };
    // The presence member is the lease: same id, same expiry (renewed on every poll).
    shell_.lease() = now + n_.leases.lease_ms();
    shell_.events_from_lease = true;
    shell_.stream().declare_channels(p_.channels);
    protocol::command c{.kind = protocol::command_kind::connect};
    c.token = p_.token;
    shell_.session().handle_command(c, now);
    shell_.drain(now);
    if (shell_.session().state() != protocol::session_state::open) {
      if (open_) n_.leases.remove(id);
      if (shell_.closed == code::unauthorized || shell_.closed == code::token_expired) {
        log::warn("auth refused", {{"transport", "polling"}, {"remote", client_address(n_.cfg, stream_.socket(), req_)},
                                   {"code", std::to_string(static_cast<unsigned>(*shell_.closed))},
                                   {"reason", "the token was refused"}});
      }
      return respond(shell_.closed ? http_status(*shell_.closed) : 401);
    }
    if (disconnect_) {
      // The lease was marked by a server disconnect while no poll was parked: deliver it now (the
      // lease is already gone).
      auto& d = *disconnect_;
      shell_.session().disconnect(d.code, d.reason, d.reconnect, n_.reconnect_after(d));
      shell_.drain(now);
      return respond(200);
    }
    // Before subscribing: a join/leave from now on is queued on the lease, for this poll or the next.
    n_.leases.watch(id, p_.channels);
    for (std::size_t i = 0; i < p_.channels.size(); ++i) {
      protocol::command sub{.kind = protocol::command_kind::subscribe};
      sub.channel = p_.channels[i];
      sub.since = p_.since[i];
      shell_.session().handle_command(sub, now);
      shell_.drain(now);
    }
    // Every subscribe answered (inline with the memory stores), or once the last one is.
    if (!shell_.session().requests_pending()) return subscribed();
    shell_.on_settled = [this, self = shared_from_this()] {
      if (!shell_.session().requests_pending() && state_ == poll_state::running) subscribed();
    };
  }

  // Every subscribe of this poll has its answer: answer now, or park.
  void subscribed() {
    shell_.on_settled = nullptr;
    const auto& id = shell_.session().client();
    n_.leases.set_presence(id, shell_.presence_channels());
    if (open_ || has_news()) return respond(200);
    if (n_.met.parked_polls.load(std::memory_order_relaxed) >= n_.cfg.max_parked_polls) {
      shell_.frames.clear();
      protocol::frame f{.kind = protocol::frame_kind::error};
      f.error_code = code::too_many_requests_in_flight;
      f.reason = "too many parked polls";
      shell_.frames.push_back(control_ptr(make_control(protocol::encode(f))));
      return respond(http_status(code::too_many_requests_in_flight));
    }
    // Events queued since the last poll answer at once; else the lease wakes this poll when one
    // arrives.
    auto queued = n_.leases.park(id, serial_, [wp = weak_from_this(), &ioc = w_.ioc] {
      net::post(ioc, [wp] { if (auto self = wp.lock()) self->respond(200); });
    });
    if (!queued.empty()) {
      for (auto& e : queued) shell_.frames.push_back(e);
      return respond(200);
    }
    state_ = poll_state::parked;
    n_.met.parked_polls.fetch_add(1, std::memory_order_relaxed);
    w_.conns.insert(this);
    registered_ = true;
    shell_.on_frame = [this] {
      if (post_pending_ || state_ == poll_state::answered) return;
      post_pending_ = true;
      // Answer after this turn of the loop, so items fanned out together go out together.
      net::post(w_.ioc, [self = shared_from_this()] { self->respond(200); });
    };
    hold_.expires_after(std::chrono::milliseconds(n_.cfg.poll_hold_ms));
    hold_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->respond(200);
    });
  }

  void tick(std::uint64_t) override {}
  void server_disconnect(const disconnect_order& d, std::uint64_t after_ms) override {
    // A parked poll is answered at once with the `disconnect` frame; its lease ends with it.
    n_.leases.remove(shell_.session().client());
    shell_.session().disconnect(d.code, d.reason, d.reconnect, after_ms);
    shell_.drain(n_.clk.now_ms());
  }
  const std::string& client_id() const override { return shell_.session().client(); }
  const std::string& user_id() const override { return shell_.session().user(); }
  bool is_stream() const override { return false; }   // its lease is counted

 private:
  static protocol::stream_policy poll_stream_policy(node& n) {
    auto sp = n.stream_policy(false);
    // A poll's answer is built at once and written by Beast: its size is bounded by what arrives
    // before it is answered (it answers at the first item), and a resume replay is history anyway.
    sp.queue_bytes = std::numeric_limits<std::size_t>::max() / 2;
    return sp;
  }

  // Whether the frames so far are worth answering without waiting: anything but informational
  // control frames (`connected`, `subscribed` confirming an up-to-date cursor).
  bool has_news() {
    for (auto& o : shell_.frames) {
      auto* c = std::get_if<control_ptr>(&o);
      if (!c || !(*c)->informational) return true;
    }
    return false;
  }

  void respond(unsigned status) {
    if (state_ == poll_state::answered) return;
    if (state_ == poll_state::parked) n_.met.parked_polls.fetch_sub(1, std::memory_order_relaxed);
    state_ = poll_state::answered;
    hold_.cancel();
    if (registered_) {
      w_.conns.erase(this);
      registered_ = false;
    }
    shell_.on_frame = nullptr;
    shell_.release(true);   // leased presence stays until the lease ends or the next poll renews it
    ip_slot_.reset();       // a poll counts against its address only until it is answered
    const auto& id = shell_.session().client();
    if (status == 200)
      for (auto& e : n_.leases.unpark(id, serial_)) shell_.frames.push_back(e);
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(status), req_.version());
    res->set(http::field::server, "pushwire");
    res->set(http::field::content_type, "application/x-ndjson");
    res->set(http::field::cache_control, "no-cache");
    add_cors(n_.cfg, req_, res->base());
    auto& cursor = shell_.stream();
    std::string& body = res->body();
    for (auto& o : shell_.frames) {
      if (auto m = mark_of(o); m.pos) cursor.wrote_position(m.channel, *m.pos, m.publication);
      // A later poll needs no `connected` again, nor a `subscribed` that confirms its cursor.
      auto* c = std::get_if<control_ptr>(&o);
      if (!open_ && c && (*c)->informational) continue;
      body += frame_text(o);
    }
    if (body.empty()) body = frame_text(ping_frame());
    if (status == 200) res->set("Pushwire-Cursor", cursor.token());
    res->keep_alive(req_.keep_alive() && status == 200 && !shell_.closed);
    res->prepare_payload();
    stream_.expires_after(std::chrono::milliseconds(n_.cfg.request_timeout_ms));
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t n) {
      self->n_.met.bytes_sent.fetch_add(n, std::memory_order_relaxed);
      if (ec || !res->keep_alive()) {
        beast::error_code e;
        self->stream_.socket().shutdown(tcp::socket::shutdown_send, e);
        self->stream_.close();
        return;
      }
      continue_http(self->n_, self->w_, std::move(self->stream_), std::move(self->buffer_), std::move(self->life_));
    });
  }

  static inline std::atomic<std::uint64_t> next_serial_{1};
  node& n_;
  worker& w_;
  collect_shell shell_;
  http_stream stream_;
  beast::flat_buffer buffer_;
  request req_;
  std::shared_ptr<void> life_;
  std::shared_ptr<void> ip_slot_;   // --max-connections-per-ip: held from the start until answered
  stream_params p_;
  bool open_;
  std::optional<disconnect_order> disconnect_;
  net::steady_timer hold_;
  std::uint64_t serial_;            // this poll, for the lease's wake-up
  poll_state state_ = poll_state::running;
  bool registered_ = false, post_pending_ = false;
};

}  // namespace

void run_poll(node& n, worker& w, http_stream stream, beast::flat_buffer buffer, request req,
              std::shared_ptr<void> life, std::shared_ptr<void> ip_slot) {
  std::string_view target = req.target();
  auto qpos = target.find('?');
  auto q = parse_query(qpos == std::string_view::npos ? std::string_view{} : target.substr(qpos + 1));
  std::string token = q["token"];
  if (auto a = req[http::field::authorization]; token.empty() && a.starts_with("Bearer ")) token = std::string(a.substr(7));
  std::string client = q["client"];
  if (!client.empty() && !node::valid_client_id(client))
    return write_error_and_close(n, std::move(stream), req, code::bad_frame, "malformed client id");
  stream_params p;
  code c;
  std::string reason;
  if (!parse_stream_params(n.cfg.max_stream_channels, q["channels"], q["cursor"], token, p, c, reason))
    return write_error_and_close(n, std::move(stream), req, c, reason);
  // The lease belongs to one user: find out whose poll this is before touching it (a refused token
  // is answered by the session, with no lease).
  std::string user;
  if (!token.empty() && n.verifier()) {
    auto v = n.verifier()(token, n.clk.now_ms());
    if (v.error == code::ok) user = v.user;
  }
  disconnect_order advice;
  auto st = n.leases.acquire(client, user, q["open"] == "1", n.clk.now_ms(), advice);
  if (st == poll_leases::status::full)
    return write_error_and_close(n, std::move(stream), req, code::too_many_connections, "too many polling clients");
  std::optional<disconnect_order> disconnect;
  if (st == poll_leases::status::disconnect) disconnect = advice;
  bool open = st == poll_leases::status::created;
  std::make_shared<poll_request>(n, w, std::move(stream), std::move(buffer), std::move(req), std::move(life),
                                 std::move(ip_slot), std::move(p), std::move(client), open, std::move(disconnect))->run();
}

}  // namespace pushwire::server

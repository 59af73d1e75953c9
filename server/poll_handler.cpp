// Long-polling transport (docs/protocol.md "Long-polling"). Each request names its channels and
// positions (the cursor), so any node can answer it; the shell feeds connect + a subscribe per
// channel into a protocol session that collects frames. The opening poll (`open=1`, or no known
// `client=`) answers at once with `connected` (a fresh client id) and `subscribed` frames; a later
// poll sends that id back as `client=` and renews its lease (shared_state::acquire_lease). The lease
// holds the client's presence membership (join once, leave when it expires) and a pending server
// disconnect between polls. A cursor that is behind answers at once with the missed messages (or
// `recovered:false`); otherwise the request parks until the first message(s) arrive or the hold
// time passes (then a `ping`). Join/leave frames come from the lease's queue (so those between
// polls are not lost; shared_state::lease_watch), never the client's own.
#include "protocol/frame_codec.hpp"
#include "server/net.hpp"
#include "server/shell.hpp"

namespace pushwire::server {

using protocol::code;

namespace {

class poll_request final : public conn_base, public std::enable_shared_from_this<poll_request> {
 public:
  poll_request(shared_state& s, worker& w, beast::tcp_stream stream, beast::flat_buffer buffer, request req,
               std::shared_ptr<void> life, std::shared_ptr<void> ip_slot, stream_params p, std::string client,
               bool open, std::optional<disconnect_target> disconnect, std::uint64_t now)
      : s_(s), w_(w), shell_(s, w.hub, w.index, client, now, s.policy), stream_(std::move(stream)),
        buffer_(std::move(buffer)), req_(std::move(req)), life_(std::move(life)), ip_slot_(std::move(ip_slot)),
        p_(std::move(p)), open_(open), disconnect_(std::move(disconnect)), now_(now), positions_(p_.since),
        hold_(w.ioc), serial_(s.next_poll_serial.fetch_add(1, std::memory_order_relaxed)) {}

  ~poll_request() override {
    if (parked_) s_.met.parked_polls.fetch_sub(1, std::memory_order_relaxed);
    if (registered_) w_.conns.erase(this);
  }

  void run() {
    auto now = now_;
    // The presence member is the lease: same id, same expiry (the engine renews it on every poll).
    shell_.lease() = now + s_.cfg.effective_lease_ms();
    shell_.presence_from_lease = true;
    protocol::command c{.kind = protocol::command_kind::connect};
    c.token = p_.token;
    shell_.session().handle_command(c, now);
    shell_.drain(now);
    if (shell_.session().state() != protocol::session_state::open) {
      if (open_) s_.remove_lease(shell_.session().client());
      return respond(shell_.closed ? http_status(*shell_.closed) : 401);
    }
    if (disconnect_) {
      // The lease was marked by a server disconnect while no poll was parked: deliver it now (the
      // lease is already gone).
      auto& t = *disconnect_;
      shell_.session().disconnect(t.code, t.reason, t.reconnect, t.after_ms + s_.jitter(t.jitter_ms));
      shell_.drain(now);
      return respond(200);
    }
    // Before subscribing: a join/leave from now on is queued on the lease, for this poll or the next.
    s_.lease_watch(shell_.session().client(), p_.channels);
    for (std::size_t i = 0; i < p_.channels.size(); ++i) {
      protocol::command sub{.kind = protocol::command_kind::subscribe};
      sub.channel = p_.channels[i];
      sub.since = p_.since[i];
      shell_.session().handle_command(sub, now);
      shell_.drain(now);
    }
    s_.lease_presence(shell_.session().client(), shell_.presence_channels());
    if (open_ || has_news()) return respond(200);
    if (s_.met.parked_polls.load() >= s_.cfg.max_parked_polls) {
      shell_.frames.clear();
      protocol::frame f{.kind = protocol::frame_kind::error};
      f.error_code = code::too_many_requests_in_flight;
      f.reason = "too many parked polls";
      shell_.frames.push_back(make_control(protocol::encode(f)));
      return respond(http_status(code::too_many_requests_in_flight));
    }
    // Presence changes queued since the last poll answer at once; else the lease wakes this poll
    // when one arrives.
    auto queued = s_.lease_park(shell_.session().client(), serial_,
                                [wp = weak_from_this(), &ioc = w_.ioc] {
                                  net::post(ioc, [wp] { if (auto self = wp.lock()) self->respond(200); });
                                });
    if (!queued.empty()) {
      for (auto& m : queued) shell_.frames.push_back(std::move(m));
      return respond(200);
    }
    parked_ = true;
    s_.met.parked_polls.fetch_add(1, std::memory_order_relaxed);
    w_.conns.insert(this);
    registered_ = true;
    shell_.on_frame = [this] {
      if (post_pending_ || answered_) return;
      post_pending_ = true;
      // Answer after this turn of the loop, so frames fanned out together go out together.
      net::post(w_.ioc, [self = shared_from_this()] { self->respond(200); });
    };
    hold_.expires_after(std::chrono::milliseconds(s_.cfg.poll_hold_ms));
    hold_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->respond(200);
    });
  }

  void tick(std::uint64_t) override {}
  void server_disconnect(const disconnect_target& t, std::uint64_t after_ms) override {
    // A parked poll is answered at once with the `disconnect` frame; its lease ends with it.
    s_.remove_lease(shell_.session().client());
    shell_.session().disconnect(t.code, t.reason, t.reconnect, after_ms);
    shell_.drain(steady_ms());
  }
  const std::string& client_id() const override { return shell_.session().client(); }
  const std::string& user_id() const override { return shell_.session().user(); }

 private:
  // Whether the frames so far are worth answering without waiting: anything except the `connected`
  // frame and `subscribed` frames that only confirm an up-to-date cursor.
  bool has_news() {
    for (auto& m : shell_.frames) {
      if (m->frame.starts_with("{\"type\":\"connected\"")) continue;
      if (m->frame.starts_with("{\"type\":\"subscribed\"") && m->frame.find("\"recovered\":true") != std::string::npos)
        continue;
      return true;
    }
    return false;
  }

  std::size_t channel_index(std::string_view ch) const {
    for (std::size_t i = 0; i < p_.channels.size(); ++i)
      if (p_.channels[i] == ch) return i;
    return p_.channels.size();
  }

  void respond(unsigned status) {
    if (answered_) return;
    answered_ = true;
    beast::error_code ec;
    hold_.cancel();
    if (parked_) {
      parked_ = false;
      s_.met.parked_polls.fetch_sub(1, std::memory_order_relaxed);
    }
    if (registered_) {
      w_.conns.erase(this);
      registered_ = false;
    }
    shell_.on_frame = nullptr;
    shell_.release(true);   // leased presence stays until the lease ends or the next poll renews it
    ip_slot_.reset();       // a poll counts against its address only until it is answered
    if (status == 200)
      for (auto& m : s_.lease_unpark(shell_.session().client(), serial_)) shell_.frames.push_back(std::move(m));
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(status), req_.version());
    res->set(http::field::server, "pushwire");
    res->set(http::field::content_type, "application/x-ndjson");
    res->set(http::field::cache_control, "no-cache");
    add_cors(s_, req_, res->base());
    std::string& body = res->body();
    for (auto& m : shell_.frames) {
      bool drop = !open_ && (m->frame.starts_with("{\"type\":\"connected\"") ||
                             (m->frame.starts_with("{\"type\":\"subscribed\"") &&
                              m->frame.find("\"recovered\":true") != std::string::npos));
      if (!m->pos.epoch.empty()) {
        auto i = channel_index(m->channel);
        if (i < positions_.size()) {
          auto& cur = positions_[i];
          if (!cur || cur->epoch != m->pos.epoch || m->pos.offset > cur->offset ||
              m->kind != message_kind::publication)
            cur = m->pos;
        }
      }
      if (!drop) body += m->frame;
    }
    if (body.empty()) body = "{\"type\":\"ping\"}\n";
    if (status == 200) res->set("Pushwire-Cursor", protocol::encode_resume_token(positions_));
    res->keep_alive(req_.keep_alive() && status == 200 && !shell_.closed);
    res->prepare_payload();
    stream_.expires_after(std::chrono::milliseconds(s_.cfg.request_timeout_ms));
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec2, std::size_t n) {
      self->s_.met.bytes_sent.fetch_add(n, std::memory_order_relaxed);
      if (ec2 || !res->keep_alive()) {
        beast::error_code e;
        self->stream_.socket().shutdown(tcp::socket::shutdown_send, e);
        self->stream_.close();
        return;
      }
      continue_http(self->s_, self->w_, std::move(self->stream_), std::move(self->buffer_), std::move(self->life_));
    });
  }

  shared_state& s_;
  worker& w_;
  collect_shell shell_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  request req_;
  std::shared_ptr<void> life_;
  std::shared_ptr<void> ip_slot_;   // --max-connections-per-ip: held from the start until answered
  stream_params p_;
  bool open_;
  std::optional<disconnect_target> disconnect_;
  std::uint64_t now_;
  std::vector<std::optional<protocol::position>> positions_;
  net::steady_timer hold_;
  std::uint64_t serial_;            // this poll, for the lease's wake-up
  bool parked_ = false, registered_ = false, answered_ = false, post_pending_ = false;
};

}  // namespace

void run_poll(shared_state& s, worker& w, beast::tcp_stream stream, beast::flat_buffer buffer, request req,
              std::shared_ptr<void> life, std::shared_ptr<void> ip_slot) {
  std::string_view target = req.target();
  auto qpos = target.find('?');
  auto q = parse_query(qpos == std::string_view::npos ? std::string_view{} : target.substr(qpos + 1));
  std::string token = q["token"];
  if (auto a = req[http::field::authorization]; token.empty() && a.starts_with("Bearer ")) token = std::string(a.substr(7));
  std::string client = q["client"];
  if (!client.empty() && !shared_state::valid_client_id(client))
    return write_error_and_close(s, std::move(stream), req, code::bad_frame, "malformed client id");
  stream_params p;
  code c;
  std::string reason;
  if (!parse_stream_params(s, q["channels"], q["cursor"], token, p, c, reason))
    return write_error_and_close(s, std::move(stream), req, c, reason);
  // The lease belongs to one user: find out whose poll this is before touching it (a refused token
  // is answered by the session below, with no lease).
  std::string user;
  if (!token.empty() && s.verifier) {
    auto v = s.verifier(token, steady_ms());
    if (v.error == code::ok) user = v.user;
  }
  auto now = steady_ms();
  disconnect_target advice;
  auto st = s.acquire_lease(client, user, q["open"] == "1", now, advice);
  if (st == shared_state::lease_status::full)
    return write_error_and_close(s, std::move(stream), req, code::too_many_connections, "too many polling clients");
  std::optional<disconnect_target> disconnect;
  if (st == shared_state::lease_status::disconnect) disconnect = advice;
  bool open = st == shared_state::lease_status::created;
  std::make_shared<poll_request>(s, w, std::move(stream), std::move(buffer), std::move(req), std::move(life),
                                 std::move(ip_slot), std::move(p), std::move(client), open, std::move(disconnect), now)->run();
}

}  // namespace pushwire::server

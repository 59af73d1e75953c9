// The Pusher endpoint's transport: a WebSocket at /app/{key} speaking Pusher's protocol 7 on the
// same WebSocket connection as Pushwire's own /ws (ws_conn.hpp over stream_conn.hpp: shared
// buffers, one gather write per flush, the stream machine's queue bound, heartbeats and dead-peer
// deadline). The protocol is protocol/pusher/pusher_session's; this file frames its messages and
// passes on its notes.
//
// Fan-out: a publication goes out as its Pusher message (wire/outgoing.cpp, pusher_text), encoded
// once per node and shared like the other formats; the one per-subscriber step is comparing the
// publication's excluded socket id (client events are not echoed, the API's socket_id) with ours.
#include "protocol/json_scan.hpp"
#include "protocol/pusher/pusher_session.hpp"
#include "server/ops/log.hpp"
#include "server/pusher/pusher_signature.hpp"
#include "server/pusher/webhooks.hpp"
#include "server/transport/transports.hpp"
#include "server/transport/ws_conn.hpp"

namespace pushwire::server {

using protocol::code;
namespace pp = protocol::pusher;

namespace {

pp::session_config session_config_of(node& n, const pusher_app* app, std::string socket_id) {
  pp::session_config c;
  c.socket_id = std::move(socket_id);
  c.max_subscriptions = n.cfg.max_subscriptions;
  c.max_message_bytes = n.cfg.max_message_bytes;
  c.activity_timeout_s = n.cfg.pusher_activity_timeout_s;
  if (!app) return c;
  c.app_key = app->key;
  c.ns = app->ns;
  c.client_events = app->client_events;
  c.client_events_per_s = app->client_events_per_s;
  c.sign = [secret = app->secret](std::string_view text) { return hmac_sha256_hex(secret, text); };
  return c;
}

class pusher_ws_session final : public ws_conn<pusher_ws_session> {
 public:
  static constexpr const char* transport_name = "pusher";

  pusher_ws_session(node& n, worker& w, socket_link sock, std::shared_ptr<void> life, const pusher_app* app,
                    std::string_view version)
      : ws_conn(n, w, std::move(sock), std::move(life)), app_(app), socket_id_(n.new_socket_id()),
        psession_(session_config_of(n, app, socket_id_), n.clk.now_ms()) {
    presence_member_ = &socket_id_;
    greet(version);
  }

  ~pusher_ws_session() override { finish(); }

  // connection_established, or the refusal: an unknown key, a protocol version we do not speak,
  // the app's connection quota.
  void greet(std::string_view version) {
    if (!app_) return psession_.refuse(pp::close_code::app_not_found, "unknown app key");
    auto v = protocol::parse_uint(version);
    if (version.empty()) return psession_.refuse(pp::close_code::no_version, "no protocol version given (?protocol=7)");
    if (!v || *v < 5 || *v > 7) return psession_.refuse(pp::close_code::version_not_supported, "protocol versions 5 to 7 are supported");
    app_index_ = static_cast<std::size_t>(app_ - node_.cfg.pusher_apps.data());
    auto open = node_.pusher_connections[app_index_].fetch_add(1) + 1;
    counted_ = true;
    if (app_->max_connections && open > app_->max_connections)
      return psession_.refuse(pp::close_code::over_connection_quota, "over the app's connection quota");
    psession_.start();
  }

  // --- stream_conn's transport hooks ---
  std::size_t item_size(const outgoing& o) const { return pusher_text(o).size(); }

  // One WebSocket message per item (pusher-js reads one JSON message per frame), all in one write.
  void build_write(std::vector<queued>& items, std::vector<net::const_buffer>& bufs) {
    headers_.resize(items.size() * 10);
    for (std::size_t i = 0; i < items.size(); ++i) {
      auto& t = pusher_text(items[i].item);
      auto* h = headers_.data() + i * 10;
      bufs.emplace_back(h, ws_text_header(h, t.size()));
      bufs.emplace_back(t.data(), t.size());
    }
  }
  void release_write_buffers() { std::vector<unsigned char>().swap(headers_); }

  // --- ws_conn's protocol hooks ---
  void on_accepted() {
    node_.open_streams.fetch_add(1);
    node_.met.connections_pusher.fetch_add(1, std::memory_order_relaxed);
    count_deliveries_as(transport_kind::pusher);
  }
  void on_message(std::string_view text, std::uint64_t now) { psession_.handle_text(text, now); }
  void before_release() {
    psession_.connection_lost();
    pass_notes();
    psession_.shell_closed();
  }
  void after_release(bool accepted) {
    if (counted_) node_.pusher_connections[app_index_].fetch_sub(1);
    counted_ = false;
    if (!accepted) return;
    node_.open_streams.fetch_sub(1);
    node_.met.connections_pusher.fetch_sub(1, std::memory_order_relaxed);
  }

  // --- the shell's protocol hooks: the Pusher session instead of Pushwire's ---
  void deliver(const outgoing& o) override {
    // Not back to the connection the publication came from (its own client event, the API's socket_id).
    if (auto* p = as_publication(o); p && pusher_excluded(*p) == socket_id_) return;
    shell::deliver(o);
  }
  std::optional<protocol::session_action> next_session_action() override {
    pass_notes();
    return psession_.poll_action();
  }
  void session_result(const protocol::engine_reply& r, std::uint64_t now) override { psession_.handle_result(r, now); }
  void session_tick(std::uint64_t) override {}
  bool take_member_event(const channel_event& e) override {
    if (e.what == channel_event::kind::gap) return true;
    psession_.handle_member_event(
        pp::member_event{e.what == channel_event::kind::join, e.channel, e.who.user, e.who.client, e.who.info});
    drain(node_.clk.now_ms());
    return true;
  }
  void announce_break(const std::string&, const protocol::position&) override {}   // no resume in Pusher's protocol

  void on_stream_action(protocol::stream_action a) override {
    switch (a) {
      case protocol::stream_action::send_ping: {
        // pusher-js answers pusher:ping with pusher:pong (the stream machine counts any byte read).
        static const std::string ping = [] {
          std::string s;
          pp::pusher_session::encode_message(s, "pusher:ping", {}, "{}");
          return s;
        }();
        if (stream_.queue(ping.size(), false)) push(make_control(ping), ping.size(), false);
        return;
      }
      case protocol::stream_action::send_notice:
        drop_pending();
        psession_.disconnect(code::slow_consumer, "send queue over its byte bound", true);
        return drain(node_.clk.now_ms());
      default:
        return stream_conn::on_stream_action(a);
    }
  }
  void server_disconnect(const disconnect_order& d, std::uint64_t) override {
    psession_.disconnect(d.code, d.reason, d.reconnect);
    drain(node_.clk.now_ms());
  }
  const std::string& client_id() const override { return socket_id_; }
  const std::string& user_id() const override { return user_key_; }

 private:
  // What the session tells besides its actions: a sign-in (the user that the API's
  // terminate_connections matches, user_id()) and the webhooks' events.
  void pass_notes() {
    while (auto n = psession_.poll_note()) {
      switch (n->what) {
        case pp::note::kind::signed_in:
          user_key_ = pusher_user_key(*app_, n->user);
          break;
        case pp::note::kind::member_added:
          if (node_.webhooks) node_.webhooks->member_added(*app_, n->channel, n->user);
          break;
        case pp::note::kind::member_removed:
          if (node_.webhooks) node_.webhooks->member_removed(*app_, n->channel, n->user);
          break;
        case pp::note::kind::client_event:
          if (node_.webhooks) node_.webhooks->client_event(*app_, n->channel, n->event, n->data, socket_id_, n->user);
          break;
      }
    }
  }

  const pusher_app* app_;
  std::size_t app_index_ = 0;
  bool counted_ = false;
  std::string socket_id_;
  std::string user_key_;
  pp::pusher_session psession_;
  std::vector<unsigned char> headers_;
};

}  // namespace

void run_pusher_session(node& n, worker& w, socket_link sock, request req, std::shared_ptr<void> life,
                        const pusher_app* app, std::string_view version) {
  std::make_shared<pusher_ws_session>(n, w, std::move(sock), std::move(life), app, version)->run(std::move(req));
}

}  // namespace pushwire::server

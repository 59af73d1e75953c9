// The server side of one Pusher-protocol connection (protocol 7, what pusher-js 8 speaks), with no
// I/O of its own: the WebSocket shell (server/pusher/pusher_ws_session.cpp) feeds it messages,
// engine results and presence events, and carries out what it asks. docs/pusher.md is the user's
// view.
//
// It speaks through the same actions as the Pushwire session (server_session.hpp), so the shell
// runs subscribes, presence and publishes against the hub the same way for both protocols:
//   send        a Pusher message ("event"/"channel"/"data"), already encoded;
//   subscribe   a hub channel (with `since` for cache channels, so the last event comes as the
//               resume replay, in order with live ones), joining presence as `member_user`;
//   unsubscribe, publish (a client event, mapped by pusher_mapping.hpp), history (a cache
//               channel's newest position), close (`close_code` is a Pusher close code).
// Besides, notes tell the shell what a webhook or the connection registry wants to know.
//
// States: open (connection_established was sent) --fatal input / disconnect()--> closing
// --shell_closed()--> closed. In `closing` every input is ignored.
//
// Per subscription: cache channels first read the channel's newest position (`reading_top`), then
// subscribe from just before it; every channel is `subscribing` until the hub answers, then
// `subscribed`. A presence subscription keeps the channel's members as this connection was told
// them (one per user id, over the user's connections), so member_added / member_removed go out
// only when a user's first connection joins or last one leaves.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/server_session.hpp"
#include "protocol/small_fifo.hpp"

namespace pushwire::protocol::pusher {

// Pusher's close codes (docs/pusher.md): 4000-4099 the client must not reconnect, 4100-4199 it
// backs off, 4200-4299 it reconnects at once.
enum class close_code : std::uint16_t {
  app_not_found = 4001,
  over_connection_quota = 4004,
  version_not_supported = 4007,
  no_version = 4008,
  unauthorized = 4009,   // also: terminated by the server (users/{id}/terminate_connections)
  over_capacity = 4100,  // also: a slow consumer, told to back off
  reconnect_now = 4200,  // the server is going away (drain, restart)
  pong_not_received = 4201,
};
// The pusher:error code of a client event over its rate limit.
inline constexpr int client_event_rate_limited = 4301;

inline constexpr std::size_t max_channel_length = 164;          // Pusher's limit
inline constexpr std::size_t max_channel_data_bytes = 4096;     // Pusher's 1 KB user_info plus its id and envelope
inline constexpr std::size_t max_user_id_bytes = 128;
inline constexpr std::string_view user_channel_prefix = "#server-to-user-";

enum class channel_type : std::uint8_t { public_, private_, encrypted, presence, user };
struct channel_kind {
  channel_type type = channel_type::public_;
  bool cache = false;
};
// Whether `name` is a valid Pusher channel name, and of which kind.
std::optional<channel_kind> classify_channel(std::string_view name);

struct session_config {
  std::string socket_id;        // "<digits>.<digits>", unique over the cluster
  std::string app_key;
  std::string ns;               // the app's Pushwire namespace ("" = default)
  bool client_events = true;
  std::size_t client_events_per_s = 10;
  std::size_t max_subscriptions = 128;
  std::size_t max_message_bytes = 65536;
  std::uint64_t activity_timeout_s = 120;
  // Lowercase hex HMAC-SHA256 of a message with the app secret.
  std::function<std::string(std::string_view)> sign;
};

struct member_event {
  bool joined = true;
  std::string hub_channel;
  std::string user, client, info;
};

// What the shell passes on: to webhooks and, on sign-in, to the connection registry.
struct note {
  enum class kind : std::uint8_t { signed_in, member_added, member_removed, client_event };
  kind what = kind::signed_in;
  std::string channel;   // Pusher name
  std::string user;      // signed_in: the user id; member_*: the user id; client_event: presence user or ""
  std::string event, data;
};

enum class pusher_state : std::uint8_t { open, closing, closed };

class pusher_session {
 public:
  pusher_session(session_config cfg, std::uint64_t now);
  // The first thing a connection hears: connection_established, or an error and the close (an
  // unknown app key, a protocol version we do not speak, the app's connection quota).
  void start();
  void refuse(close_code c, std::string_view why);

  void handle_text(std::string_view message, std::uint64_t now);
  void handle_result(const engine_reply& reply, std::uint64_t now);
  void handle_member_event(const member_event& e);
  // The server ends the connection (API, shutdown, slow consumer): Pushwire's code in, Pusher's out.
  void disconnect(code c, std::string_view reason, bool reconnect);
  void close(close_code c, std::string_view reason);
  void shell_closed();
  // The connection is gone: for each presence channel where it was its user's last connection
  // (as this connection saw the channel), a member_removed note for the webhooks.
  void connection_lost();

  std::optional<session_action> poll_action();
  std::optional<note> poll_note();

  pusher_state state() const { return state_; }
  const std::string& socket_id() const { return cfg_.socket_id; }
  const std::string& user() const { return user_; }   // signed-in user id, or ""
  std::string hub_channel(std::string_view pusher_channel) const;
  std::string pusher_channel(std::string_view hub_channel) const;
  std::size_t subscriptions() const { return channels_.size(); }

  // Encodes one Pusher message; `data` is carried as a JSON string, as pusher-js expects;
  // `user_id`: the sender of a client event on a presence channel.
  static void encode_message(std::string& out, std::string_view event, std::string_view channel, std::string_view data,
                             std::string_view user_id = {});

 private:
  enum class sub_state : std::uint8_t { reading_top, subscribing, subscribed };
  struct presence_view {
    std::map<std::string, std::string, std::less<>> client_user;   // connection -> user id
    std::map<std::string, std::pair<std::size_t, std::string>, std::less<>> users;   // user -> (connections, info)
    bool ready = false;
    std::vector<member_event> early;   // events before the member list came (bounded)
  };
  struct channel {
    channel_kind kind;
    sub_state state = sub_state::subscribing;
    std::uint64_t request = 0;
    std::string user, info;   // presence: this connection's member
    presence_view presence;
  };
  enum class pending_kind : std::uint8_t { top, subscribe, publish };
  struct pending {
    pending_kind kind;
    std::string channel;   // Pusher name
  };

  void on_subscribe(std::string_view data_raw, bool data_is_object);
  void on_unsubscribe(std::string_view data_raw, bool data_is_object);
  void on_signin(std::string_view data_raw, bool data_is_object);
  void on_client_event(std::string_view event, std::string_view channel, std::string_view data_raw, bool data_is_string);
  void start_subscribe(const std::string& name, channel& ch, std::optional<position> since);
  void subscribed(const std::string& name, channel& ch, const engine_reply& r);
  void apply(const std::string& name, channel& ch, const member_event& e, bool tell);
  void send(std::string_view event, std::string_view channel, std::string_view data);
  void send_error(std::optional<int> code, std::string_view message);
  void subscription_error(std::string_view channel, std::string_view type, std::string_view error, int status);
  bool valid_signature(std::string_view auth, std::string_view signed_text) const;
  bool take_client_event(std::uint64_t now);

  session_config cfg_;
  pusher_state state_ = pusher_state::open;
  std::string user_;
  std::map<std::string, channel, std::less<>> channels_;
  std::map<std::uint64_t, pending> pending_;
  std::uint64_t next_request_ = 1;
  small_fifo<session_action> actions_;
  small_fifo<note> notes_;
  double event_tokens_ = 0;
  std::uint64_t event_at_ = 0;
};

}  // namespace pushwire::protocol::pusher

// The server side of one Pushwire connection, with no I/O of its own: every transport (WebSocket,
// SSE, long-poll, the command POST) is a thin shell around it.
//
// Theory of operation
// -------------------
// The shell feeds what happened in: handle_text(batch, now) for a WebSocket message or a POST body,
// handle_command(cmd, now) for commands a one-way shell builds from its URL (connect + subscribes),
// handle_result(reply, now) for the answer to an engine request, handle_timeout(now) when
// next_deadline() passed. After every input it drains poll_action():
//   send       `text` is one or more encoded frames ("\n"-terminated): queue them for the client;
//   subscribe / unsubscribe / publish / history / presence
//              an engine request with validated parameters; the shell executes it and answers with
//              handle_result() carrying the same `request` number (synchronously or later);
//   close      close the connection with `close_code` (a `disconnect` or `error` frame was already
//              emitted as a send when the code warrants one).
// Time is an argument (ms on any monotonic clock); the session never reads a clock.
//
// States:
//   awaiting_connect --connect ok--> open
//   awaiting_connect --connect refused / other command first / handshake timeout--> closing
//   open             --fatal input (malformed frame), disconnect(), drop, token expiry--> closing
//   closing          --shell_closed()--> closed
// In `closing` every input is ignored except shell_closed(); the shell finishes writing and closes.
//
// Validation lives here so that all transports refuse the same things with the same codes:
// channel names (channel_name.hpp), configured namespaces (4002), client publish / presence
// permission and private channels without a grant (4003), subscription limit (4006), already /
// not subscribed (4013 / 4012), payload size (4007), commands before connect (4017). Token
// verification (HMAC) is the shell's: it passes a verifier that returns claims or an error code.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/action_queue.hpp"
#include "protocol/codes.hpp"
#include "protocol/frame.hpp"
#include "protocol/position.hpp"

namespace pushwire::protocol {

enum class session_state : std::uint8_t { awaiting_connect, open, closing, closed };
std::string_view session_state_name(session_state s);

struct namespace_policy {
  std::string name;                 // "" = the default namespace
  bool client_publish = false;      // clients may publish (else only the API)
  bool presence = false;            // presence (join/leave, member list) is kept
  bool anonymous_presence = false;  // anonymous connections appear in presence under their client id
  bool private_channels = false;    // every channel of the namespace needs a grant
};

struct session_policy {
  std::vector<namespace_policy> namespaces;   // the default namespace is added if missing
  bool allow_anonymous = true;                // connections without a token
  bool allow_drop = false;                    // the `drop` command (--demo only)
  std::size_t max_subscriptions = 128;        // per connection: bounds per-connection state
  std::size_t max_message_bytes = 65536;      // one published payload; N passes, N+1 refused
  std::uint64_t ping_ms = 25000;              // advertised in `connected`
  std::uint64_t handshake_timeout_ms = 10000; // open -> `connect` command
  std::size_t max_batch = 100;                // commands per batch: bounds work per input
  std::size_t max_token_bytes = 4096;         // a JWT larger than this is refused unread
  // Subscribes plus unsubscribes per connection (a token bucket; over it: error 4011, the
  // connection stays). Each one costs the hub and the broker a registration, so a client must not
  // churn them without bound. The burst lets a page subscribe to all its channels at once (the
  // default max_subscriptions, 128) and still unsubscribe them; the rate covers a UI that switches
  // rooms far faster than a person clicks. 0 = no limit.
  std::size_t churn_burst = 256;
  std::size_t churn_per_s = 20;
  // A connection whose token expires while it is open is warned this long before (an `error`
  // frame 4005 without id: reconnect with a fresh token), then disconnected with 4005 at expiry.
  // 30 s gives a client time to fetch a token and reconnect before the cut.
  std::uint64_t token_refresh_warning_ms = 30000;
  const namespace_policy* find(std::string_view ns) const;
};

struct verified_token {
  code error = code::ok;
  std::string reason;
  std::string user;                     // "" = anonymous
  std::vector<std::string> channels;    // grants: names or "prefix*" patterns
  bool restricts_channels = false;      // the token lists its channels: only those are allowed
  std::optional<std::uint64_t> expires_in_ms;   // until the token stops being accepted (none: never)
};
// Verifies a connection token; called with an empty token for anonymous connections too (the
// session handles the anonymous case itself and calls it only for non-empty tokens).
using token_verifier = std::function<verified_token(std::string_view token, std::uint64_t now)>;

// Whether `grants` (names or "prefix*" patterns) cover `channel`.
bool channel_granted(const std::vector<std::string>& grants, std::string_view channel);

enum class session_action_kind : std::uint8_t { send, subscribe, unsubscribe, publish, history, presence, close };

struct session_action {
  session_action_kind kind = session_action_kind::send;
  std::string text;                     // send
  frame_kind sent = frame_kind::ping;   // send: the kind of the (first) frame in `text`
  code error = code::ok;                // send of an `error` frame: its code (for the shell's metrics)
  std::uint64_t request = 0;            // engine requests: echo in handle_result
  std::string channel;                  // requests; send: the frame's channel
  std::optional<bool> recovered;        // send: a `subscribed` frame's `recovered`
  std::optional<position> since;        // subscribe, history
  std::string data;                     // publish: raw JSON payload
  std::uint64_t limit = 0;              // history
  bool join_presence = false;           // subscribe: add this connection to the channel's presence
  std::string member_user, member_info; // join_presence: the member's user id and info (JSON) when
                                        // they are the subscription's own (Pusher's channel_data);
                                        // empty: the connection's user
  bool with_members = false;            // join_presence: the reply carries the members (after the join)
  code close_code = code::ok;           // close
  std::string reason;                   // close
};

struct member_entry {
  std::string user, client, info;
};

struct engine_reply {
  std::uint64_t request = 0;
  code error = code::ok;
  std::string reason;
  position pos;                         // subscribe/publish/history: channel position
  std::optional<bool> recovered;        // subscribe with since
  std::string data;                     // history: publications array; presence: members array
  std::vector<member_entry> members;    // subscribe with with_members
};

struct session_info {
  std::string client;                   // connection id, e.g. "c12"
  // false: a one-way stream (SSE), whose URL names its channels; its shell connects and
  // subscribes for the client, and it ends (to be retried) where a channel cannot be subscribed now.
  bool two_way = true;
};

// What every session of a server shares, read-only: held once and pointed to by each session (a
// copy in each connection was ~150 bytes of every idle one). make_session_rules() adds the default
// namespace where the policy lacks it.
struct session_rules {
  session_policy policy;
  token_verifier verifier;
};
std::shared_ptr<const session_rules> make_session_rules(session_policy policy, token_verifier verifier);

class server_session {
 public:
  server_session(std::shared_ptr<const session_rules> rules, session_info info, std::uint64_t now);
  // One session with rules of its own (tests, the fuzzer).
  server_session(session_policy policy, token_verifier verifier, session_info info, std::uint64_t now)
      : server_session(make_session_rules(std::move(policy), std::move(verifier)), std::move(info), now) {}

  void handle_text(std::string_view batch, std::uint64_t now);
  void handle_command(const command& cmd, std::uint64_t now);
  void handle_result(const engine_reply& reply, std::uint64_t now);
  void handle_timeout(std::uint64_t now);
  // The server ends the connection (API disconnect, shutdown, slow consumer, drop).
  void disconnect(code c, std::string_view reason, bool reconnect, std::uint64_t after_ms);
  void shell_closed();

  std::optional<session_action> poll_action();
  std::optional<std::uint64_t> next_deadline() const;

  session_state state() const { return state_; }
  const std::string& client() const { return client_; }
  const std::string& user() const { return user_; }
  bool subscribed(std::string_view channel) const;
  // Whether some request still waits for its handle_result().
  bool requests_pending() const { return !pending_.empty(); }

 private:
  struct pending {
    std::uint64_t request;
    command_kind kind;
    std::uint64_t id;
    std::string channel;
    bool had_since;
  };
  void command_in(command& c, std::uint64_t now);
  void do_connect(const command& c, std::uint64_t now);
  void send_frame(const frame& f);
  void send_error(std::uint64_t id, code c, std::string_view reason);
  void fail_and_close(std::uint64_t id, code c, std::string_view reason);
  void request(session_action a, const command& c);
  // Validates a channel for `kind`; on failure sends the error and returns false.
  bool check_channel(const command& c);
  // Takes a subscribe/unsubscribe from the churn budget; over it sends 4011 and returns false.
  bool churn_allowed(const command& c, std::uint64_t now);

  const session_policy& policy() const { return rules_->policy; }

  // (Members ordered so the flags share one word: every idle connection holds a session.)
  std::shared_ptr<const session_rules> rules_;
  std::string client_;   // session_info::client
  std::uint64_t handshake_deadline_;
  std::uint64_t token_expiry_ = 0;   // open connections with an expiring token (has_token_expiry_)
  std::string user_;
  std::vector<std::string> grants_;
  // Subscribed or subscribe pending: a flat vector (a set's node per channel cost an idle connection
  // ~50 bytes more); at most max_subscriptions, searched only by commands.
  std::vector<std::string> subs_;
  bool drop_subscription(std::string_view channel);   // false when it was not there
  // Requests waiting for their result, oldest first (results mostly come in order); no memory
  // while none waits.
  std::vector<pending> pending_;
  std::uint64_t next_request_ = 1;
  action_queue<session_action> actions_;
  double churn_tokens_ = 0;   // the churn budget left (see session_policy::churn_per_s)
  std::uint64_t churn_at_ = 0;
  session_state state_ = session_state::awaiting_connect;
  bool two_way_ = true;   // session_info::two_way
  bool has_token_expiry_ = false;
  bool token_warned_ = false;
  bool restricted_ = false;
};

}  // namespace pushwire::protocol

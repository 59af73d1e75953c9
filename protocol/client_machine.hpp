// The client connection machine: everything a Pushwire client decides, with no I/O of its own.
//
// Theory of operation
// -------------------
// The driver (client-wasm/src/driver.js in browsers, the tests natively) owns the sockets and timers.
// It calls the methods below when the application asks for something or the world changes, then
// drains poll_action() (what to do) and poll_event() (what to tell the application), and arms one
// timer for next_deadline(), calling handle_timeout() when it fires. Time is always an argument
// (milliseconds on any monotonic clock); jitter comes from the seed in client_options.
//
// States (client_state) and the code on each transition (client_event::code):
//   disconnected --connect()--> connecting                                (connect_called)
//                  (with token_refresh and no token, the first attempt waits for a token)
//   connecting   --`connected` frame--> connected                         (transport_opened)
//   connecting   --transport fails before its first frame--> connecting on the next transport
//                  (a `fallback` event), or reconnecting when the list is exhausted (transport_failed)
//   connected    --transport closed / heartbeat silence / server disconnect--> reconnecting
//                  (transport_closed / heartbeat_timeout / server_disconnect)
//   reconnecting --backoff timer--> connecting                            (reconnect_timer)
//   any          --close(), or server advice "do not reconnect"--> closed (closed_by_client / the server's code)
//   closed       --connect()--> connecting
//   connecting/connected --the server refuses the token--> reconnecting, waiting for a new token
//                  (unauthorized / token_expired), or closed when none can be had (see Tokens)
// Each attempt of a transport has a generation number; every handle_transport_* call names the
// generation it is about, and calls about an abandoned generation are ignored, so late events from
// a transport already closed cannot disturb the current one.
//
// Transports: an ordered list (websocket, sse, polling by default). A transport that cannot open,
// or opens but closes (or stays silent past handshake_timeout_ms) before the server's `connected`
// frame, *fails*: the machine reports `fallback` with the reason and tries the next one at once.
// After the last one fails, it waits a backoff delay and starts again from the first. A transport
// that reached `connected` and later dies is retried first on reconnect. The `state` event that
// reaches `connected` after a fallback names the last fallback's reason beside the transport.
//
// Buffering proxies: the server writes its `connected` event in the same write as the SSE response
// header, so an SSE stream that delivers nothing within sse_first_event_ms of its request is being
// held by a proxy that buffers the response (nginx's default proxy_buffering, some corporate
// proxies); it fails with sse_buffered ("SSE buffered by a proxy") long before handshake_timeout_ms,
// and the next transport (long-polling: each response is complete, so buffering cannot hold it) is
// tried. The time runs from the request, not from the stream's opening: a buffering nginx holds the
// response header too (it waits for body bytes to send with it), so such a stream never opens.
//
// Backoff: full jitter, delay = uniform(0, min(backoff_max_ms, backoff_min_ms * 2^attempt)); attempt
// grows with each failed attempt and resets to 0 once a connection has stayed up for stable_after_ms. A server `disconnect` frame with
// `reconnect: true, after: N` replaces the next delay with N (the server already jittered it);
// `reconnect: false` (or a close code for which reconnect_advised() is false) ends in `closed`.
//
// Heartbeats: while connected, a frame of any kind must arrive within ping_ms (from `connected`) +
// heartbeat_grace_ms, or within poll_hold_ms + heartbeat_grace_ms on polling; otherwise the machine
// closes the transport and reconnects (heartbeat_timeout).
//
// Subscriptions: a table of channel -> last position. On every `connected` the machine
// (re)subscribes each channel with `since` = its last position (websocket: subscribe commands;
// sse/polling: the channel list and a resume token in open_transport). A `subscribed` reply with
// `recovered: false` to a subscribe that carried `since` raises a `gap` event; the `subscribed` event
// carries `recovered` only for such a subscribe (a first one has nothing to recover). Messages at or below
// the last offset of the same epoch are duplicates and are dropped; a message that skips offsets
// raises `gap` too. On one-way transports a change to the channel set reopens the transport.
//
// Tokens: with token_refresh (the JS `getToken` option) the application supplies tokens on request:
// a `fetch_token` action asks for one, handle_token() / handle_token_failed() answer it, naming the
// action's id (a late answer to an abandoned request is ignored, like an old transport generation).
// A token is asked for before connecting when there is none yet, and whenever the server refuses the
// one in use with unauthorized (4004) or token_expired (4005) — in an `error` frame answering
// connect (or a command POST's connect), a `disconnect` frame, a close code, or an HTTP 401 that the
// one-way transports report as its code. A refusal always costs the connection: the machine goes to
// reconnecting with the server's code and waits for the token (no backoff timer meanwhile); the
// first retry with a new token goes at once, later ones wait their backoff delay, so tokens that keep
// being refused cannot make a tight loop. The machine ends in `closed` with the refusal's code
// (4004/4005; unauthorized when no token was ever refused) when there is no way to a token that
// could work: no token_refresh, the application's fetch fails or takes longer than
// request_timeout_ms, or it returns the very token the server just refused.
//
// Requests (publish, history, presence, drop) get ids; a reply frame with the same id completes
// them (`reply` event) and an `error` frame or the timeout fails them (`request_failed`). Requests
// made while not connected wait in a queue (their timeout runs); requests in flight when the
// transport dies fail with `not_connected` — the application decides whether to retry a publish.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/backoff.hpp"
#include "protocol/codes.hpp"
#include "protocol/frame.hpp"
#include "protocol/position.hpp"

namespace pushwire::protocol {

enum class transport_kind : std::uint8_t { websocket, sse, polling };
enum class client_state : std::uint8_t { disconnected, connecting, connected, reconnecting, closed };

std::string_view transport_name(transport_kind t);
std::string_view state_name(client_state s);

struct client_options {
  std::vector<transport_kind> transports{transport_kind::websocket, transport_kind::sse, transport_kind::polling};
  std::string token;                        // connection token (JWT); empty = anonymous
  bool token_refresh = false;               // the application can supply tokens on request (fetch_token)
  std::uint64_t backoff_min_ms = 500;       // first retry within half a second: most drops are brief
  std::uint64_t backoff_max_ms = 20000;     // cap: a long outage costs one attempt per 20 s at most
  std::uint64_t stable_after_ms = 10000;    // a connection this old resets the backoff
  std::uint64_t handshake_timeout_ms = 10000;  // open requested -> `connected` frame
  // SSE request -> its first event: the server sends one with the header, so a slow network's
  // round trips are all it needs; silence past this means a proxy is buffering the stream (above).
  std::uint64_t sse_first_event_ms = 4000;
  std::uint64_t heartbeat_grace_ms = 10000; // on top of the server's ping interval
  std::uint64_t poll_hold_ms = 25000;       // how long the server holds a long-poll (server default)
  std::uint64_t request_timeout_ms = 10000;
  std::uint64_t seed = 1;                   // jitter randomness; give each client its own
};

enum class client_action_kind : std::uint8_t {
  open_transport,   // open `transport` (generation `generation`); sse/polling use channels + cursor
  send,             // websocket: send `text` as one message; sse/polling: POST `text` to the command endpoint
  poll,             // polling: issue the next long-poll GET with `channels` + `cursor`
  close_transport,  // close the transport of `generation` (and forget it)
  fetch_token,      // ask the application for a token (request id in `generation`, why in `reason`);
                    // answer with handle_token() or handle_token_failed()
};

struct client_action {
  client_action_kind kind;
  transport_kind transport = transport_kind::websocket;
  std::uint32_t generation = 0;
  std::string text;        // send: newline-delimited commands
  std::string channels;    // open_transport(sse/polling), poll: comma-separated channel list
  std::string cursor;      // open_transport(sse/polling), poll: resume token for those channels
  std::string token;       // open_transport(sse/polling): the connection token for the query string
  bool opening = false;    // poll: first request of this transport (server answers at once)
  std::string client;      // poll (not opening): the client id the opening poll's `connected` gave,
                           // so the server keeps one presence lease across polls
  code reason = code::ok;  // fetch_token: ok before a first connection, else the server's refusal (4004/4005)
};

enum class client_event_kind : std::uint8_t {
  state_changed,   // from, to, error_code, reason
  fallback,        // from_transport, to_transport, error_code, reason
  subscribed,      // channel, pos, recovered (only for a subscription that resumed from a position)
  message,         // channel, pos, data (raw JSON)
  gap,             // channel, pos (where the stream continues), reason
  unsubscribed,    // channel, error_code (ok when asked by the application)
  join,            // channel, data (member object, raw JSON)
  leave,           // channel, data
  reply,           // request_id, and the reply frame's channel, pos, data (history: its publications,
                   // presence: its members); a drop answered by the connection's end: error_code, reason
  request_failed,  // request_id, error_code, reason
  error,           // error_code, reason: a problem that belongs to no request (e.g. a subscribe refused)
};

struct client_event {
  client_event_kind kind;
  client_state from = client_state::disconnected, to = client_state::disconnected;
  transport_kind from_transport = transport_kind::websocket, to_transport = transport_kind::websocket;
  code error_code = code::ok;
  std::string reason;
  std::string channel;
  position pos;
  std::optional<bool> recovered;   // subscribed: absent unless the subscribe carried a position
  std::string data;
  std::uint64_t request_id = 0;
};

class client_machine {
 public:
  explicit client_machine(client_options options);

  // Application side.
  void connect(std::uint64_t now);
  void close(std::uint64_t now);
  // `since` resumes from a known position (e.g. saved by the application). Returns false (and does
  // nothing) for an invalid channel name or a channel already in the table.
  bool subscribe(std::string_view channel, std::optional<position> since, std::uint64_t now);
  bool unsubscribe(std::string_view channel, std::uint64_t now);
  std::uint64_t publish(std::string_view channel, std::string_view json_data, std::uint64_t now);
  std::uint64_t history(std::string_view channel, std::uint64_t limit, std::uint64_t now);
  std::uint64_t presence(std::string_view channel, std::uint64_t now);
  std::uint64_t drop(std::uint64_t now);   // demo only: ask the server to drop this connection
  void set_token(std::string token);

  // World side.
  void handle_transport_open(std::uint32_t generation, std::uint64_t now);
  void handle_transport_data(std::uint32_t generation, std::string_view batch, std::uint64_t now);
  // `close_code`: the WebSocket close code, or code::transport_failed / transport_closed for the rest.
  void handle_transport_closed(std::uint32_t generation, code close_code, std::string_view reason,
                               std::uint64_t now);
  void handle_timeout(std::uint64_t now);
  void handle_network_check(std::uint64_t now);   // page online / visible again: check at once
  // The answer to the fetch_token action with id `request`.
  void handle_token(std::uint32_t request, std::string token, std::uint64_t now);
  void handle_token_failed(std::uint32_t request, std::string_view reason, std::uint64_t now);

  std::optional<client_action> poll_action();
  std::optional<client_event> poll_event();
  // The same as poll_action() / poll_event() until empty, without moving each item out: `each` gets
  // every pending one in order, by const reference, and must not call the machine. For the wasm
  // boundary, where the moves and optionals of the polls were a few hundred bytes of code.
  template <class F>
  void drain_actions(F&& each) {
    for (; actions_head_ < actions_.size(); ++actions_head_) each(std::as_const(actions_[actions_head_]));
    actions_.clear();
    actions_head_ = 0;
  }
  template <class F>
  void drain_events(F&& each) {
    for (; events_head_ < events_.size(); ++events_head_) each(std::as_const(events_[events_head_]));
    events_.clear();
    events_head_ = 0;
  }
  std::optional<std::uint64_t> next_deadline() const;

  client_state state() const { return state_; }
  transport_kind transport() const { return options_.transports.empty() ? transport_kind::websocket
                                                                         : options_.transports[transport_index_]; }
  std::optional<position> last_position(std::string_view channel) const;
  // The id the server gave this connection in `connected` ("" before the first one).
  const std::string& client_id() const { return client_id_; }
  // Messages dropped because their offset was at or below the channel's last one (resume overlap,
  // a replay racing a live message). Added for tests and diagnostics.
  std::uint64_t duplicates_dropped() const { return duplicates_; }

 private:
  // Implementation-defined; see client_machine.cpp.
  // The current generation's transport: none (disconnected, reconnecting, closed), handshake (asked
  // to open, no `connected` frame yet) or up. Mostly mirrors state_, except that a one-way reopen
  // (channel set changed) is `connected` with a transport in handshake.
  enum class link_stage : std::uint8_t { none, handshake, up };
  struct subscription {
    std::string name;              // the channel
    std::optional<position> pos;   // last delivered (or resumed-from) position
    std::uint64_t subscribe_id = 0;  // websocket: id of the subscribe command now in force
    bool resume_sent = false;      // the current subscribe carried `since`
    bool active = false;           // `subscribed` received on the current connection
    // Refused because the server's history store was away (4022): asked again at this time, with
    // its position, after a backoff that grows with `refusals` (reset by `subscribed`).
    std::optional<std::uint64_t> retry_at;
    std::uint8_t refusals = 0;
  };
  // A token asked of the application and not yet given (at most one at a time).
  struct token_fetch {
    std::uint32_t id = 0;
    code why = code::ok;        // the refusal that asked for it (the token in options_ was refused);
                                // ok before a first connection
    std::uint64_t deadline = 0;
  };
  struct request {
    command cmd;                   // cmd.id is the request's id
    std::uint64_t deadline = 0;
    std::optional<std::uint32_t> sent_on;   // generation it went out on; nullopt = still queued
  };

  void set_state(client_state to, code why, std::string_view reason);
  void emit(client_event e) { events_.push_back(std::move(e)); }
  bool current(std::uint32_t generation) const { return generation == generation_ && link_ != link_stage::none; }
  bool one_way() const { return transport() != transport_kind::websocket; }

  // Transport lifecycle.
  void start_attempt(std::uint64_t now);
  void abandon_transport();
  void transport_failed(code why, std::string_view reason, std::uint64_t now);
  void connection_lost(code why, std::string_view reason, std::uint64_t now);
  void schedule_reconnect(code why, std::string_view reason, std::uint64_t now);
  void end_closed(code why, std::string_view reason);
  void token_refused(code why, std::string_view reason, std::uint64_t now);
  void fetch_token(code why, std::uint64_t now);
  void reopen_one_way(std::uint64_t now);
  void retry_subscribes(std::uint64_t now);   // the refused-for-now ones whose time came
  // A subscribe command for `sub` (with its position) appended to `text`, under a new id.
  void ask_subscribe(subscription& sub, std::string& text);
  client_action one_way_action(client_action_kind kind);
  void send_commands(std::string text);

  // Incoming frames.
  void on_frame(const frame& f, std::uint64_t now);
  void on_connected(const frame& f, std::uint64_t now);
  void on_subscribed(const frame& f);
  void on_unsubscribed(const frame& f);
  void on_message(const frame& f);
  void on_reply(const frame& f);
  void on_error(const frame& f, std::uint64_t now);
  void on_disconnect(const frame& f, std::uint64_t now);
  void stale_replies(std::uint32_t generation, std::string_view batch);

  // Requests.
  std::uint64_t add_request(command cmd, std::uint64_t now);
  void settle_in_flight(code why, std::string_view reason, bool include_queued);
  void expire_requests(std::uint64_t now);
  std::optional<std::uint64_t> heartbeat_deadline() const;
  std::vector<subscription>::iterator find_sub(std::string_view channel);
  std::vector<request>::iterator find_request(std::uint64_t id);

  client_options options_;
  client_state state_ = client_state::disconnected;
  link_stage link_ = link_stage::none;
  std::size_t transport_index_ = 0;
  std::uint32_t generation_ = 0;
  std::uint64_t connect_id_ = 0;       // websocket: id of this generation's connect command (0 = not sent)
  std::uint64_t connected_at_ = 0;
  std::uint64_t last_frame_at_ = 0;
  std::uint64_t ping_ms_ = 0;
  std::optional<std::uint64_t> deadline_;   // handshake or backoff, depending on state
  std::optional<std::uint64_t> reopen_at_;  // one-way channel set changed: reopen then (coalesces bursts)
  std::optional<std::uint64_t> first_event_by_;  // connecting over SSE, no event yet (buffering proxy?)
  std::string fallback_reason_;             // the last fallback of this connect round, for the `state` event
  std::string client_id_;                   // polling: from this generation's `connected`
  std::uint32_t attempt_ = 0;
  prng rng_;
  std::optional<std::uint64_t> advised_delay_;
  std::optional<token_fetch> token_fetch_;
  std::uint32_t token_requests_ = 0;
  std::uint64_t next_id_ = 1;
  std::uint64_t duplicates_ = 0;
  // Flat vectors rather than maps (a page holds a few channels and requests; in the wasm client the
  // tree code was 2 KB). subs_ stays sorted by name, the order one-way requests list the channels in;
  // requests_ is in id order because ids only grow and each new request goes last.
  std::vector<subscription> subs_;
  std::vector<request> requests_;
  // FIFOs drained by poll_*(): a vector read from `*_head_` and emptied once read to the end (the
  // shell drains after every input, so they stay a few entries long). A vector rather than a deque:
  // same behaviour, and in the wasm client the deque's block map is a few KB of code.
  std::vector<client_action> actions_;
  std::vector<client_event> events_;
  std::size_t actions_head_ = 0;
  std::size_t events_head_ = 0;
};

}  // namespace pushwire::protocol

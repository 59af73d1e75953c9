// The client connection machine; the theory of operation is in client_machine.hpp.
//
// How the pieces fit:
// - state_ is what the application sees; link_ is the current generation's transport. Every path
//   that gives up a transport goes through abandon_transport() (one close_transport action, link_
//   back to none); every path into a new one through start_attempt() (new generation, open action,
//   handshake deadline).
// - Failures split by when they happen: before `connected` a transport *failed* (transport_failed:
//   fall back, or back off when the list is exhausted); after it, the connection was *lost*
//   (connection_lost: back off, retry the same transport first). Advice against reconnecting, from
//   a frame or a close code, goes to end_closed() from either.
// - Commands go out only while link_ is up, so nothing but the opening long-poll can answer a
//   generation still in handshake; that is what lets a long-poll response be told from a command
//   POST's answer (both arrive through handle_transport_data).
// - deadline_ holds the one state timer (handshake in connecting or during a one-way reopen,
//   backoff in reconnecting); the heartbeat and request deadlines are derived when asked.
#include "protocol/client_machine.hpp"

#include "protocol/channel_name.hpp"
#include "protocol/client_frame_decoder.hpp"
#include "protocol/frame_codec.hpp"

namespace pushwire::protocol {
namespace {

// A publish loop while offline must not grow the queue without limit; a thousand outstanding
// requests is far beyond what an interactive page needs.
constexpr std::size_t max_pending_requests = 1000;

// Frames a long-poll response can hold but a command POST's answer cannot. The server answers a held
// poll that has nothing new with `ping`, so every long-poll response holds at least one of these.
bool is_stream_frame(frame_kind k) {
  switch (k) {
    case frame_kind::subscribed:
    case frame_kind::unsubscribed:
    case frame_kind::message:
    case frame_kind::join:
    case frame_kind::leave:
    case frame_kind::ping:
    case frame_kind::disconnect:
      return true;
    default:
      return false;
  }
}

// The codes by which the server refuses a connection's token (docs/protocol.md, Auth).
bool is_token_code(code c) { return c == code::unauthorized || c == code::token_expired; }

bool is_reply(frame_kind k) {
  return k == frame_kind::published || k == frame_kind::history || k == frame_kind::presence;
}

// Close codes in the 4000 range are the server's decisions, the rest are the network's.
code loss_code(code close_code) {
  auto v = static_cast<std::uint16_t>(close_code);
  return v >= 4000 && v < 5000 ? code::server_disconnect : code::transport_closed;
}

// The pieces as one string, appended in place (std::operator+ is one more copy of the string code in
// the wasm client).
std::string concat(std::string_view a, std::string_view b, std::string_view c = {}, std::string_view d = {}) {
  std::string s(a);
  s += b;
  s += c;
  s += d;
  return s;
}

client_event make_event(client_event_kind kind) {
  client_event e{};
  e.kind = kind;
  return e;
}

}  // namespace

std::string_view transport_name(transport_kind t) {
  switch (t) {
    case transport_kind::websocket: return "websocket";
    case transport_kind::sse: return "sse";
    case transport_kind::polling: return "polling";
  }
  return "unknown";
}

std::string_view state_name(client_state s) {
  switch (s) {
    case client_state::disconnected: return "disconnected";
    case client_state::connecting: return "connecting";
    case client_state::connected: return "connected";
    case client_state::reconnecting: return "reconnecting";
    case client_state::closed: return "closed";
  }
  return "unknown";
}

client_machine::client_machine(client_options options) : options_(std::move(options)), rng_(options_.seed) {}

// ---- application side ----------------------------------------------------------------------------

void client_machine::connect(std::uint64_t now) {
  if (state_ != client_state::disconnected && state_ != client_state::closed) return;
  if (options_.transports.empty()) {
    set_state(client_state::closed, code::no_transport, "no transport is enabled");
    return;
  }
  transport_index_ = 0;
  attempt_ = 0;
  advised_delay_.reset();
  fallback_reason_.clear();
  set_state(client_state::connecting, code::connect_called, "connect() called");
  if (options_.token_refresh && options_.token.empty()) {
    fetch_token(code::ok, now);   // the attempt starts once the token is in
    return;
  }
  start_attempt(now);
}

void client_machine::close(std::uint64_t) {
  if (state_ == client_state::closed) return;
  end_closed(code::closed_by_client, "close() called");
}

bool client_machine::subscribe(std::string_view channel, std::optional<position> since, std::uint64_t now) {
  if (!valid_channel(channel) || find_sub(channel) != subs_.end()) return false;
  auto at = subs_.begin();
  while (at != subs_.end() && at->name < channel) ++at;
  auto& sub = *subs_.insert(at, subscription{.name = std::string(channel), .pos = std::move(since)});
  if (link_ == link_stage::none) return true;  // goes out with the next connection
  if (one_way()) {
    reopen_one_way(now);
  } else if (link_ == link_stage::up) {
    std::string text;
    ask_subscribe(sub, text);
    send_commands(std::move(text));
  }
  // A websocket still in handshake sends it with the others on `connected`.
  return true;
}

bool client_machine::unsubscribe(std::string_view channel, std::uint64_t now) {
  auto it = find_sub(channel);
  if (it == subs_.end()) return false;
  std::string name = std::move(it->name);
  subs_.erase(it);
  auto e = make_event(client_event_kind::unsubscribed);
  e.channel = name;
  emit(std::move(e));
  if (link_ == link_stage::none) return true;
  if (one_way())
    reopen_one_way(now);
  else if (link_ == link_stage::up)
    send_commands(encode(command{.kind = command_kind::unsubscribe, .channel = std::move(name)}));
  return true;
}

std::uint64_t client_machine::publish(std::string_view channel, std::string_view json_data, std::uint64_t now) {
  return add_request(command{.kind = command_kind::publish, .channel = std::string(channel),
                             .data = std::string(json_data)}, now);
}

std::uint64_t client_machine::history(std::string_view channel, std::uint64_t limit, std::uint64_t now) {
  return add_request(command{.kind = command_kind::history, .channel = std::string(channel), .limit = limit}, now);
}

std::uint64_t client_machine::presence(std::string_view channel, std::uint64_t now) {
  return add_request(command{.kind = command_kind::presence, .channel = std::string(channel)}, now);
}

std::uint64_t client_machine::drop(std::uint64_t now) { return add_request(command{.kind = command_kind::drop}, now); }

void client_machine::set_token(std::string token) { options_.token = std::move(token); }

// ---- world side ----------------------------------------------------------------------------------

void client_machine::handle_transport_open(std::uint32_t generation, std::uint64_t) {
  if (!current(generation) || link_ != link_stage::handshake) return;
  // One-way transports need nothing: their request already named the channels and the token.
  if (transport() != transport_kind::websocket || connect_id_ != 0) return;
  connect_id_ = next_id_++;
  send_commands(encode(command{.kind = command_kind::connect, .id = connect_id_, .token = options_.token}));
}

void client_machine::handle_transport_data(std::uint32_t generation, std::string_view batch, std::uint64_t now) {
  if (!current(generation)) {
    stale_replies(generation, batch);
    return;
  }
  first_event_by_.reset();   // something came through: the stream is not held back
  const bool polling = transport() == transport_kind::polling;
  bool poll_response = link_ == link_stage::handshake;
  split_batch(batch, [&](std::string_view line) {
    if (!current(generation)) return;  // an earlier frame ended this transport
    frame f;
    decode_error err;
    if (!decode_server_frame(line, f, err)) {
      // One bad frame is reported but does not cost the connection: the next may be fine.
      auto e = make_event(client_event_kind::error);
      e.error_code = err.error_code;
      e.reason = concat("bad frame from server: ", err.reason);
      emit(std::move(e));
      return;
    }
    if (is_stream_frame(f.kind)) poll_response = true;
    on_frame(f, now);
  });
  if (!current(generation)) return;
  // On polling only poll responses count for the heartbeat: they are what shows the loop is alive.
  if (!polling || poll_response) last_frame_at_ = now;
  if (polling && poll_response && link_ == link_stage::up) actions_.push_back(one_way_action(client_action_kind::poll));
}

void client_machine::handle_transport_closed(std::uint32_t generation, code close_code, std::string_view reason,
                                             std::uint64_t now) {
  if (!current(generation)) return;
  std::string why = reason.empty() ? std::string(code_name(close_code)) : std::string(reason);
  if (is_token_code(close_code))
    token_refused(close_code, why, now);
  else if (!reconnect_advised(close_code))
    end_closed(close_code, why);
  else if (state_ == client_state::connecting)
    transport_failed(close_code, why, now);
  else
    connection_lost(loss_code(close_code), why, now);
}

void client_machine::handle_timeout(std::uint64_t now) {
  expire_requests(now);
  if (token_fetch_ && now >= token_fetch_->deadline) {
    handle_token_failed(token_fetch_->id, "no token within request_timeout_ms", now);
    return;
  }
  if (reopen_at_ && now >= *reopen_at_) {
    reopen_at_.reset();
    abandon_transport();
    start_attempt(now);
    return;
  }
  retry_subscribes(now);
  const bool due = deadline_ && now >= *deadline_;
  switch (state_) {
    case client_state::connecting:
      if (first_event_by_ && now >= *first_event_by_)
        transport_failed(code::sse_buffered, "SSE buffered by a proxy", now);
      else if (due) transport_failed(code::handshake_timeout, "no connected frame within handshake_timeout_ms", now);
      break;
    case client_state::connected:
      if (link_ == link_stage::handshake) {
        if (due) connection_lost(code::handshake_timeout, "reopened stream sent no connected frame in time", now);
      } else if (auto hb = heartbeat_deadline(); hb && now >= *hb) {
        connection_lost(code::heartbeat_timeout, "no frame from the server within the heartbeat deadline", now);
      }
      break;
    case client_state::reconnecting:
      if (due) {
        deadline_.reset();
        set_state(client_state::connecting, code::reconnect_timer, "backoff elapsed");
        start_attempt(now);
      }
      break;
    case client_state::disconnected:
    case client_state::closed:
      break;
  }
}

void client_machine::handle_network_check(std::uint64_t now) {
  // Only a machine waiting out a backoff gains anything: a live transport proves itself by its
  // heartbeat, and disconnected/closed wait for the application.
  if (state_ != client_state::reconnecting || token_fetch_) return;   // no attempt without the token
  deadline_.reset();
  set_state(client_state::connecting, code::network_check, "network came back");
  start_attempt(now);
}

void client_machine::handle_token(std::uint32_t request, std::string token, std::uint64_t now) {
  if (!token_fetch_ || token_fetch_->id != request) return;
  code why = token_fetch_->why;
  token_fetch_.reset();
  // options_.token is still the one refused (set_token() meanwhile makes it the one to compare).
  if (why != code::ok && token == options_.token) {
    end_closed(why, "getToken returned the token the server refused");
    return;
  }
  options_.token = std::move(token);
  if (state_ == client_state::connecting) {
    start_attempt(now);
    return;
  }
  // reconnecting after a refusal: the backoff timer (handle_timeout) starts the attempt, at once the
  // first time, after the usual delay when the tokens keep being refused.
  if (attempt_ == 0) advised_delay_ = 0;
  schedule_reconnect(why, "new token", now);
}

void client_machine::handle_token_failed(std::uint32_t request, std::string_view reason, std::uint64_t) {
  if (!token_fetch_ || token_fetch_->id != request) return;
  code why = token_fetch_->why == code::ok ? code::unauthorized : token_fetch_->why;
  token_fetch_.reset();
  end_closed(why, concat("getToken failed: ", reason));
}

std::optional<client_action> client_machine::poll_action() {
  if (actions_head_ == actions_.size()) {
    actions_.clear();
    actions_head_ = 0;
    return std::nullopt;
  }
  return std::move(actions_[actions_head_++]);
}

std::optional<client_event> client_machine::poll_event() {
  if (events_head_ == events_.size()) {
    events_.clear();
    events_head_ = 0;
    return std::nullopt;
  }
  return std::move(events_[events_head_++]);
}

std::optional<std::uint64_t> client_machine::next_deadline() const {
  std::optional<std::uint64_t> next = deadline_;
  auto consider = [&](std::uint64_t t) {
    if (!next || t < *next) next = t;
  };
  if (reopen_at_) consider(*reopen_at_);
  if (first_event_by_) consider(*first_event_by_);
  if (token_fetch_) consider(token_fetch_->deadline);
  if (auto hb = heartbeat_deadline()) consider(*hb);
  for (auto& r : requests_) consider(r.deadline);
  for (auto& sub : subs_)
    if (sub.retry_at) consider(*sub.retry_at);
  return next;
}

void client_machine::ask_subscribe(subscription& sub, std::string& text) {
  sub.subscribe_id = next_id_++;
  sub.resume_sent = sub.pos.has_value();
  encode_command(command{.kind = command_kind::subscribe, .id = sub.subscribe_id, .channel = sub.name, .since = sub.pos},
                 text);
}

void client_machine::retry_subscribes(std::uint64_t now) {
  bool reopen = false;
  std::string text;
  for (auto& sub : subs_) {
    if (!sub.retry_at || now < *sub.retry_at) continue;
    sub.retry_at.reset();
    if (link_ != link_stage::up) continue;   // a connection under way subscribes everything anyway
    if (one_way()) {
      reopen = true;
      continue;
    }
    ask_subscribe(sub, text);
  }
  if (!text.empty()) send_commands(std::move(text));
  if (reopen) reopen_one_way(now);
}

std::optional<position> client_machine::last_position(std::string_view channel) const {
  for (auto& sub : subs_)
    if (sub.name == channel) return sub.pos;
  return std::nullopt;
}

// ---- transitions ---------------------------------------------------------------------------------

void client_machine::set_state(client_state to, code why, std::string_view reason) {
  if (to == state_) return;
  auto e = make_event(client_event_kind::state_changed);
  e.from = state_;
  e.to = to;
  e.error_code = why;
  e.reason = std::string(reason);
  state_ = to;
  emit(std::move(e));
}

void client_machine::start_attempt(std::uint64_t now) {
  ++generation_;
  link_ = link_stage::handshake;
  connect_id_ = 0;
  deadline_ = now + options_.handshake_timeout_ms;
  if (transport() == transport_kind::sse && state_ == client_state::connecting)
    first_event_by_ = now + options_.sse_first_event_ms;
  if (!one_way()) {
    actions_.push_back(client_action{.kind = client_action_kind::open_transport, .transport = transport(),
                                     .generation = generation_});
    return;
  }
  // The stream's `subscribed` frames are judged against the positions this request carries.
  for (auto& sub : subs_) sub.resume_sent = sub.pos.has_value();
  actions_.push_back(one_way_action(client_action_kind::open_transport));
  if (transport() == transport_kind::polling) {
    auto first = one_way_action(client_action_kind::poll);
    first.opening = true;
    first.client.clear();  // a new poll stream gets a new id
    actions_.push_back(std::move(first));
  }
}

void client_machine::abandon_transport() {
  actions_.push_back(client_action{.kind = client_action_kind::close_transport, .transport = transport(),
                                   .generation = generation_});
  link_ = link_stage::none;
  deadline_.reset();
  reopen_at_.reset();
  first_event_by_.reset();
}

void client_machine::transport_failed(code why, std::string_view reason, std::uint64_t now) {
  abandon_transport();
  if (transport_index_ + 1 < options_.transports.size()) {
    auto e = make_event(client_event_kind::fallback);
    e.from_transport = transport();
    ++transport_index_;
    e.to_transport = transport();
    e.error_code = why;
    e.reason = std::string(reason);
    fallback_reason_ = e.reason;
    emit(std::move(e));
    start_attempt(now);
    return;
  }
  fallback_reason_.clear();
  transport_index_ = 0;  // the next round starts again from the preferred transport
  schedule_reconnect(code::transport_failed, concat("every transport failed; last: ", reason), now);
}

void client_machine::connection_lost(code why, std::string_view reason, std::uint64_t now) {
  abandon_transport();
  settle_in_flight(why, reason, false);
  for (auto& sub : subs_) sub.active = false;
  if (state_ == client_state::connected && now - connected_at_ >= options_.stable_after_ms) attempt_ = 0;
  schedule_reconnect(why, reason, now);
}

void client_machine::schedule_reconnect(code why, std::string_view reason, std::uint64_t now) {
  std::uint64_t delay = advised_delay_ ? *advised_delay_
                                       : full_jitter_delay(options_.backoff_min_ms, options_.backoff_max_ms, attempt_, rng_);
  advised_delay_.reset();
  if (attempt_ < 64) ++attempt_;  // the ceiling is capped long before; this only avoids wrapping
  deadline_ = now + delay;
  set_state(client_state::reconnecting, why, reason);
}

void client_machine::end_closed(code why, std::string_view reason) {
  if (link_ != link_stage::none) abandon_transport();
  deadline_.reset();
  advised_delay_.reset();
  token_fetch_.reset();
  settle_in_flight(code::not_connected, reason, true);
  for (auto& sub : subs_) sub.active = false;
  set_state(client_state::closed, why, reason);
}

// The server refused the token in use (why: unauthorized or token_expired). Like a lost connection
// (requests in flight fail, subscriptions resume later), but the next attempt waits for a new token.
void client_machine::token_refused(code why, std::string_view reason, std::uint64_t now) {
  if (!options_.token_refresh) {
    end_closed(why, reason);
    return;
  }
  if (link_ != link_stage::none) abandon_transport();
  deadline_.reset();
  advised_delay_.reset();
  settle_in_flight(why, reason, false);
  for (auto& sub : subs_) sub.active = false;
  if (state_ == client_state::connected && now - connected_at_ >= options_.stable_after_ms) attempt_ = 0;
  fetch_token(why, now);
  set_state(client_state::reconnecting, why, reason);
}

void client_machine::fetch_token(code why, std::uint64_t now) {
  token_fetch_ = token_fetch{.id = ++token_requests_, .why = why, .deadline = now + options_.request_timeout_ms};
  actions_.push_back(client_action{.kind = client_action_kind::fetch_token, .generation = token_fetch_->id,
                                   .reason = why});
}

// One-way transports name their channels in the request, so a new channel set needs a new request.
// The reopen is due at once but happens in handle_timeout(), so that several subscribe/unsubscribe
// calls in a row (a page setting up its channels) cost one new request, not one each. The state
// stays what it was; requests in flight on the old generation still get their replies
// (stale_replies), new ones wait for the new stream's `connected`.
void client_machine::reopen_one_way(std::uint64_t now) {
  if (!reopen_at_) reopen_at_ = now;
}

client_action client_machine::one_way_action(client_action_kind kind) {
  client_action a{.kind = kind, .transport = transport(), .generation = generation_};
  std::vector<std::optional<position>> positions;
  bool any_position = false;
  for (auto& sub : subs_) {
    if (!a.channels.empty()) a.channels += ',';
    a.channels += sub.name;
    positions.push_back(sub.pos);
    any_position = any_position || sub.pos.has_value();
  }
  if (any_position) a.cursor = encode_resume_token(positions);
  a.token = options_.token;
  if (kind == client_action_kind::poll) a.client = client_id_;
  return a;
}

void client_machine::send_commands(std::string text) {
  if (one_way()) {
    // The command POST is stateless: every one carries its own connect (with the token) first.
    std::string body = encode(command{.kind = command_kind::connect, .token = options_.token});
    body += text;
    text = std::move(body);
  }
  actions_.push_back(client_action{.kind = client_action_kind::send, .transport = transport(),
                                   .generation = generation_, .text = std::move(text)});
}

// ---- incoming frames -----------------------------------------------------------------------------

void client_machine::on_frame(const frame& f, std::uint64_t now) {
  switch (f.kind) {
    case frame_kind::connected: on_connected(f, now); break;
    case frame_kind::subscribed: on_subscribed(f); break;
    case frame_kind::unsubscribed: on_unsubscribed(f); break;
    case frame_kind::message: on_message(f); break;
    case frame_kind::published:
    case frame_kind::history:
    case frame_kind::presence: on_reply(f); break;
    case frame_kind::join:
    case frame_kind::leave:
      if (find_sub(f.channel) != subs_.end()) {
        auto e = make_event(f.kind == frame_kind::join ? client_event_kind::join : client_event_kind::leave);
        e.channel = f.channel;
        e.data = f.data;
        emit(std::move(e));
      }
      break;
    case frame_kind::ping: break;  // its arrival is the point
    case frame_kind::error: on_error(f, now); break;
    case frame_kind::disconnect: on_disconnect(f, now); break;
  }
}

void client_machine::on_connected(const frame& f, std::uint64_t now) {
  if (link_ != link_stage::handshake) return;  // a command POST's answer repeats it
  link_ = link_stage::up;
  ping_ms_ = f.ping_ms;
  client_id_ = f.client;
  last_frame_at_ = now;
  deadline_.reset();
  if (state_ == client_state::connecting) {
    connected_at_ = now;
    std::string why(transport_name(transport()));
    if (!fallback_reason_.empty()) {
      why += " (";
      why += fallback_reason_;
      why += ')';
      fallback_reason_.clear();
    }
    set_state(client_state::connected, code::transport_opened, why);
  }
  std::string text;
  if (!one_way()) {
    for (auto& sub : subs_) {
      sub.retry_at.reset();   // asked now, with the others
      ask_subscribe(sub, text);
    }
  }
  for (auto& r : requests_) {
    if (r.sent_on) continue;
    encode_command(r.cmd, text);
    r.sent_on = generation_;
  }
  if (!text.empty()) send_commands(std::move(text));
}

void client_machine::on_subscribed(const frame& f) {
  auto it = find_sub(f.channel);
  if (it == subs_.end()) return;  // unsubscribed meanwhile
  auto& sub = *it;
  // Only an answer to a resume says whether it recovered (docs/protocol.md); a first subscribe has
  // nothing to recover, so the event carries no flag then.
  std::optional<bool> recovered;
  bool moved = false;  // an active subscription's position changed under it: the app must hear of it
  // A frame carrying `recovered` answers a resume too: a later long-poll whose cursor history no
  // longer covers gets `subscribed` with recovered:false in the middle of the stream.
  if (sub.pos && (sub.resume_sent || f.recovered)) {
    // On a resume the frame's position is the channel's latest and the replay follows: the stored
    // position stays put and the replayed messages advance it. A changed epoch cannot be a recovery,
    // whatever the flag says.
    recovered = f.recovered.value_or(false) && f.pos.epoch == sub.pos->epoch;
    if (!*recovered) sub.pos = f.pos;
  } else if (!sub.pos || sub.pos->epoch != f.pos.epoch || sub.pos->offset < f.pos.offset) {
    // Never backwards within an epoch: a repeated `subscribed` for an active subscription must not
    // make messages already delivered deliverable again (found by tests/fuzz/client_fuzz). Moving
    // an active one to another epoch or ahead skips what lies between, so that is a gap (a detour
    // through another epoch and back re-delivered messages: the long fuzz run of issue 18).
    moved = sub.active && sub.pos.has_value();
    sub.pos = f.pos;
  }
  sub.resume_sent = false;
  sub.refusals = 0;
  if (!sub.active) {
    sub.active = true;
    auto e = make_event(client_event_kind::subscribed);
    e.channel = f.channel;
    e.pos = f.pos;
    e.recovered = recovered;
    emit(std::move(e));
  }
  if (recovered == false || moved) {
    auto e = make_event(client_event_kind::gap);
    e.channel = f.channel;
    e.pos = f.pos;
    e.reason = moved ? "the server moved the subscription to another position"
                     : "the server could not replay every missed message";
    emit(std::move(e));
  }
}

void client_machine::on_unsubscribed(const frame& f) {
  // The answer to our own unsubscribe finds the channel gone (or re-subscribed and not yet active);
  // an active one means the server ended the subscription on its own.
  auto it = find_sub(f.channel);
  if (it == subs_.end() || !it->active) return;
  subs_.erase(it);
  auto e = make_event(client_event_kind::unsubscribed);
  e.channel = f.channel;
  e.error_code = code::not_subscribed;
  emit(std::move(e));
}

void client_machine::on_message(const frame& f) {
  auto it = find_sub(f.channel);
  if (it == subs_.end()) return;
  auto& sub = *it;
  if (sub.pos) {
    // Another epoch is adopted only through a `subscribed` frame; a stray one is from a history that
    // no longer exists.
    if (f.pos.epoch != sub.pos->epoch) return;
    if (f.pos.offset <= sub.pos->offset) {
      ++duplicates_;
      return;
    }
    if (f.pos.offset > sub.pos->offset + 1) {
      auto e = make_event(client_event_kind::gap);
      e.channel = f.channel;
      e.pos = f.pos;
      e.reason = "offsets skipped";
      emit(std::move(e));
    }
  }
  sub.pos = f.pos;
  auto e = make_event(client_event_kind::message);
  e.channel = f.channel;
  e.pos = f.pos;
  e.data = f.data;
  emit(std::move(e));
}

void client_machine::on_reply(const frame& f) {
  auto it = find_request(f.id);
  if (f.id == 0 || it == requests_.end()) return;  // late answer to a request already settled
  auto e = make_event(client_event_kind::reply);
  e.request_id = f.id;
  e.channel = f.channel;
  e.pos = f.pos;
  e.data = f.data;
  requests_.erase(it);
  emit(std::move(e));
}

void client_machine::on_error(const frame& f, std::uint64_t now) {
  // A refused token answers a connect: the WebSocket's (by its id) or a command POST's (which has
  // none); either way the connection cannot go on with it.
  if (is_token_code(f.error_code) && (f.id == 0 || (f.id == connect_id_ && link_ == link_stage::handshake))) {
    token_refused(f.error_code, f.reason, now);
    return;
  }
  if (f.id == 0) {
    auto e = make_event(client_event_kind::error);
    e.error_code = f.error_code;
    e.reason = f.reason;
    emit(std::move(e));
    return;
  }
  if (auto it = find_request(f.id); it != requests_.end()) {
    auto e = make_event(client_event_kind::request_failed);
    e.request_id = f.id;
    e.error_code = f.error_code;
    e.reason = f.reason;
    requests_.erase(it);
    emit(std::move(e));
    return;
  }
  if (f.id == connect_id_ && link_ == link_stage::handshake) {
    // The server refused the connection itself; another transport would meet the same answer.
    if (!reconnect_advised(f.error_code))
      end_closed(f.error_code, f.reason);
    else
      connection_lost(code::server_disconnect, f.reason, now);
    return;
  }
  for (auto it = subs_.begin(); it != subs_.end(); ++it) {
    auto& sub = *it;
    if (sub.subscribe_id != f.id) continue;
    auto err = make_event(client_event_kind::error);
    err.error_code = f.error_code;
    err.reason = concat("subscribe to ", sub.name, " refused: ", f.reason);
    err.channel = sub.name;
    if (f.error_code == code::storage_unavailable) {
      // The store (Redis, the data dir) is away for now: the subscription stays and is asked again
      // after a backoff, from its position; the application hears of it, not of an unsubscribe.
      sub.subscribe_id = 0;
      sub.active = false;
      sub.retry_at = now + full_jitter_delay(options_.backoff_min_ms, options_.backoff_max_ms, sub.refusals, rng_);
      if (sub.refusals < 64) ++sub.refusals;
      emit(std::move(err));
      return;
    }
    auto gone = make_event(client_event_kind::unsubscribed);
    gone.channel = std::move(sub.name);
    gone.error_code = f.error_code;
    subs_.erase(it);
    emit(std::move(err));
    emit(std::move(gone));
    return;
  }
}

void client_machine::on_disconnect(const frame& f, std::uint64_t now) {
  if (is_token_code(f.error_code)) {
    token_refused(f.error_code, f.reason, now);
    return;
  }
  if (!f.reconnect) {
    end_closed(f.error_code, f.reason);
    return;
  }
  // after = 0 (or absent) is no advice: the usual jittered backoff keeps a crowd apart.
  if (f.after_ms) advised_delay_ = f.after_ms;
  connection_lost(code::server_disconnect, f.reason, now);
}

// Replies to command POSTs sent before a one-way reopen arrive under the old generation; they are the
// only thing an abandoned generation may still deliver.
void client_machine::stale_replies(std::uint32_t generation, std::string_view batch) {
  bool awaited = false;
  for (auto& r : requests_) awaited = awaited || r.sent_on == generation;
  if (!awaited) return;
  split_batch(batch, [&](std::string_view line) {
    frame f;
    decode_error err;
    if (!decode_server_frame(line, f, err) || f.id == 0) return;
    auto it = find_request(f.id);
    if (it == requests_.end() || it->sent_on != generation) return;
    if (is_reply(f.kind)) on_reply(f);
    if (f.kind == frame_kind::error) on_error(f, 0);
  });
}

// ---- requests ------------------------------------------------------------------------------------

std::uint64_t client_machine::add_request(command cmd, std::uint64_t now) {
  std::uint64_t id = next_id_++;
  cmd.id = id;
  auto refuse = [&](code why, std::string_view reason) {
    auto e = make_event(client_event_kind::request_failed);
    e.request_id = id;
    e.error_code = why;
    e.reason = std::string(reason);
    emit(std::move(e));
    return id;
  };
  if (cmd.kind != command_kind::drop && !valid_channel(cmd.channel)) return refuse(code::bad_channel, "invalid channel name");
  if (requests_.size() >= max_pending_requests) return refuse(code::too_many_requests_in_flight, "too many pending requests");
  auto& r = requests_.emplace_back();
  r.cmd = std::move(cmd);
  r.deadline = now + options_.request_timeout_ms;
  if (link_ == link_stage::up) {
    r.sent_on = generation_;
    send_commands(encode(r.cmd));
  }
  return id;
}

// The connection ended: requests already sent can no longer be answered. A `drop` was asking for
// exactly this, so it completes, with a disconnect frame standing in for the reply the server never
// sends. Queued requests wait for the next connection unless the machine is closing.
void client_machine::settle_in_flight(code why, std::string_view reason, bool include_queued) {
  for (auto it = requests_.begin(); it != requests_.end();) {
    if (!include_queued && !it->sent_on) {
      ++it;
      continue;
    }
    client_event e = make_event(client_event_kind::request_failed);
    e.request_id = it->cmd.id;
    e.error_code = code::not_connected;
    if (it->sent_on && it->cmd.kind == command_kind::drop) {
      e.kind = client_event_kind::reply;
      e.error_code = why;
    }
    e.reason = std::string(reason);
    it = requests_.erase(it);
    emit(std::move(e));
  }
}

void client_machine::expire_requests(std::uint64_t now) {
  for (auto it = requests_.begin(); it != requests_.end();) {
    if (it->deadline > now) {
      ++it;
      continue;
    }
    auto e = make_event(client_event_kind::request_failed);
    e.request_id = it->cmd.id;
    e.error_code = code::timeout;
    e.reason = "no reply within request_timeout_ms";
    it = requests_.erase(it);
    emit(std::move(e));
  }
}

auto client_machine::find_sub(std::string_view channel) -> std::vector<subscription>::iterator {
  auto it = subs_.begin();
  while (it != subs_.end() && it->name != channel) ++it;
  return it;
}

auto client_machine::find_request(std::uint64_t id) -> std::vector<request>::iterator {
  auto it = requests_.begin();
  while (it != requests_.end() && it->cmd.id != id) ++it;
  return it;
}

std::optional<std::uint64_t> client_machine::heartbeat_deadline() const {
  if (state_ != client_state::connected || link_ != link_stage::up) return std::nullopt;
  if (transport() == transport_kind::polling) return last_frame_at_ + options_.poll_hold_ms + options_.heartbeat_grace_ms;
  if (ping_ms_ == 0) return std::nullopt;  // the server announced no heartbeat
  return last_frame_at_ + ping_ms_ + options_.heartbeat_grace_ms;
}

}  // namespace pushwire::protocol

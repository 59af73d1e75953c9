#include "protocol/server_session.hpp"

#include <algorithm>

#include "protocol/channel_name.hpp"
#include "protocol/frame_codec.hpp"

namespace pushwire::protocol {

std::string_view session_state_name(session_state s) {
  switch (s) {
    case session_state::awaiting_connect: return "awaiting_connect";
    case session_state::open: return "open";
    case session_state::closing: return "closing";
    case session_state::closed: return "closed";
  }
  return "?";
}

const namespace_policy* session_policy::find(std::string_view ns) const {
  for (auto& n : namespaces)
    if (n.name == ns) return &n;
  return nullptr;
}

bool channel_granted(const std::vector<std::string>& grants, std::string_view channel) {
  for (auto& g : grants) {
    if (!g.empty() && g.back() == '*') {
      if (channel.starts_with(std::string_view(g).substr(0, g.size() - 1))) return true;
    } else if (g == channel) {
      return true;
    }
  }
  return false;
}

std::shared_ptr<const session_rules> make_session_rules(session_policy policy, token_verifier verifier) {
  if (!policy.find("")) policy.namespaces.push_back(namespace_policy{});
  return std::make_shared<const session_rules>(session_rules{std::move(policy), std::move(verifier)});
}

server_session::server_session(std::shared_ptr<const session_rules> rules, session_info info, std::uint64_t now)
    : rules_(std::move(rules)), client_(std::move(info.client)), handshake_deadline_(now + policy().handshake_timeout_ms),
      two_way_(info.two_way) {
  churn_tokens_ = static_cast<double>(policy().churn_burst);
  churn_at_ = now;
}

void server_session::handle_text(std::string_view batch, std::uint64_t now) {
  if (state_ == session_state::closing || state_ == session_state::closed) return;
  // Envelope allowance: a publish frame carries its payload plus channel, id and keys.
  codec_limits limits{policy().max_message_bytes + 512 + max_channel_length};
  // All or nothing: a batch over the limit is refused before any of its commands runs, so a client
  // told "refused" never finds part of it published.
  if (batch_size(batch) > policy().max_batch) {
    fail_and_close(0, code::bad_frame,
                   "more than " + std::to_string(policy().max_batch) + " commands in one batch: none was executed");
    return;
  }
  bool stop = false;
  split_batch(batch, [&](std::string_view line) {
    if (stop || state_ == session_state::closing) return;
    command c;
    decode_error err;
    if (!decode_command(line, c, err, limits)) {
      if (err.error_code == code::unknown_command) {
        send_error(0, err.error_code, err.reason);   // forward compatibility: keep the connection
      } else if (err.error_code == code::message_too_large) {
        fail_and_close(0, code::message_too_big, err.reason);
        stop = true;
      } else {
        fail_and_close(0, err.error_code, err.reason);
        stop = true;
      }
      return;
    }
    command_in(c, now);
  });
}

bool server_session::churn_allowed(const command& c, std::uint64_t now) {
  if (policy().churn_per_s == 0) return true;
  // A token bucket: `churn_burst` tokens, refilled at churn_per_s; each subscribe or unsubscribe
  // takes one. Time only moves forward here (a clock step back refills nothing).
  if (now > churn_at_) {
    churn_tokens_ = std::min<double>(static_cast<double>(policy().churn_burst),
                                     churn_tokens_ + static_cast<double>(now - churn_at_) * policy().churn_per_s / 1000.0);
    churn_at_ = now;
  }
  if (churn_tokens_ >= 1.0) {
    churn_tokens_ -= 1.0;
    return true;
  }
  send_error(c.id, code::rate_limited,
             "more than " + std::to_string(policy().churn_per_s) + " subscribes and unsubscribes per second");
  return false;
}

void server_session::handle_command(const command& cmd, std::uint64_t now) {
  if (state_ == session_state::closing || state_ == session_state::closed) return;
  command c = cmd;   // one-way shells' connect/subscribe: small, no payload
  command_in(c, now);
}

void server_session::command_in(command& c, std::uint64_t now) {
  if (state_ == session_state::awaiting_connect) {
    if (c.kind != command_kind::connect) {
      fail_and_close(c.id, code::not_connected, "the first command must be connect");
      return;
    }
    do_connect(c, now);
    return;
  }
  switch (c.kind) {
    case command_kind::connect:
      send_error(c.id, code::bad_frame, "already connected");
      return;
    case command_kind::subscribe: {
      if (!churn_allowed(c, now)) return;
      if (!check_channel(c)) return;
      if (subscribed(c.channel)) {
        send_error(c.id, code::already_subscribed, "already subscribed to \"" + c.channel + "\"");
        return;
      }
      if (subs_.size() >= policy().max_subscriptions) {
        send_error(c.id, code::too_many_subscriptions,
                   "at most " + std::to_string(policy().max_subscriptions) + " subscriptions per connection");
        return;
      }
      auto* ns = policy().find(channel_namespace(c.channel));
      session_action a{.kind = session_action_kind::subscribe};
      a.since = c.since;
      a.join_presence = ns->presence && (!user_.empty() || ns->anonymous_presence);
      subs_.push_back(c.channel);
      request(std::move(a), c);
      return;
    }
    case command_kind::unsubscribe: {
      if (!churn_allowed(c, now)) return;
      if (!drop_subscription(c.channel)) {
        send_error(c.id, code::not_subscribed, "not subscribed to \"" + c.channel + "\"");
        return;
      }
      request(session_action{.kind = session_action_kind::unsubscribe}, c);
      return;
    }
    case command_kind::publish: {
      if (!check_channel(c)) return;
      auto* ns = policy().find(channel_namespace(c.channel));
      if (!ns->client_publish) {
        send_error(c.id, code::permission_denied,
                   "publishing is not allowed in namespace \"" + ns->name + "\"");
        return;
      }
      if (c.data.size() > policy().max_message_bytes) {
        send_error(c.id, code::message_too_large,
                   "message is larger than " + std::to_string(policy().max_message_bytes) + " bytes");
        return;
      }
      session_action a{.kind = session_action_kind::publish};
      a.data = std::move(c.data);   // the payload moves on: no copy per publish
      request(std::move(a), c);
      return;
    }
    case command_kind::history: {
      if (!check_channel(c)) return;
      session_action a{.kind = session_action_kind::history};
      a.since = c.since;
      a.limit = c.limit;
      request(std::move(a), c);
      return;
    }
    case command_kind::presence: {
      if (!check_channel(c)) return;
      auto* ns = policy().find(channel_namespace(c.channel));
      if (!ns->presence) {
        send_error(c.id, code::permission_denied, "presence is not enabled in namespace \"" + ns->name + "\"");
        return;
      }
      request(session_action{.kind = session_action_kind::presence}, c);
      return;
    }
    case command_kind::drop:
      if (!policy().allow_drop) {
        send_error(c.id, code::permission_denied, "drop is only available in demo mode");
        return;
      }
      disconnect(code::disconnected_by_server, "dropped on request", true, 0);
      return;
  }
}

void server_session::do_connect(const command& c, std::uint64_t now) {
  if (c.token.empty()) {
    if (!policy().allow_anonymous) {
      fail_and_close(c.id, code::unauthorized, "a token is required");
      return;
    }
  } else {
    if (c.token.size() > policy().max_token_bytes) {
      fail_and_close(c.id, code::unauthorized, "token is too long");
      return;
    }
    verified_token v = rules_->verifier ? rules_->verifier(c.token, now)
                                 : verified_token{code::unauthorized, "tokens are not accepted", {}, {}, false};
    if (v.error != code::ok) {
      fail_and_close(c.id, v.error, v.reason.empty() ? std::string(code_name(v.error)) : v.reason);
      return;
    }
    user_ = std::move(v.user);
    grants_ = std::move(v.channels);
    restricted_ = v.restricts_channels;
    if (v.expires_in_ms) {
      token_expiry_ = now + *v.expires_in_ms;
      has_token_expiry_ = true;
    }
  }
  state_ = session_state::open;
  frame f{.kind = frame_kind::connected, .id = c.id};
  f.client = client_;
  f.user = user_;
  f.ping_ms = policy().ping_ms;
  send_frame(f);
}

bool server_session::check_channel(const command& c) {
  if (!valid_channel(c.channel)) {
    send_error(c.id, code::bad_channel, "invalid channel name \"" + c.channel + "\"");
    return false;
  }
  auto ns_name = channel_namespace(c.channel);
  auto* ns = policy().find(ns_name);
  if (!ns) {
    send_error(c.id, code::bad_channel, "unknown namespace \"" + std::string(ns_name) + "\"");
    return false;
  }
  bool needs_grant = restricted_ || ns->private_channels || is_private_channel(c.channel);
  if (needs_grant && !channel_granted(grants_, c.channel)) {
    send_error(c.id, code::permission_denied, "channel \"" + c.channel + "\" needs a token that grants it");
    return false;
  }
  return true;
}

bool server_session::subscribed(std::string_view channel) const {
  return std::find(subs_.begin(), subs_.end(), channel) != subs_.end();
}

bool server_session::drop_subscription(std::string_view channel) {
  auto it = std::find(subs_.begin(), subs_.end(), channel);
  if (it == subs_.end()) return false;
  *it = std::move(subs_.back());
  subs_.pop_back();
  if (subs_.empty()) std::vector<std::string>().swap(subs_);
  return true;
}

void server_session::request(session_action a, const command& c) {
  a.request = next_request_++;
  a.channel = c.channel;
  pending_.push_back(pending{a.request, c.kind, c.id, c.channel, c.since.has_value()});
  actions_.push_back(std::move(a));
}

void server_session::handle_result(const engine_reply& r, std::uint64_t) {
  auto it = std::find_if(pending_.begin(), pending_.end(), [&](const pending& q) { return q.request == r.request; });
  if (it == pending_.end()) return;
  pending p = std::move(*it);
  pending_.erase(it);
  if (pending_.empty()) std::vector<pending>().swap(pending_);
  if (state_ != session_state::open) return;
  if (r.error != code::ok) {
    if (p.kind == command_kind::subscribe) drop_subscription(p.channel);
    send_error(p.id, r.error, r.reason);
    // A one-way stream (SSE, long-poll) is its URL's channels: one it cannot subscribe for now (the
    // engine is away) would leave it open and silent, and a plain EventSource would never ask
    // again. Ended with reconnect advice instead, the client comes back (with its position) once
    // the engine answers. Over WebSocket the client keeps its connection and is told per channel.
    if (p.kind == command_kind::subscribe && !two_way_ && r.error == code::storage_unavailable)
      disconnect(r.error, r.reason, true, 0);
    return;
  }
  frame f{.id = p.id};
  f.channel = p.channel;
  switch (p.kind) {
    case command_kind::subscribe:
      f.kind = frame_kind::subscribed;
      f.pos = r.pos;
      if (p.had_since) f.recovered = r.recovered.value_or(false);
      break;
    case command_kind::unsubscribe:
      f.kind = frame_kind::unsubscribed;
      break;
    case command_kind::publish:
      f.kind = frame_kind::published;
      f.pos = r.pos;
      break;
    case command_kind::history:
      f.kind = frame_kind::history;
      f.pos = r.pos;
      f.data = r.data;
      break;
    case command_kind::presence:
      f.kind = frame_kind::presence;
      f.data = r.data;
      break;
    default:
      return;
  }
  // Replies without an id are still sent for subscribe/unsubscribe (the client tracks channels);
  // a publish without an id asked for no reply.
  if (p.kind == command_kind::publish && p.id == 0) return;
  send_frame(f);
}

void server_session::handle_timeout(std::uint64_t now) {
  if (state_ == session_state::awaiting_connect && now >= handshake_deadline_)
    fail_and_close(0, code::timeout, "no connect command within the handshake timeout");
  if (state_ != session_state::open || !has_token_expiry_) return;
  if (now >= token_expiry_) {
    disconnect(code::token_expired, "token expired: reconnect with a fresh token", true, 0);
    return;
  }
  if (!token_warned_ && now + policy().token_refresh_warning_ms >= token_expiry_) {
    token_warned_ = true;
    send_error(0, code::token_expired,
               "token expires in " + std::to_string(token_expiry_ - now) + " ms: reconnect with a fresh token");
  }
}

void server_session::disconnect(code c, std::string_view reason, bool reconnect, std::uint64_t after_ms) {
  if (state_ == session_state::closing || state_ == session_state::closed) return;
  frame f{.kind = frame_kind::disconnect};
  f.error_code = c;
  f.reason = std::string(reason);
  f.reconnect = reconnect;
  f.after_ms = after_ms;
  send_frame(f);
  state_ = session_state::closing;
  actions_.push_back(session_action{.kind = session_action_kind::close, .close_code = c,
                                    .reason = std::string(reason)});
}

void server_session::shell_closed() { state_ = session_state::closed; }

std::optional<session_action> server_session::poll_action() {
  if (actions_.empty()) return std::nullopt;
  session_action a = actions_.take();
  return a;
}

std::optional<std::uint64_t> server_session::next_deadline() const {
  if (state_ == session_state::awaiting_connect) return handshake_deadline_;
  if (state_ != session_state::open || !has_token_expiry_) return std::nullopt;
  if (!token_warned_ && token_expiry_ > policy().token_refresh_warning_ms)
    return std::max<std::uint64_t>(0, token_expiry_ - policy().token_refresh_warning_ms);
  return token_expiry_;
}

void server_session::send_frame(const frame& f) {
  session_action a{.kind = session_action_kind::send};
  a.sent = f.kind;
  if (f.kind == frame_kind::error) a.error = f.error_code;
  a.channel = f.channel;
  a.recovered = f.recovered;
  encode_frame(f, a.text);
  actions_.push_back(std::move(a));
}

void server_session::send_error(std::uint64_t id, code c, std::string_view reason) {
  frame f{.kind = frame_kind::error, .id = id};
  f.error_code = c;
  f.reason = std::string(reason);
  send_frame(f);
}

void server_session::fail_and_close(std::uint64_t id, code c, std::string_view reason) {
  send_error(id, c, reason);
  state_ = session_state::closing;
  actions_.push_back(session_action{.kind = session_action_kind::close, .close_code = c,
                                    .reason = std::string(reason)});
}

}  // namespace pushwire::protocol

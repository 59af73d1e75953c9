#include "protocol/server_stream.hpp"

#include <algorithm>

namespace pushwire::protocol {

std::string_view stream_state_name(stream_state s) {
  switch (s) {
    case stream_state::open: return "open";
    case stream_state::slow_grace: return "slow_grace";
    case stream_state::closing: return "closing";
    case stream_state::cut: return "cut";
  }
  return "?";
}

server_stream::server_stream(stream_policy policy, std::uint64_t now)
    : policy_(policy), last_write_(now), last_recv_(now) {}

server_stream::channel_state* server_stream::find(std::string_view channel) {
  for (auto& c : channels_)
    if (c.name == channel) return &c;
  return nullptr;
}

const server_stream::channel_state* server_stream::find(std::string_view channel) const {
  return const_cast<server_stream*>(this)->find(channel);
}

const std::string* server_stream::any_joined() const {
  for (auto& c : channels_)
    if (c.subscribed) return &c.name;
  return nullptr;
}

server_stream::channel_state& server_stream::find_or_add(std::string_view channel) {
  if (auto* c = find(channel)) return *c;
  channels_.push_back(channel_state{.name = std::string(channel)});
  return channels_.back();
}

void server_stream::declare_channels(const std::vector<std::string>& ordered) {
  channels_.clear();
  for (auto& ch : ordered) find_or_add(ch);
  declared_ = channels_.size();
}

void server_stream::subscribing(std::string_view channel) {
  auto& c = find_or_add(channel);
  c.subscribed = true;
  c.resuming = true;
  c.has_sent = false;
}

void server_stream::subscribed(std::string_view channel, const position& start) {
  auto& c = find_or_add(channel);
  c.subscribed = true;
  c.resuming = true;
  c.sent = start;
  c.has_sent = true;
}

void server_stream::resumed(std::string_view channel) {
  if (auto* c = find(channel)) c->resuming = false;
}

void server_stream::unsubscribed(std::string_view channel) {
  auto it = std::find_if(channels_.begin(), channels_.end(), [&](auto& c) { return c.name == channel; });
  if (it == channels_.end()) return;
  if (static_cast<std::size_t>(it - channels_.begin()) < declared_) {
    it->subscribed = false;   // a declared channel keeps its place in the token
    it->resuming = false;
  } else {
    channels_.erase(it);
  }
}

admit_verdict server_stream::admit(std::string_view channel, const position& pos) {
  auto* c = find(channel);
  if (!c || !c->subscribed) return admit_verdict::unknown;
  if (c->resuming) return admit_verdict::hold;
  if (c->has_sent && c->sent.epoch == pos.epoch && pos.offset <= c->sent.offset) return admit_verdict::duplicate;
  bool reset = c->has_sent && c->sent.epoch != pos.epoch;
  c->sent = pos;
  c->has_sent = true;
  return reset ? admit_verdict::reset : admit_verdict::send;
}

void server_stream::wrote_position(std::string_view channel, const position& pos, bool publication) {
  auto* c = find(channel);
  if (!c) return;
  if (!publication || !c->has_written || c->written.epoch != pos.epoch || pos.offset > c->written.offset) {
    c->written = pos;
    c->has_written = true;
  }
}

std::string server_stream::token() const {
  std::string out;
  append_token(out);
  return out;
}

void server_stream::append_token(std::string& out) const {
  for (std::size_t i = 0; i < declared_; ++i)
    append_token_entry(out, channels_[i].has_written ? &channels_[i].written : nullptr, i == 0);
}

void server_stream::over_bound() {
  if (writing_) {
    state_ = stream_state::slow_grace;
    grace_until_ = 0;   // armed by the next handle_timeout(now)
  } else {
    state_ = stream_state::closing;
    actions_.push_back(stream_action::send_notice);
  }
}

bool server_stream::queue(std::size_t bytes, bool replay) {
  if (state_ != stream_state::open) return false;
  if (replay) {
    replay_queued_ += bytes;
  } else if (queued_ - replay_queued_ + bytes > policy_.queue_bytes) {
    over_bound();
    return false;
  }
  queued_ += bytes;
  return true;
}

void server_stream::queue_notice(std::size_t bytes) { queued_ += bytes; }

void server_stream::write_started(std::uint64_t now) {
  writing_ = true;
  last_write_ = now;
}

void server_stream::write_done(std::size_t bytes, bool replay, std::uint64_t now) {
  writing_ = false;
  last_write_ = now;
  dropped(bytes, replay);
  if (state_ == stream_state::slow_grace) {
    state_ = stream_state::closing;
    actions_.push_back(stream_action::send_notice);
  }
}

void server_stream::dropped(std::size_t bytes, bool replay) {
  queued_ -= std::min(queued_, bytes);
  if (replay) replay_queued_ -= std::min(replay_queued_, bytes);
  replay_queued_ = std::min(replay_queued_, queued_);
}

void server_stream::received(std::uint64_t now) { last_recv_ = now; }

void server_stream::close() {
  if (state_ == stream_state::open || state_ == stream_state::slow_grace) state_ = stream_state::closing;
}

void server_stream::handle_timeout(std::uint64_t now) {
  if (state_ == stream_state::cut) return;
  if (state_ == stream_state::slow_grace && grace_until_ == 0) grace_until_ = now + policy_.slow_grace_ms;
  if (state_ == stream_state::slow_grace && now >= grace_until_) {
    state_ = stream_state::cut;
    actions_.push_back(stream_action::cut);
    return;
  }
  if (policy_.dead_peer_ms) {
    if (now >= last_recv_ + policy_.dead_peer_ms) {
      state_ = stream_state::cut;
      actions_.push_back(stream_action::cut);
      return;
    }
    if (now >= last_recv_ + policy_.dead_peer_ms / 2 && !(probe_sent_ && probed_for_ == last_recv_) &&
        state_ == stream_state::open) {
      probe_sent_ = true;
      probed_for_ = last_recv_;
      actions_.push_back(stream_action::probe);
    }
  }
  if (state_ == stream_state::open && !writing_ && now >= last_write_ + policy_.ping_ms) {
    last_write_ = now;   // one ping per quiet interval, even before the shell writes it
    actions_.push_back(stream_action::send_ping);
  }
}

std::optional<std::uint64_t> server_stream::next_deadline() const {
  if (state_ == stream_state::cut) return std::nullopt;
  std::optional<std::uint64_t> d;
  auto earlier = [&](std::uint64_t t) { d = d ? std::min(*d, t) : t; };
  if (state_ == stream_state::slow_grace) earlier(grace_until_);   // 0 (not armed yet): at once
  if (policy_.dead_peer_ms) {
    earlier(last_recv_ + policy_.dead_peer_ms);
    if (!(probe_sent_ && probed_for_ == last_recv_)) earlier(last_recv_ + policy_.dead_peer_ms / 2);
  }
  if (state_ == stream_state::open) earlier(last_write_ + policy_.ping_ms);
  return d;
}

std::optional<stream_action> server_stream::poll_action() {
  if (actions_.empty()) return std::nullopt;
  auto a = actions_.front();
  actions_.erase(actions_.begin());
  return a;
}

}  // namespace pushwire::protocol

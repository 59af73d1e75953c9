#include "server/shell.hpp"

#include <deque>

#include "protocol/frame_codec.hpp"

namespace pushwire::server {

using protocol::code;
using protocol::session_action_kind;

shell_base::shell_base(shared_state& s, local_hub& hub, unsigned worker, std::string client, std::uint64_t now,
                       protocol::session_policy policy)
    : shared_(s), hub_(hub), worker_(worker),
      session_(std::move(policy), s.verifier, protocol::session_info{client, true}, now),
      presence_client_(std::move(client)) {}

shell_base::~shell_base() { release(); }

void shell_base::deliver(const message_ptr& m) {
  auto it = subs_.find(m->channel);
  if (it == subs_.end()) return;
  if (m->kind == message_kind::publication) {
    auto& last = it->second.last;
    if (m->pos.epoch == last.epoch && m->pos.offset <= last.offset) return;   // already sent (replay)
    last = m->pos;
    shared_.met.messages_delivered.fetch_add(1, std::memory_order_relaxed);
  }
  enqueue(m);
}

void shell_base::drain(std::uint64_t now) {
  std::deque<protocol::session_action> local;
  while (auto a = session_.poll_action()) local.push_back(std::move(*a));
  for (auto& a : local) execute(a, now);
}

void shell_base::execute(protocol::session_action& a, std::uint64_t now) {
  auto& eng = *shared_.eng;
  protocol::engine_reply r{.request = a.request};
  switch (a.kind) {
    case session_action_kind::send: {
      // A `subscribed` frame changes a position: SSE gives it an id line.
      if (a.text.starts_with("{\"type\":\"subscribed\"")) {
        protocol::frame f;
        protocol::decode_error err;
        std::string_view line(a.text);
        line.remove_suffix(1);
        if (protocol::decode_frame(line, f, err)) {
          auto m = std::make_shared<message>();
          m->kind = message_kind::control;
          m->channel = f.channel;
          // With `recovered:true` the replay follows: the stream's position (SSE id line, poll
          // cursor) is still the resume point, not the channel's newest offset, or a cut before
          // the replay ends would resume past messages never sent.
          auto sub = subs_.find(f.channel);
          m->pos = f.recovered == true && sub != subs_.end() ? sub->second.last : f.pos;
          m->sse = "event: control\ndata: ";
          m->sse.append(line);
          m->sse += "\n\n";
          m->frame = std::move(a.text);
          m->sse_id = true;
          enqueue(std::move(m));
          return;
        }
      }
      enqueue(make_control(std::move(a.text)));
      return;
    }
    case session_action_kind::subscribe: {
      auto out = eng.subscribe(a.channel, worker_, a.since, now);
      if (out.error != code::ok) {
        r.error = out.error;
        r.reason = out.reason;
        session_.handle_result(r, now);
        drain(now);
        return;
      }
      hub_.add(a.channel, this);
      shared_.met.subscriptions.fetch_add(1, std::memory_order_relaxed);
      auto& st = subs_[a.channel];
      st.last = out.recovered.value_or(false) ? *a.since : out.pos;
      if (out.recovered) {
        (*out.recovered ? shared_.met.recoveries : shared_.met.recoveries_failed).fetch_add(1, std::memory_order_relaxed);
      }
      r.pos = out.pos;
      r.recovered = out.recovered;
      session_.handle_result(r, now);
      drain(now);   // the `subscribed` frame goes before the replay
      // The replay references history entries that exist anyway, so it does not count against the
      // send queue bound (a resume bigger than the bound would otherwise never succeed).
      replaying_ = true;
      for (auto& m : out.replay) deliver(m);
      replaying_ = false;
      if (a.join_presence) {
        auto c = eng.presence_join(a.channel, member{session_.user(), presence_client_}, presence_lease_until_);
        if (c == code::ok) subs_[a.channel].presence = true;
      }
      return;
    }
    case session_action_kind::unsubscribe: {
      if (auto it = subs_.find(a.channel); it != subs_.end()) {
        hub_.remove(a.channel, this);
        eng.unsubscribe(a.channel, worker_);
        if (it->second.presence) eng.presence_leave(a.channel, presence_client_);
        subs_.erase(it);
        shared_.met.subscriptions.fetch_sub(1, std::memory_order_relaxed);
      }
      session_.handle_result(r, now);
      drain(now);
      return;
    }
    case session_action_kind::publish: {
      auto out = eng.publish(a.channel, a.data, {}, now, steady_ns());
      r.error = out.error;
      r.reason = out.reason;
      r.pos = out.pos;
      if (out.error == code::ok) shared_.met.messages_published.fetch_add(1, std::memory_order_relaxed);
      session_.handle_result(r, now);
      drain(now);
      return;
    }
    case session_action_kind::history: {
      std::size_t limit = a.limit ? a.limit : 100;
      auto out = eng.history(a.channel, a.since, limit, now);
      r.error = out.error;
      r.reason = out.reason;
      r.pos = out.pos;
      r.data = publications_json(out.publications);
      session_.handle_result(r, now);
      drain(now);
      return;
    }
    case session_action_kind::presence: {
      r.data = members_json(eng.presence(a.channel));
      session_.handle_result(r, now);
      drain(now);
      return;
    }
    case session_action_kind::close:
      close_requested(a.close_code, a.reason);
      return;
  }
}

std::vector<std::string> shell_base::presence_channels() const {
  std::vector<std::string> out;
  for (auto& [ch, st] : subs_)
    if (st.presence) out.push_back(ch);
  return out;
}

void shell_base::release(bool keep_presence) {
  if (released_) return;
  released_ = true;
  auto& eng = *shared_.eng;
  for (auto& [ch, st] : subs_) {
    hub_.remove(ch, this);
    eng.unsubscribe(ch, worker_);
    if (st.presence && !keep_presence) eng.presence_leave(ch, presence_client_);
    shared_.met.subscriptions.fetch_sub(1, std::memory_order_relaxed);
  }
  subs_.clear();
}

}  // namespace pushwire::server

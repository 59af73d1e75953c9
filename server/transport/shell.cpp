#include "server/transport/shell.hpp"

#include <algorithm>
#include <thread>

#include "protocol/frame_codec.hpp"
#include "server/ops/log.hpp"

namespace pushwire::server {

using protocol::code;
using protocol::session_action_kind;

namespace {
// Marks a hub request in progress: completions that arrive inside it are inline.
struct in_request {
  std::uint16_t& depth;
  explicit in_request(std::uint16_t& d) : depth(d) { ++depth; }
  ~in_request() { --depth; }
};
}  // namespace

shell::shell(node& n, local_subscribers& subs, unsigned io_thread, std::string client, protocol::stream_policy sp,
             bool one_way)
    : node_(n), subs_(subs),
      session_(n.session_rules, protocol::session_info{std::move(client), !one_way}, n.clk.now_ms()),
      stream_(sp, n.clk.now_ms()),
      delivered_(&n.met.messages_delivered_by[static_cast<std::size_t>(transport_kind::polling)]),
      owner_(std::this_thread::get_id()), io_thread_(io_thread) {}

void shell::observe_command(command_metric m, std::uint64_t started_ns) {
  auto now = node_.clk.now_ns();
  node_.met.command_latency[static_cast<std::size_t>(m)].observe(now > started_ns ? (now - started_ns) / 1000 : 0);
}

shell::~shell() { release(); }

template <class Result>
std::function<void(Result)> shell::complete(std::function<void(Result)> fn) {
  return [this, alive = lifetime(), fn = std::move(fn)](Result r) mutable {
    // Inline (inside the request, on this connection's thread): at once, in order.
    if (std::this_thread::get_id() == owner_ && requesting_ > 0) return fn(std::move(r));
    // Later, maybe on another thread: hop to this connection's thread; run only if it still lives.
    if (alive.expired()) return;
    later([this, alive, fn = std::move(fn), r = std::move(r)]() mutable {
      auto keep = alive.lock();
      if (!keep) return;
      fn(std::move(r));
      settled();
    });
  };
}

void shell::deliver(const outgoing& o) {
  if (auto* p = std::get_if<publication_ptr>(&o)) {
    switch (stream_.admit((*p)->channel, (*p)->pos)) {
      case protocol::admit_verdict::reset:
        announce_reset(**p);
        [[fallthrough]];
      case protocol::admit_verdict::send:
        delivered_->fetch_add(1, std::memory_order_relaxed);
        return offer(o, false);
      case protocol::admit_verdict::hold:
        // Held items count against the queue bound until they are offered (a slow resume read must
        // not let them grow without limit).
        if (auto* h = holding_of((*p)->channel); h && take_bytes(wire_size(o), false)) h->held.push_back(*p);
        return;
      case protocol::admit_verdict::duplicate:
      case protocol::admit_verdict::unknown:
        return;
    }
  }
  auto* e = std::get_if<channel_event_ptr>(&o);
  if (!e || !stream_.joined((*e)->channel)) return;
  if ((*e)->what != channel_event::kind::gap) {
    if (take_member_event(**e)) return;
    return offer(o, false);
  }
  // Told only if this stream had not got past the gap already (its resume replay may have covered
  // it): moving the position to the gap's start is then a `send`.
  if (stream_.admit((*e)->channel, (*e)->at) == protocol::admit_verdict::send)
    announce_break((*e)->channel, (*e)->at);
}

void shell::announce_reset(const publication& p) {
  // The channel's history started over in a new epoch while this client was subscribed (the
  // engine lost its data): what came before `p` in the new epoch, and anything of the old epoch not
  // yet sent, cannot be replayed.
  announce_break(p.channel, protocol::position{p.pos.epoch, p.pos.offset - 1});
}

void shell::announce_break(const std::string& channel, const protocol::position& at) {
  // The client hears it like a resume that could not recover: `subscribed`, recovered:false, at the
  // position the stream goes on from.
  protocol::frame f;
  f.kind = protocol::frame_kind::subscribed;
  f.channel = channel;
  f.pos = at;
  f.recovered = false;
  auto c = make_control(protocol::encode(f));
  c->channel = channel;
  c->stream_pos = f.pos;
  node_.met.recoveries_failed.fetch_add(1, std::memory_order_relaxed);
  send_control(std::move(c));
}

void shell::offer(const outgoing& o, bool replay) {
  std::size_t size = wire_size(o);
  if (take_bytes(size, replay)) push(o, size, replay);
}

bool shell::take_bytes(std::size_t size, bool replay) {
  bool was_open = stream_.state() == protocol::stream_state::open;
  if (stream_.queue(size, replay)) return true;
  // Refused: closing, or the slow-consumer decision was just taken (then the grace deadline is
  // armed and a notice may be due).
  if (was_open) {
    node_.met.slow_consumer_disconnects.fetch_add(1, std::memory_order_relaxed);
    // Once per connection, when the decision is taken; its "connection closed" line (code 4008)
    // follows with the address and the duration.
    log::warn("slow consumer", {{"client", session_.client()}, {"user", session_.user()},
                                {"queue_bytes", std::to_string(node_.cfg.queue_bytes)}});
  }
  stream_.handle_timeout(node_.clk.now_ms());
  drain(node_.clk.now_ms());
  return false;
}

void shell::send_control(std::shared_ptr<control_frame> c) {
  if (stream_.state() == protocol::stream_state::cut) return;
  // Replies are never refused for the bound: they answer what the client asked, and are small.
  control_ptr item(std::move(c));
  std::size_t size = wire_size(item);
  stream_.queue_notice(size);
  push(std::move(item), size, false);
}

void shell::on_stream_action(protocol::stream_action a) {
  switch (a) {
    case protocol::stream_action::send_ping:
      if (std::size_t size = wire_size(ping_frame()); stream_.queue(size, false)) push(ping_frame(), size, false);
      return;
    case protocol::stream_action::send_notice: {
      protocol::frame f{.kind = protocol::frame_kind::disconnect};
      f.error_code = code::slow_consumer;
      f.reason = "send queue over its byte bound; resume from the last position";
      f.reconnect = true;
      send_control(make_control(protocol::encode(f)));
      close_requested(code::slow_consumer, f.reason);
      return;
    }
    case protocol::stream_action::probe:
    case protocol::stream_action::cut:
      return;
  }
}

void shell::drain(std::uint64_t now) {
  for (;;) {
    if (auto a = next_session_action()) {
      execute(*a, now);
      continue;
    }
    if (auto s = stream_.poll_action()) {
      on_stream_action(*s);
      continue;
    }
    return;
  }
}

void shell::execute(protocol::session_action& a, std::uint64_t now) {
  auto& h = node_.the_hub();
  protocol::engine_reply reply{.request = a.request};
  auto answer = [this, now](protocol::engine_reply r) {
    session_result(r, now);
    drain(now);
  };
  in_request scope(requesting_);
  switch (a.kind) {
    case session_action_kind::send: {
      if (a.sent == protocol::frame_kind::error) node_.met.command_errors.add(static_cast<unsigned>(a.error));
      auto c = make_control(std::move(a.text));
      c->informational = a.sent == protocol::frame_kind::connected;
      send_control(std::move(c));
      return;
    }
    case session_action_kind::subscribe: {
      stream_.subscribing(a.channel);
      if (!holding_of(a.channel)) rare().subscribing.push_back(holding{a.channel, {}});
      subs_.add(a.channel, this);
      node_.met.subscriptions.fetch_add(1, std::memory_order_relaxed);
      auto ch = a.channel;
      auto since = a.since;
      h.subscribe(ch, io_thread_, since,
                  complete<resume_result>([this, a = std::move(a), now, t0 = node_.clk.now_ns()](resume_result r) mutable {
        observe_command(command_metric::subscribe, t0);
        on_resumed(std::move(a), std::move(r), now);
      }));
      return;
    }
    case session_action_kind::unsubscribe: {
      auto t0 = node_.clk.now_ns();
      leave_channel(a.channel, true);
      observe_command(command_metric::unsubscribe, t0);
      return answer(reply);
    }
    case session_action_kind::publish:
      h.publish(a.channel, std::move(a.data), {},
                complete<publish_result>([this, reply, answer, t0 = node_.clk.now_ns()](publish_result r) mutable {
        observe_command(command_metric::publish, t0);
        reply.error = r.error;
        reply.reason = r.reason;
        reply.pos = r.pos;
        if (r.error == code::ok) node_.met.messages_published.fetch_add(1, std::memory_order_relaxed);
        answer(reply);
      }));
      return;
    case session_action_kind::history:
      h.history(a.channel, a.since, a.limit ? a.limit : 100,
                complete<history_result>([this, reply, answer, t0 = node_.clk.now_ns()](history_result r) mutable {
                  observe_command(command_metric::history, t0);
                  reply.error = r.error;
                  reply.reason = r.reason;
                  reply.pos = r.top;
                  reply.data = publications_json(r.publications);
                  answer(reply);
                }));
      return;
    case session_action_kind::presence:
      h.presence(a.channel, complete<std::vector<member>>([this, reply, answer, t0 = node_.clk.now_ns()](std::vector<member> m) mutable {
        observe_command(command_metric::presence, t0);
        reply.data = members_json(m);
        answer(reply);
      }));
      return;
    case session_action_kind::close:
      stream_.close();
      close_requested(a.close_code, a.reason);
      return;
  }
}

shell::rare_state& shell::rare() {
  if (!rare_) rare_ = std::make_unique<rare_state>();
  return *rare_;
}

void shell::release_rare_if_empty() {
  if (rare_ && rare_->subscribing.empty() && rare_->presence.empty()) rare_.reset();   // an idle connection keeps none
}

shell::holding* shell::holding_of(std::string_view channel) {
  if (!rare_) return nullptr;
  for (auto& h : rare_->subscribing)
    if (h.channel == channel) return &h;
  return nullptr;
}

void shell::stop_holding(std::string_view channel) {
  if (!rare_) return;
  std::erase_if(rare_->subscribing, [&](const holding& h) { return h.channel == channel; });
  release_rare_if_empty();
}

void shell::leave_channel(const std::string& channel, bool leave_presence) {
  if (!stream_.joined(channel)) return;
  subs_.remove(channel, this);
  node_.the_hub().unsubscribe(channel, io_thread_);
  if (rare_) {
    auto& joined = rare_->presence;
    if (auto p = std::find(joined.begin(), joined.end(), channel); p != joined.end()) {
      if (leave_presence) node_.the_hub().presence_leave(channel, presence_member());
      joined.erase(p);
    }
  }
  stop_holding(channel);
  stream_.unsubscribed(channel);
  node_.met.subscriptions.fetch_sub(1, std::memory_order_relaxed);
}

void shell::on_resumed(protocol::session_action a, resume_result r, std::uint64_t now) {
  if (!stream_.joined(a.channel)) return;   // unsubscribed meanwhile
  if (r.error != code::ok || !a.join_presence) return finish_subscribe(std::move(a), std::move(r), now);
  // Presence before the reply: a channel at its member cap refuses the subscribe (4021).
  in_request scope(requesting_);
  auto ch = a.channel;
  member who{a.member_user.empty() ? session_.user() : a.member_user, presence_member(), a.member_info};
  node_.the_hub().presence_join(ch, who, presence_lease_until_,
                                complete<code>([this, a = std::move(a), r = std::move(r), now](code c) mutable {
                                  if (c == code::ok) {
                                    if (stream_.joined(a.channel)) rare().presence.push_back(a.channel);
                                    if (a.with_members) {
                                      // The member list after our own join (Pusher's subscription_succeeded).
                                      in_request inner(requesting_);
                                      auto ch = a.channel;
                                      return node_.the_hub().presence(
                                          ch, complete<std::vector<member>>(
                                                  [this, a = std::move(a), r = std::move(r), now](std::vector<member> m) mutable {
                                                    finish_subscribe(std::move(a), std::move(r), now, std::move(m));
                                                  }));
                                    }
                                  } else {
                                    r.error = c;
                                    r.reason = c == code::presence_full
                                                   ? "presence of \"" + a.channel + "\" is full (at most " +
                                                         std::to_string(node_.cfg.max_presence_members) + " members)"
                                                   : std::string(protocol::code_name(c));
                                  }
                                  finish_subscribe(std::move(a), std::move(r), now);
                                }));
}

void shell::finish_subscribe(protocol::session_action a, resume_result r, std::uint64_t now, std::vector<member> members) {
  if (!stream_.joined(a.channel)) return;   // unsubscribed meanwhile
  protocol::engine_reply reply{.request = a.request};
  if (r.error != code::ok) {
    leave_channel(a.channel, true);
    reply.error = r.error;
    reply.reason = r.reason;
    session_result(reply, now);
    return drain(now);
  }
  bool recovered = r.recovered.value_or(false);
  if (r.recovered) (recovered ? node_.met.recoveries : node_.met.recoveries_failed).fetch_add(1, std::memory_order_relaxed);
  // With `recovered:true` the replay follows: the stream's resume point is `since`, not the newest
  // offset, or a cut before the replay is written would resume past messages never sent.
  auto start = recovered ? *a.since : r.top;
  stream_.subscribed(a.channel, start);
  reply.pos = r.top;
  reply.recovered = r.recovered;
  reply.members.reserve(members.size());
  for (auto& m : members) reply.members.push_back(protocol::member_entry{std::move(m.user), std::move(m.client), std::move(m.info)});
  session_result(reply, now);
  // The `subscribed` frame (the session's next send) carries the stream position.
  while (auto act = next_session_action()) {
    if (act->kind == session_action_kind::send && act->sent == protocol::frame_kind::subscribed) {
      auto c = make_control(std::move(act->text));
      c->channel = a.channel;
      c->stream_pos = start;
      c->informational = recovered;   // long-poll: a cursor that is up to date is no news
      c->gap = r.recovered && !recovered;
      send_control(std::move(c));
    } else {
      execute(*act, now);
    }
  }
  // The replay, then what arrived live meanwhile, merged by offset through the duplicate filter
  // (nothing else runs on this thread in between).
  stream_.resumed(a.channel);
  for (auto& p : r.missed)
    if (auto v = stream_.admit(p->channel, p->pos); v == protocol::admit_verdict::send || v == protocol::admit_verdict::reset) {
      if (v == protocol::admit_verdict::reset) announce_reset(*p);
      delivered_->fetch_add(1, std::memory_order_relaxed);
      offer(p, true);
    }
  if (auto* h = holding_of(a.channel)) {
    auto held = std::move(h->held);
    stop_holding(a.channel);
    for (auto& p : held) stream_.dropped(wire_size(p), false);   // counted again when offered
    for (auto& p : held) deliver(p);
  }
  drain(now);
}

std::vector<std::string> shell::presence_channels() const { return rare_ ? rare_->presence : std::vector<std::string>{}; }

void shell::release(bool keep_presence) {
  if (released_) return;
  released_ = true;
  while (auto* ch = stream_.any_joined()) {
    std::string name = *ch;   // a copy: leave_channel erases it
    leave_channel(name, !keep_presence);
  }
}

}  // namespace pushwire::server

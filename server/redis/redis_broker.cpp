#include "server/redis/redis_broker.hpp"

#include <algorithm>
#include <boost/json.hpp>

#include "protocol/json_scan.hpp"
#include "server/redis/redis_history.hpp"
#include "server/redis/redis_scripts.hpp"

namespace pushwire::server {

namespace json = boost::json;
using protocol::position;

namespace {

std::string encode(const disconnect_order& d) {
  json::object o;
  o["client"] = d.client;
  o["user"] = d.user;
  o["all"] = d.all;
  o["code"] = static_cast<int>(d.code);
  o["reason"] = d.reason;
  o["reconnect"] = d.reconnect;
  o["after_ms"] = d.after_ms;
  o["jitter_ms"] = d.jitter_ms;
  return json::serialize(o);
}

// Our own messages on pushwire:control; anything else there is ignored.
std::optional<disconnect_order> decode(std::string_view text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  auto& o = v.as_object();
  disconnect_order d;
  try {
    d.client = json::value_to<std::string>(o.at("client"));
    d.user = json::value_to<std::string>(o.at("user"));
    d.all = o.at("all").as_bool();
    d.code = static_cast<protocol::code>(json::value_to<std::uint16_t>(o.at("code")));
    d.reason = json::value_to<std::string>(o.at("reason"));
    d.reconnect = o.at("reconnect").as_bool();
    d.after_ms = json::value_to<std::uint64_t>(o.at("after_ms"));
    d.jitter_ms = json::value_to<std::uint64_t>(o.at("jitter_ms"));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return d;
}


// Splits off the text before the next space.
std::string_view word(std::string_view& s) {
  auto sp = s.find(' ');
  auto w = s.substr(0, sp);
  s = sp == std::string_view::npos ? std::string_view{} : s.substr(sp + 1);
  return w;
}

}  // namespace

redis_broker::redis_broker(std::shared_ptr<redis_engine> engine, redis_history& history, std::string node_id)
    : engine_(std::move(engine)), history_(history), node_id_(std::move(node_id)) {}

void redis_broker::attach() {
  for (std::size_t s = 0; s < engine_->shards(); ++s) {
    auto& c = engine_->pubsub(s);
    c.on_push = [this, s](const redis_reply& r) { on_push(s, r); };
    c.on_connected = [this, s] { on_connected(s); };
  }
}

void redis_broker::publish_event(const channel_event_ptr& e) {
  std::string msg = e->what == channel_event::kind::join ? "j " : "l ";
  msg += e->who.client;
  msg += '\n';
  msg += pack_member(e->who);
  engine_->post([this, ch = e->channel, msg = std::move(msg)]() mutable {
    engine_->command(ch, {"PUBLISH", redis_keys::pubsub(ch), std::move(msg)}, [](redis_reply) {});
  });
}

void redis_broker::publish_disconnect(const disconnect_order& d) {
  engine_->post([this, msg = encode(d)]() mutable {
    engine_->command_on(0, {"PUBLISH", std::string(redis_keys::control), std::move(msg)}, [](redis_reply) {});
  });
}

void redis_broker::subscribe(std::string_view channel, std::function<void()> done) {
  engine_->post([this, ch = std::string(channel), done = std::move(done)]() mutable {
    auto& l = channels_[ch];
    ++l.count;
    if (l.confirmed) return done();
    l.waiting.push_back(std::move(done));
    if (l.count == 1) listen(ch);
  });
}

void redis_broker::unsubscribe(std::string_view channel) {
  engine_->post([this, ch = std::string(channel)] {
    auto it = channels_.find(ch);
    if (it == channels_.end() || --it->second.count > 0) return;
    channels_.erase(it);
    engine_->pubsub(engine_->shard_of(ch)).command({"UNSUBSCRIBE", redis_keys::pubsub(ch)}, [](redis_reply) {});
  });
}

std::vector<std::string> redis_broker::listened() const {
  std::vector<std::string> out;
  out.reserve(channels_.size());
  for (auto& [ch, l] : channels_) out.push_back(ch);
  return out;
}

void redis_broker::listen(const std::string& ch) {
  auto it = channels_.find(ch);
  if (it == channels_.end()) return;
  if (!it->second.last) {
    // The first time: read the channel's position before listening. It is a floor for what this
    // node may miss should its Pub/Sub connection drop before the first publication arrives; a
    // fill from it re-delivers at most what subscribers have (their duplicate filters drop that).
    engine_->command(ch, {"HMGET", redis_keys::meta(ch), "epoch", "top"}, [this, ch](redis_reply r) {
      auto it = channels_.find(ch);
      if (it == channels_.end()) return;
      // Without an answer (the command connection may still be reconnecting while the Pub/Sub one is
      // back) the floor is "nothing": a later fill then reads all the history keeps, which is
      // more than needed, never less. Listening must not wait on it.
      position floor;
      if (!r.is_error() && r.elements.size() == 2 && r.elements[0].type == redis_reply::kind::string) {
        floor.epoch = r.elements[0].str;
        floor.offset = protocol::parse_uint(r.elements[1].str).value_or(0);
      }
      if (!it->second.last) it->second.last = floor;
      listen(ch);
    });
    return;
  }
  engine_->pubsub(engine_->shard_of(ch)).command({"SUBSCRIBE", redis_keys::pubsub(ch)}, [this, ch](redis_reply r) {
    // Refused (a Redis still loading its data answers errors) or the connection broke (then
    // on_connected listens again): try again shortly while the channel is still wanted.
    if (r.is_error()) return later(ch, [this, ch] { listen(ch); });
    auto it = channels_.find(ch);
    if (it == channels_.end()) return;
    auto& l = it->second;
    bool again = l.listened_before;
    l.confirmed = true;
    l.listened_before = true;
    auto ready = std::move(l.waiting);
    l.waiting.clear();
    if (again) fill(ch);   // listening again after a lost connection: what did we miss?
    for (auto& f : ready) f();
  });
}

void redis_broker::on_connected(std::size_t shard) {
  if (shard == 0)
    engine_->pubsub(0).command({"SUBSCRIBE", std::string(redis_keys::control)}, [](redis_reply) {});
  for (auto& [ch, l] : channels_) {
    if (engine_->shard_of(ch) != shard) continue;
    l.confirmed = false;
    listen(ch);
  }
}

void redis_broker::on_push(std::size_t, const redis_reply& r) {
  // ["message", channel, payload]
  if (r.elements.size() != 3 || r.elements[0].str != "message" || !listener_) return;
  const auto& chan = r.elements[1].str;
  const auto& payload = r.elements[2].str;
  if (chan == redis_keys::control) {
    if (auto d = decode(payload)) listener_->on_disconnect(*d);
    return;
  }
  auto ch = redis_keys::channel_of(chan, "pub");
  if (!ch.empty()) on_message(std::string(ch), payload);
}

void redis_broker::on_message(const std::string& ch, std::string_view payload) {
  auto it = channels_.find(ch);
  if (it == channels_.end() || !it->second.confirmed) return;
  auto& l = it->second;
  auto nl = payload.find('\n');
  if (nl == std::string_view::npos) return;
  auto head = payload.substr(0, nl);
  auto body = payload.substr(nl + 1);
  auto kind = word(head);
  if (kind == "j" || kind == "l") {
    member m = unpack_member(std::string(head), body);
    listener_->on_channel_event(make_channel_event(kind == "j" ? channel_event::kind::join : channel_event::kind::leave,
                                                   ch, std::move(m)));
    return;
  }
  if (kind != "p") return;
  auto epoch = word(head);
  auto off = protocol::parse_uint(word(head));
  auto origin = word(head);
  auto ns = protocol::parse_uint(word(head));
  if (!off || epoch.empty()) return;
  // The publish time is this node's clock only when this node published it.
  auto pub = make_publication(ch, position{std::string(epoch), *off}, std::string(body),
                              origin == node_id_ && ns ? *ns : 0);
  if (l.filling) return l.held.push_back(std::move(pub));
  if (l.last && l.last->epoch == pub->pos.epoch && pub->pos.offset > l.last->offset + 1) {
    l.held.push_back(std::move(pub));   // an offset was skipped: read it from the history first
    return fill(ch);
  }
  deliver(l, pub);
}

void redis_broker::deliver(listening& l, const publication_ptr& p) {
  if (l.last && l.last->epoch == p->pos.epoch && p->pos.offset <= l.last->offset) return;   // had it
  l.last = p->pos;
  listener_->on_publication(p);
}

void redis_broker::later(const std::string& ch, std::function<void()> f) {
  auto t = std::make_shared<boost::asio::steady_timer>(engine_->io(), std::chrono::milliseconds(100));
  t->async_wait([this, t, ch, f = std::move(f)](boost::system::error_code ec) {
    if (!ec && channels_.contains(ch)) f();
  });
}

void redis_broker::fill(const std::string& ch) {
  auto it = channels_.find(ch);
  if (it == channels_.end()) return;
  auto& l = it->second;
  if (l.filling) return;
  l.filling = true;
  // From the last position (an empty epoch: the channel had none; a new epoch: Redis lost its
  // data) everything kept is newer.
  std::optional<position> since;
  if (l.last && !l.last->epoch.empty()) since = l.last;
  auto args = history_.read_args(ch, since, false, 0);
  engine_->script(redis_scripts::get().read, ch, {redis_keys::meta(ch), redis_keys::history(ch)}, std::move(args),
                  [this, ch, since](redis_reply r) {
                    auto it = channels_.find(ch);
                    if (it == channels_.end()) return;
                    auto& l = it->second;
                    position top;
                    std::optional<bool> ignored;
                    std::vector<publication_ptr> missed;
                    if (r.is_error()) {
                      // Not read (Redis away or loading): keep holding and read again shortly.
                      l.filling = false;
                      return later(ch, [this, ch] { fill(ch); });
                    }
                    if (listener_) redis_history::parse_read(ch, r, top, ignored, missed);
                    if (!r.is_error() && l.last && !l.last->epoch.empty() && !top.epoch.empty() &&
                        top.epoch != l.last->epoch) {
                      // Another epoch: read everything it kept, from its start.
                      l.last = position{};
                      l.filling = false;
                      return fill(ch);
                    }
                    auto held = std::move(l.held);
                    l.held.clear();
                    l.filling = false;
                    std::stable_sort(held.begin(), held.end(),
                                     [](auto& a, auto& b) { return a->pos.offset < b->pos.offset; });
                    if (!listener_) return;
                    // Trimmed past what this node had: the subscribers are told (hub.hpp, gaps).
                    if (since && !r.is_error() && top.epoch == since->epoch) {
                      std::uint64_t next = missed.empty() ? top.offset + 1 : missed.front()->pos.offset;
                      if (next > since->offset + 1) {
                        auto e = std::make_shared<channel_event>();
                        e->what = channel_event::kind::gap;
                        e->channel = ch;
                        e->at = position{top.epoch, next - 1};
                        l.last = e->at;
                        listener_->on_channel_event(e);
                      }
                    }
                    for (auto& p : missed) deliver(l, p);
                    for (auto& p : held) deliver(l, p);
                  });
}

}  // namespace pushwire::server

#include "server/memory_engine.hpp"

#include "protocol/channel_name.hpp"
#include "protocol/json_scan.hpp"

namespace pushwire::server {

using protocol::code;
using protocol::position;

std::string members_json(const std::vector<member>& members) {
  std::string out = "[";
  for (std::size_t i = 0; i < members.size(); ++i) {
    if (i) out += ',';
    out += "{\"user\":";
    protocol::append_json_string(out, members[i].user);
    out += ",\"client\":";
    protocol::append_json_string(out, members[i].client);
    out += '}';
  }
  out += ']';
  return out;
}

std::string publications_json(const std::vector<message_ptr>& pubs) {
  std::string out = "[";
  for (std::size_t i = 0; i < pubs.size(); ++i) {
    if (i) out += ',';
    out += "{\"offset\":";
    protocol::append_uint(out, pubs[i]->pos.offset);
    out += ",\"data\":";
    out += pubs[i]->data();
    out += '}';
  }
  out += ']';
  return out;
}

memory_engine::memory_engine(engine_config cfg) : cfg_(std::move(cfg)), epoch_counter_(cfg_.epoch_seed) {
  if (!cfg_.namespaces.contains("")) cfg_.namespaces.emplace("", channel_options{});
}

memory_engine::~memory_engine() = default;

void memory_engine::set_sinks(std::vector<fanout_sink*> sinks) { sinks_ = std::move(sinks); }
void memory_engine::set_presence_listener(std::function<void(const message_ptr&)> listener) {
  presence_listener_ = std::move(listener);
}

std::shared_ptr<memory_engine::channel> memory_engine::find(std::string_view name) {
  std::lock_guard lk(map_mu_);
  auto it = channels_.find(std::string(name));
  return it == channels_.end() ? nullptr : it->second;
}

std::shared_ptr<memory_engine::channel> memory_engine::get(std::string_view name, std::uint64_t now_ms) {
  std::lock_guard lk(map_mu_);
  auto key = std::string(name);
  auto it = channels_.find(key);
  if (it != channels_.end()) return it->second;
  if (channels_.size() >= cfg_.max_channels) return nullptr;
  auto c = std::make_shared<channel>();
  c->name = key;
  c->epoch = protocol::make_epoch(epoch_counter_.fetch_add(1, std::memory_order_relaxed));
  auto ns = cfg_.namespaces.find(protocol::channel_namespace(name));
  c->opts = ns != cfg_.namespaces.end() ? ns->second : channel_options{};
  c->subs_per_worker.assign(sinks_.size(), 0);
  c->last_active_ms = now_ms;
  channels_.emplace(std::move(key), c);
  return c;
}

void memory_engine::trim(channel& c, std::uint64_t now_ms) {
  auto drop_front = [&] {
    history_bytes_.fetch_sub(c.history.front().msg->bytes(), std::memory_order_relaxed);
    c.history.pop_front();
  };
  while (!c.history.empty() && c.history.size() > c.opts.history_size) drop_front();
  while (!c.history.empty() && c.history.front().at_ms + c.opts.history_ttl_ms <= now_ms) drop_front();
  // Over the global byte bound: this channel gives up its oldest entries (keeps its newest).
  while (c.history.size() > 1 && history_bytes_.load(std::memory_order_relaxed) > cfg_.history_total_bytes)
    drop_front();
}

void memory_engine::fan_out(channel& c, const message_ptr& m) {
  for (std::size_t w = 0; w < c.subs_per_worker.size(); ++w)
    if (c.subs_per_worker[w]) sinks_[w]->post(m);
}

publish_outcome memory_engine::publish(std::string_view name, std::string_view data, std::string_view key,
                                       std::uint64_t now_ms, std::uint64_t now_ns) {
  if (!key.empty()) {
    std::lock_guard lk(idem_mu_);
    auto it = idem_.find(std::string(key));
    if (it != idem_.end() && it->second.expires_ms > now_ms) {
      publish_outcome r = it->second.result;
      r.duplicate = true;
      return r;
    }
  }
  publish_outcome r;
  for (;;) {
    auto c = get(name, now_ms);
    if (!c) return {code::internal_error, "channel limit reached", {}, false};
    std::lock_guard lk(c->mu);
    if (c->dead) continue;   // swept between lookup and lock
    r.pos = position{c->epoch, ++c->offset};
    auto m = make_publication(name, r.pos, data, now_ns);
    c->last_active_ms = now_ms;
    if (c->opts.history_size > 0) {
      history_bytes_.fetch_add(m->bytes(), std::memory_order_relaxed);
      c->history.push_back(entry{now_ms, m});
      trim(*c, now_ms);
    }
    fan_out(*c, m);
    break;
  }
  if (!key.empty()) {
    std::lock_guard lk(idem_mu_);
    auto [it, inserted] = idem_.insert_or_assign(std::string(key), idem{r, now_ms + cfg_.idempotency_ttl_ms});
    if (inserted) idem_order_.push_back(it->first);
    while (idem_.size() > cfg_.idempotency_keys && !idem_order_.empty()) {
      idem_.erase(idem_order_.front());
      idem_order_.pop_front();
    }
  }
  return r;
}

subscribe_outcome memory_engine::subscribe(std::string_view name, unsigned worker,
                                           const std::optional<position>& since, std::uint64_t now_ms) {
  std::shared_ptr<channel> c;
  std::unique_lock<std::mutex> lk;
  for (;;) {
    c = get(name, now_ms);
    if (!c) return {code::internal_error, "channel limit reached", {}, {}, {}};
    lk = std::unique_lock(c->mu);
    if (!c->dead) break;
    lk.unlock();
  }
  subscribe_outcome r;
  trim(*c, now_ms);
  r.pos = position{c->epoch, c->offset};
  if (since) {
    bool ok = false;
    if (since->epoch == c->epoch && since->offset <= c->offset) {
      if (since->offset == c->offset) {
        ok = true;
      } else if (!c->history.empty() && c->history.front().msg->pos.offset <= since->offset + 1) {
        ok = true;
        for (auto& e : c->history)
          if (e.msg->pos.offset > since->offset) r.replay.push_back(e.msg);
      }
    }
    r.recovered = ok;
  }
  if (worker < c->subs_per_worker.size()) ++c->subs_per_worker[worker];
  ++c->subscribers;
  c->last_active_ms = now_ms;
  return r;
}

void memory_engine::unsubscribe(std::string_view name, unsigned worker) {
  auto c = find(name);
  if (!c) return;
  std::lock_guard lk(c->mu);
  if (worker < c->subs_per_worker.size() && c->subs_per_worker[worker]) {
    --c->subs_per_worker[worker];
    --c->subscribers;
  }
}

history_outcome memory_engine::history(std::string_view name, const std::optional<position>& since,
                                       std::size_t limit, std::uint64_t now_ms) {
  auto c = get(name, now_ms);
  if (!c) return {code::internal_error, "channel limit reached", {}, {}};
  history_outcome r;
  std::lock_guard lk(c->mu);
  trim(*c, now_ms);
  r.pos = position{c->epoch, c->offset};
  if (since) {
    if (since->epoch != c->epoch) return r;   // another run of history: nothing of it is "after"
    for (auto& e : c->history) {
      if (e.msg->pos.offset <= since->offset) continue;
      if (limit && r.publications.size() >= limit) break;
      r.publications.push_back(e.msg);
    }
  } else {
    std::size_t n = c->history.size();
    std::size_t first = limit && n > limit ? n - limit : 0;
    for (std::size_t i = first; i < n; ++i) r.publications.push_back(c->history[i].msg);
  }
  return r;
}

void memory_engine::presence_event(channel& c, bool join, const member& m) {
  std::string text = "{\"type\":";
  text += join ? "\"join\"" : "\"leave\"";
  text += ",\"channel\":";
  protocol::append_json_string(text, c.name);
  text += ",\"member\":";
  std::string list = members_json({m});
  text.append(list, 1, list.size() - 2);
  text += "}\n";
  auto frame = make_control(std::move(text), c.name);
  fan_out(c, frame);
  if (presence_listener_) presence_listener_(frame);
}

code memory_engine::presence_join(std::string_view name, const member& m, std::uint64_t lease_until_ms) {
  std::shared_ptr<channel> c;
  std::unique_lock<std::mutex> lk;
  for (;;) {
    c = get(name, 0);
    if (!c) return code::internal_error;
    lk = std::unique_lock(c->mu);
    if (!c->dead) break;
    lk.unlock();
  }
  auto it = c->presence.find(m.client);
  if (it != c->presence.end()) {
    if (it->second.lease_until_ms != 0) it->second.lease_until_ms = lease_until_ms;
    return code::ok;
  }
  if (c->presence.size() >= cfg_.max_presence_members) return code::rate_limited;
  c->presence.emplace(m.client, presence_entry{m, lease_until_ms});
  presence_event(*c, true, m);
  return code::ok;
}

void memory_engine::presence_leave(std::string_view name, std::string_view client) {
  auto c = find(name);
  if (!c) return;
  std::lock_guard lk(c->mu);
  auto it = c->presence.find(client);
  if (it == c->presence.end()) return;
  member m = it->second.m;
  c->presence.erase(it);
  presence_event(*c, false, m);
}

std::vector<member> memory_engine::presence(std::string_view name) {
  std::vector<member> out;
  auto c = find(name);
  if (!c) return out;
  std::lock_guard lk(c->mu);
  for (auto& [k, e] : c->presence) out.push_back(e.m);
  return out;
}

std::vector<channel_info> memory_engine::channels() {
  std::vector<std::shared_ptr<channel>> all;
  {
    std::lock_guard lk(map_mu_);
    for (auto& [k, c] : channels_) all.push_back(c);
  }
  std::vector<channel_info> out;
  for (auto& c : all) {
    std::lock_guard lk(c->mu);
    out.push_back(channel_info{c->name, position{c->epoch, c->offset}, c->subscribers});
  }
  return out;
}

engine_stats memory_engine::stats() {
  engine_stats s;
  std::vector<std::shared_ptr<channel>> all;
  {
    std::lock_guard lk(map_mu_);
    for (auto& [k, c] : channels_) all.push_back(c);
  }
  s.channels = all.size();
  for (auto& c : all) {
    std::lock_guard lk(c->mu);
    s.subscriptions += c->subscribers;
  }
  s.history_bytes = history_bytes_.load(std::memory_order_relaxed);
  return s;
}

void memory_engine::sweep(std::uint64_t now_ms) {
  std::vector<std::shared_ptr<channel>> all;
  {
    std::lock_guard lk(map_mu_);
    for (auto& [k, c] : channels_) all.push_back(c);
  }
  std::vector<std::string> idle;
  for (auto& c : all) {
    std::lock_guard lk(c->mu);
    trim(*c, now_ms);
    for (auto it = c->presence.begin(); it != c->presence.end();) {
      if (it->second.lease_until_ms != 0 && it->second.lease_until_ms <= now_ms) {
        member m = it->second.m;
        it = c->presence.erase(it);
        presence_event(*c, false, m);
      } else {
        ++it;
      }
    }
    std::uint64_t idle_ms = cfg_.channel_idle_ms ? cfg_.channel_idle_ms : c->opts.history_ttl_ms;
    if (c->subscribers == 0 && c->presence.empty() && c->history.empty() && c->last_active_ms + idle_ms <= now_ms)
      idle.push_back(c->name);
  }
  if (!idle.empty()) {
    std::lock_guard lk(map_mu_);
    for (auto& n : idle) {
      auto it = channels_.find(n);
      if (it == channels_.end()) continue;
      // Re-check under both locks: a subscriber may have arrived since.
      auto keep = it->second;
      std::lock_guard lk2(keep->mu);
      if (keep->subscribers == 0 && keep->presence.empty() && keep->history.empty()) {
        keep->dead = true;
        channels_.erase(it);
      }
    }
  }
  std::lock_guard lk(idem_mu_);
  while (!idem_order_.empty()) {
    auto it = idem_.find(idem_order_.front());
    if (it != idem_.end() && it->second.expires_ms > now_ms) break;
    if (it != idem_.end()) idem_.erase(it);
    idem_order_.pop_front();
  }
}

}  // namespace pushwire::server

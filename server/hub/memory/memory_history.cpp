#include "server/hub/memory/memory_history.hpp"

#include "protocol/channel_name.hpp"
#include "server/hub/data_hash.hpp"
#include "server/hub/history_window.hpp"

namespace pushwire::server {

using protocol::code;
using protocol::position;

memory_history::memory_history(memory_history_config cfg)
    : cfg_(std::move(cfg)), epoch_counter_(cfg_.epoch_seed), budget_(cfg_.total_bytes), keys_(cfg_.keys) {
  if (!cfg_.namespaces.contains("")) cfg_.namespaces.emplace("", history_policy{});
  empty_epoch_ = protocol::make_epoch(epoch_counter_.fetch_add(1, std::memory_order_relaxed));
}

std::string memory_history::empty_epoch() {
  std::lock_guard lk(map_mu_);
  return empty_epoch_;
}

std::pair<std::shared_ptr<memory_history::channel>, std::unique_lock<std::mutex>> memory_history::open(
    std::string_view name, std::uint64_t now_ms, bool create) {
  for (;;) {
    std::shared_ptr<channel> c;
    {
      std::lock_guard lk(map_mu_);
      auto key = std::string(name);
      auto it = channels_.find(key);
      if (it != channels_.end()) {
        c = it->second;
      } else {
        if (!create || channels_.size() >= cfg_.max_channels) return {};
        c = std::make_shared<channel>();
        c->name = key;
        c->epoch = empty_epoch_;   // {empty epoch, 0} continues here (history_window.hpp)
        auto ns = cfg_.namespaces.find(protocol::channel_namespace(name));
        c->policy = ns != cfg_.namespaces.end() ? ns->second : history_policy{};
        c->last_active_ms = now_ms;
        channels_.emplace(std::move(key), c);
      }
    }
    std::unique_lock lk(c->mu);
    if (!c->dead) return {std::move(c), std::move(lk)};
  }
}

void memory_history::trim(channel& c, std::uint64_t now_ms) {
  // Entries the byte budget evicted (the oldest overall) are always a prefix of the kept list.
  while (!c.kept.empty() && history_budget::gone(c.kept.front().ticket)) c.kept.pop_front();
  auto drop_front = [&] {
    budget_.release(c.kept.front().ticket);
    c.kept.pop_front();
  };
  while (!c.kept.empty() && c.kept.size() > c.policy.size) drop_front();
  while (!c.kept.empty() && c.kept.front().at_ms + c.policy.ttl_ms <= now_ms) drop_front();
}

void memory_history::keep(channel& c, std::uint64_t now_ms, const publication_ptr& pub) {
  if (c.policy.size == 0) return;
  auto ticket = budget_.admit(pub->accounted_bytes());
  if (!ticket) {
    // Larger than the whole bound: delivered live, not kept. The older entries go too, so what
    // is kept stays one unbroken run up to the top (a resume from before it is not recovered).
    for (auto& e : c.kept) budget_.release(e.ticket);
    c.kept.clear();
    return;
  }
  c.kept.push_back(entry{now_ms, pub, std::move(ticket)});
  trim(c, now_ms);
}

void memory_history::append(std::string_view name, std::string data, std::string_view key, std::uint64_t published_ns,
                            std::uint64_t now_ms, std::function<void(append_result)> done) {
  auto [c, lk] = open(name, now_ms, true);
  if (!c) return done({code::too_many_channels, "the server's channel limit is reached"});
  std::uint64_t hash = key.empty() ? 0 : data_hash(data);
  if (!key.empty()) {
    if (auto seen = keys_.find(name, key, now_ms)) {   // under the channel's lock: one step with the append
      if (seen->hash != hash)
        return done({code::idempotency_conflict, "idempotency_key was used on this channel with other data"});
      return done({.pos = seen->pos, .duplicate = true});
    }
  }
  auto pub = make_publication(name, position{c->epoch, ++c->offset}, std::move(data), published_ns);
  c->last_active_ms = now_ms;
  keep(*c, now_ms, pub);
  if (!key.empty()) keys_.remember(name, key, pub->pos, hash, now_ms);
  auto pos = pub->pos;
  done({.pub = std::move(pub), .pos = std::move(pos)});   // under the lock: the order of completions is the order of offsets
}

void memory_history::resume(std::string_view name, const std::optional<position>& since, std::uint64_t now_ms,
                            std::function<void(resume_result)> done) {
  resume_result r;
  auto empty = empty_epoch();   // read first: never map_mu_ under a channel's lock (sweep locks the other way)
  {
    auto [c, lk] = open(name, now_ms, false);
    if (!c) {   // holds nothing: offset 0 of the empty epoch, and no entry is made
      r.top = position{empty, 0};
      if (since) r.recovered = *since == r.top;
      return done(std::move(r));
    }
    trim(*c, now_ms);
    c->last_active_ms = now_ms;
    r.top = position{c->epoch, c->offset};
    r.recovered = missed_since(c->kept, r.top, since, r.missed);
  }
  done(std::move(r));
}

void memory_history::read(std::string_view name, const std::optional<position>& since, std::size_t limit,
                          std::uint64_t now_ms, std::function<void(history_result)> done) {
  history_result r;
  auto empty = empty_epoch();
  {
    auto [c, lk] = open(name, now_ms, false);
    if (!c) {
      r.top = position{empty, 0};
      return done(std::move(r));
    }
    trim(*c, now_ms);
    r.top = position{c->epoch, c->offset};
    history_window(c->kept, r.top, since, limit, r.publications);
  }
  done(std::move(r));
}

std::vector<std::shared_ptr<memory_history::channel>> memory_history::snapshot() {
  std::lock_guard lk(map_mu_);
  std::vector<std::shared_ptr<channel>> all;
  all.reserve(channels_.size());
  for (auto& [k, c] : channels_) all.push_back(c);
  return all;
}

std::vector<channel_info> memory_history::channels() {
  std::vector<channel_info> out;
  for (auto& c : snapshot()) {
    std::lock_guard lk(c->mu);
    if (!c->dead) out.push_back(channel_info{c->name, position{c->epoch, c->offset}, 0});
  }
  return out;
}

history_stats memory_history::stats() {
  std::lock_guard lk(map_mu_);
  return history_stats{channels_.size(), budget_.bytes()};
}

void memory_history::sweep(std::uint64_t now_ms, const std::function<bool(std::string_view)>& in_use) {
  keys_.sweep(now_ms);
  std::vector<std::string> idle;
  for (auto& c : snapshot()) {
    std::lock_guard lk(c->mu);
    trim(*c, now_ms);
    std::uint64_t idle_ms = cfg_.channel_idle_ms ? cfg_.channel_idle_ms : c->policy.ttl_ms;
    if (c->kept.empty() && c->last_active_ms + idle_ms <= now_ms) idle.push_back(c->name);
  }
  for (auto& name : idle) {
    if (in_use(name)) continue;
    std::lock_guard lk(map_mu_);
    auto it = channels_.find(name);
    if (it == channels_.end()) continue;
    auto c = it->second;
    std::lock_guard lk2(c->mu);
    // Re-checked under both locks: a publish or subscribe may have come in since.
    std::uint64_t idle_ms = cfg_.channel_idle_ms ? cfg_.channel_idle_ms : c->policy.ttl_ms;
    if (c->kept.empty() && c->last_active_ms + idle_ms <= now_ms) {
      c->dead = true;
      channels_.erase(it);
      // It had publications: a client that saw it empty before may have missed them.
      empty_epoch_ = protocol::make_epoch(epoch_counter_.fetch_add(1, std::memory_order_relaxed));
    }
  }
}

}  // namespace pushwire::server

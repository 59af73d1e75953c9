#include "server/hub/hub.hpp"

#include "protocol/json_scan.hpp"

namespace pushwire::server {

using protocol::code;

std::string members_json(const std::vector<member>& members) {
  std::string out = "[";
  for (std::size_t i = 0; i < members.size(); ++i) {
    if (i) out += ',';
    out += "{\"user\":";
    protocol::append_json_string(out, members[i].user);
    out += ",\"client\":";
    protocol::append_json_string(out, members[i].client);
    if (!members[i].info.empty()) {   // JSON the store was given as such (Pusher's user_info)
      out += ",\"info\":";
      out += members[i].info;
    }
    out += '}';
  }
  out += ']';
  return out;
}

std::string publications_json(const std::vector<publication_ptr>& pubs) {
  std::string out = "[";
  for (std::size_t i = 0; i < pubs.size(); ++i) {
    if (i) out += ',';
    out += "{\"offset\":";
    protocol::append_uint(out, pubs[i]->pos.offset);
    out += ",\"data\":";
    out += pubs[i]->data;
    out += '}';
  }
  out += ']';
  return out;
}

hub::hub(hub_stores stores, const clock& clk, unsigned io_threads)
    : s_(stores), clock_(clk), threads_(io_threads) {
  s_.brk.set_listener(this);
  s_.presence.set_listener([this](const channel_event_ptr& e) { s_.brk.publish_event(e); });
}

hub::~hub() {
  s_.presence.set_listener(nullptr);
  s_.brk.set_listener(nullptr);
}

void hub::set_sinks(std::vector<fanout_sink*> sinks) { sinks_ = std::move(sinks); }

void hub::publish(std::string_view channel, std::string data, std::string_view key,
                  std::function<void(publish_result)> done) {
  // The append's completion runs in offset order (under the memory store's channel lock): it only
  // feeds the broker. The caller's `done` runs once append() returned
  // (an inline completion) or from the completion itself (a later one), never under a store lock.
  struct handoff {
    std::atomic<int> state{0};   // 0 pending, 1 append() returned, 2 completed
    publish_result result;
    std::function<void(publish_result)> done;
  };
  auto h = std::make_shared<handoff>();
  h->done = std::move(done);
  auto now = clock_.now_ms();
  s_.history.append(channel, std::move(data), key, clock_.now_ns(), now, [this, h](append_result r) {
    h->result.error = r.error;
    h->result.reason = std::move(r.reason);
    h->result.pos = std::move(r.pos);
    h->result.duplicate = r.duplicate;
    if (r.pub) s_.brk.publish(r.pub);
    if (h->state.exchange(2) == 1) h->done(std::move(h->result));
  });
  if (h->state.exchange(1) == 2) h->done(std::move(h->result));
}

void hub::subscribe(std::string_view channel, unsigned io_thread, const std::optional<protocol::position>& since,
                    std::function<void(resume_result)> done) {
  std::function<void()> read = [this, ch = std::string(channel), since, done = std::move(done)] {
    s_.history.resume(ch, since, clock_.now_ms(), done);
  };
  bool ask_broker = false, read_now = false;
  std::uint64_t generation = 0;
  {
    std::lock_guard lk(interest_mu_);
    auto& i = interest_[std::string(channel)];
    if (i.per_thread.empty()) {
      i.per_thread.assign(threads_, 0);
      i.generation = ++generation_;
      if (occupancy_listener_) occupancy_listener_(channel, true);
    }
    if (io_thread < threads_) ++i.per_thread[io_thread];
    ++i.total;
    if (i.live) {
      read_now = true;
    } else {
      i.waiting.push_back(std::move(read));
      ask_broker = i.waiting.size() == 1 && !i.asked;
      i.asked = true;
    }
    generation = i.generation;
  }
  if (read_now) return read();
  if (!ask_broker) return;   // another subscribe asked the broker; its confirmation runs this read
  s_.brk.subscribe(channel, [this, ch = std::string(channel), generation] {
    std::vector<std::function<void()>> ready;
    {
      std::lock_guard lk(interest_mu_);
      auto it = interest_.find(ch);
      if (it == interest_.end() || it->second.generation != generation) return;   // everyone left meanwhile
      it->second.live = true;
      ready.swap(it->second.waiting);
    }
    for (auto& r : ready) r();
  });
}

void hub::unsubscribe(std::string_view channel, unsigned io_thread) {
  bool last = false;
  {
    std::lock_guard lk(interest_mu_);
    auto it = interest_.find(std::string(channel));
    if (it == interest_.end()) return;
    auto& i = it->second;
    if (io_thread < threads_ && i.per_thread[io_thread]) --i.per_thread[io_thread];
    if (i.total) --i.total;
    if (i.total == 0) {
      last = i.asked;
      interest_.erase(it);
      if (occupancy_listener_) occupancy_listener_(channel, false);
    }
  }
  if (last) s_.brk.unsubscribe(channel);
}

void hub::history(std::string_view channel, const std::optional<protocol::position>& since, std::size_t limit,
                  std::function<void(history_result)> done) {
  s_.history.read(channel, since, limit, clock_.now_ms(), std::move(done));
}

void hub::presence_join(std::string_view channel, const member& m, std::uint64_t lease_until_ms,
                        std::function<void(code)> done) {
  s_.presence.join(channel, m, lease_until_ms, std::move(done));
}

void hub::presence_leave(std::string_view channel, std::string_view client) { s_.presence.leave(channel, client); }

void hub::presence(std::string_view channel, std::function<void(std::vector<member>)> done) {
  s_.presence.members(channel, std::move(done));
}

void hub::disconnect(const disconnect_order& d) { s_.brk.publish_disconnect(d); }

void hub::on_publication(const publication_ptr& p) {
  std::lock_guard lk(interest_mu_);
  auto it = interest_.find(p->channel);
  if (it == interest_.end()) return;
  auto& per = it->second.per_thread;
  for (std::size_t t = 0; t < per.size() && t < sinks_.size(); ++t)
    if (per[t]) sinks_[t]->post(p);
}

void hub::on_channel_event(const channel_event_ptr& e) {
  {
    std::lock_guard lk(interest_mu_);
    if (auto it = interest_.find(e->channel); it != interest_.end()) {
      auto& per = it->second.per_thread;
      for (std::size_t t = 0; t < per.size() && t < sinks_.size(); ++t)
        if (per[t]) sinks_[t]->post(e);
    }
  }
  if (event_listener_) event_listener_(e);
}

void hub::on_disconnect(const disconnect_order& d) {
  if (disconnect_listener_) disconnect_listener_(d);
}

bool hub::in_use(std::string_view channel) {
  {
    std::lock_guard lk(interest_mu_);
    if (interest_.contains(std::string(channel))) return true;
  }
  return s_.presence.occupied(channel);
}

std::vector<channel_info> hub::channels() {
  auto out = s_.history.channels();
  std::lock_guard lk(interest_mu_);
  for (auto& c : out)
    if (auto it = interest_.find(c.channel); it != interest_.end()) c.subscribers = it->second.total;
  return out;
}

std::vector<channel_info> hub::subscriber_counts() {
  std::lock_guard lk(interest_mu_);
  std::vector<channel_info> out;
  out.reserve(interest_.size());
  for (auto& [ch, i] : interest_)
    if (i.total) out.push_back(channel_info{ch, {}, i.total});
  return out;
}

std::size_t hub::subscribers(std::string_view channel) {
  std::lock_guard lk(interest_mu_);
  auto it = interest_.find(std::string(channel));
  return it == interest_.end() ? 0 : it->second.total;
}

history_stats hub::stats() { return s_.history.stats(); }

void hub::sweep() {
  auto now = clock_.now_ms();
  s_.presence.sweep(now);
  s_.history.sweep(now, [this](std::string_view ch) { return in_use(ch); });
}

}  // namespace pushwire::server

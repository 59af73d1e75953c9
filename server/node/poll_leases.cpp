#include "server/node/poll_leases.hpp"

#include <algorithm>

#include "server/hub/hub.hpp"

namespace pushwire::server {

std::vector<std::string> poll_leases::erase(std::unordered_map<std::string, lease>::iterator it) {
  for (auto& ch : it->second.watched) {
    auto w = watchers_.find(ch);
    if (w == watchers_.end()) continue;
    std::erase(w->second, it->first);
    if (w->second.empty()) watchers_.erase(w);
  }
  auto presence = std::move(it->second.presence);
  leases_.erase(it);
  counted();
  return presence;
}

void poll_leases::leave_all(const std::string& id, const std::vector<std::string>& channels) {
  for (auto& ch : channels) hub_.presence_leave(ch, id);
}

poll_leases::status poll_leases::acquire(std::string& id, const std::string& user, bool open, std::uint64_t now,
                                         disconnect_order& advice) {
  std::vector<std::string> leave;
  std::string old_id;
  status st = status::created;
  {
    std::lock_guard lk(mu_);
    auto it = id.empty() ? leases_.end() : leases_.find(id);
    if (it != leases_.end() && (it->second.user != user || it->second.expires_ms <= now)) {
      // Another user's id is neither taken over nor disturbed; an expired one is gone.
      if (it->second.expires_ms <= now) {
        old_id = it->first;
        leave = erase(it);
      }
      it = leases_.end();
    }
    if (it != leases_.end() && it->second.marked) {
      advice = *it->second.marked;
      old_id = it->first;
      leave = erase(it);
      st = status::disconnect;
    } else if (it != leases_.end() && !open) {
      it->second.expires_ms = now + lim_.lease_ms;
      st = status::renewed;
    } else {
      if (it != leases_.end()) {   // open=1 with a live lease: the client starts over
        old_id = it->first;
        leave = erase(it);
      }
      if (leases_.size() >= lim_.max_leases) {
        st = status::full;
      } else {
        id = new_id_();
        auto& l = leases_[id];
        l.user = user;
        l.expires_ms = now + lim_.lease_ms;
        counted();
      }
    }
  }
  leave_all(old_id, leave);
  return st;
}

void poll_leases::set_presence(const std::string& id, std::vector<std::string> channels) {
  std::vector<std::string> leave;
  {
    std::lock_guard lk(mu_);
    auto it = leases_.find(id);
    if (it == leases_.end()) {
      leave = std::move(channels);   // removed meanwhile (a disconnect): leave no ghost member
    } else {
      for (auto& ch : it->second.presence)
        if (std::find(channels.begin(), channels.end(), ch) == channels.end()) leave.push_back(ch);
      it->second.presence = std::move(channels);
    }
  }
  leave_all(id, leave);
}

void poll_leases::remove(const std::string& id) {
  std::vector<std::string> leave;
  {
    std::lock_guard lk(mu_);
    auto it = leases_.find(id);
    if (it == leases_.end()) return;
    leave = erase(it);
  }
  leave_all(id, leave);
}

std::size_t poll_leases::mark(const disconnect_order& d) {
  std::lock_guard lk(mu_);
  std::size_t n = 0;
  for (auto& [id, l] : leases_) {
    if (d.matches(id, l.user)) {
      l.marked = d;
      ++n;
    }
  }
  return n;
}

void poll_leases::sweep(std::uint64_t now) {
  std::vector<std::pair<std::string, std::vector<std::string>>> gone;
  {
    std::lock_guard lk(mu_);
    for (auto it = leases_.begin(); it != leases_.end();) {
      auto next = std::next(it);
      if (it->second.expires_ms <= now) {
        std::string id = it->first;
        gone.emplace_back(std::move(id), erase(it));
      }
      it = next;
    }
  }
  for (auto& [id, chans] : gone) leave_all(id, chans);
}

void poll_leases::watch(const std::string& id, std::vector<std::string> channels) {
  std::lock_guard lk(mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return;
  auto& l = it->second;
  for (auto& ch : l.watched) {
    auto w = watchers_.find(ch);
    if (w == watchers_.end()) continue;
    std::erase(w->second, id);
    if (w->second.empty()) watchers_.erase(w);
  }
  std::sort(channels.begin(), channels.end());
  channels.erase(std::unique(channels.begin(), channels.end()), channels.end());
  for (auto& ch : channels) watchers_[ch].push_back(id);
  std::erase_if(l.queued, [&](const channel_event_ptr& e) {
    return !std::binary_search(channels.begin(), channels.end(), e->channel);
  });
  l.watched = std::move(channels);
}

std::vector<channel_event_ptr> poll_leases::park(const std::string& id, std::uint64_t serial, std::function<void()> wake) {
  std::lock_guard lk(mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return {};
  auto& l = it->second;
  if (!l.queued.empty()) {
    std::vector<channel_event_ptr> out(l.queued.begin(), l.queued.end());
    l.queued.clear();
    return out;
  }
  l.parked = serial;
  l.wake = std::move(wake);
  return {};
}

std::vector<channel_event_ptr> poll_leases::unpark(const std::string& id, std::uint64_t serial) {
  std::function<void()> old;   // destroyed outside the lock (declared before it)
  std::lock_guard lk(mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return {};
  auto& l = it->second;
  if (l.parked == serial) {
    l.parked = 0;
    old = std::move(l.wake);
    l.wake = nullptr;
  }
  std::vector<channel_event_ptr> out(l.queued.begin(), l.queued.end());
  l.queued.clear();
  return out;
}

void poll_leases::on_event(const channel_event_ptr& e) {
  // A gap is for live streams; a poll's cursor meets it in the history (recovered:false) anyway.
  if (e->what == channel_event::kind::gap) return;
  std::lock_guard lk(mu_);
  auto w = watchers_.find(e->channel);
  if (w == watchers_.end()) return;
  for (auto& id : w->second) {
    if (e->who.client == id) continue;   // its own join/leave is no news to a lease
    auto it = leases_.find(id);
    if (it == leases_.end()) continue;
    auto& l = it->second;
    if (l.queued.size() >= lim_.max_queued_events) l.queued.pop_front();
    l.queued.push_back(e);
    if (l.wake) {
      l.wake();   // only posts to the poll's thread
      l.wake = nullptr;
      l.parked = 0;
    }
  }
}

std::size_t poll_leases::size() {
  std::lock_guard lk(mu_);
  return leases_.size();
}

}  // namespace pushwire::server

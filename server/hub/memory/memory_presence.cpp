#include "server/hub/memory/memory_presence.hpp"

namespace pushwire::server {

using protocol::code;

void memory_presence::emit(channel_event::kind k, std::string_view channel, const member& m) {
  if (listener_) listener_(make_channel_event(k, channel, m));
}

void memory_presence::join(std::string_view channel, const member& m, std::uint64_t lease_until_ms,
                           std::function<void(code)> done) {
  code result = code::ok;
  {
    std::lock_guard lk(mu_);
    auto& r = channels_[std::string(channel)];
    if (auto it = r.find(m.client); it != r.end()) {
      if (it->second.lease_until_ms != 0) it->second.lease_until_ms = lease_until_ms;   // a renewal
    } else if (r.size() >= max_members_) {
      result = code::presence_full;
    } else {
      r.emplace(m.client, entry{m, lease_until_ms});
      emit(channel_event::kind::join, channel, m);
    }
    if (r.empty()) channels_.erase(std::string(channel));
  }
  done(result);
}

void memory_presence::leave(std::string_view channel, std::string_view client) {
  std::lock_guard lk(mu_);
  auto ch = channels_.find(std::string(channel));
  if (ch == channels_.end()) return;
  auto it = ch->second.find(client);
  if (it == ch->second.end()) return;
  member m = std::move(it->second.who);
  ch->second.erase(it);
  if (ch->second.empty()) channels_.erase(ch);
  emit(channel_event::kind::leave, channel, m);
}

void memory_presence::members(std::string_view channel, std::function<void(std::vector<member>)> done) {
  std::vector<member> out;
  {
    std::lock_guard lk(mu_);
    if (auto ch = channels_.find(std::string(channel)); ch != channels_.end())
      for (auto& [client, e] : ch->second) out.push_back(e.who);
  }
  done(std::move(out));
}

bool memory_presence::occupied(std::string_view channel) {
  std::lock_guard lk(mu_);
  return channels_.contains(std::string(channel));
}

void memory_presence::sweep(std::uint64_t now_ms) {
  std::lock_guard lk(mu_);
  for (auto ch = channels_.begin(); ch != channels_.end();) {
    for (auto it = ch->second.begin(); it != ch->second.end();) {
      if (it->second.lease_until_ms != 0 && it->second.lease_until_ms <= now_ms) {
        member m = std::move(it->second.who);
        it = ch->second.erase(it);
        emit(channel_event::kind::leave, ch->first, m);
      } else {
        ++it;
      }
    }
    ch = ch->second.empty() ? channels_.erase(ch) : std::next(ch);
  }
}

}  // namespace pushwire::server

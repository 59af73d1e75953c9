#include "server/pusher/pusher_counts.hpp"

#include <algorithm>

namespace pushwire::server {

void subscriber_counts(node& n, std::function<void(channel_counts)> done) {
  auto add_local = [&n](channel_counts& c) {
    for (auto& l : n.the_hub().subscriber_counts()) c[l.channel] += l.subscribers;
  };
  auto* cluster = n.cluster();
  if (!cluster) {
    channel_counts c;
    add_local(c);
    return done(std::move(c));
  }
  cluster->remote_subscribers([add_local, done = std::move(done)](channel_counts c) {
    add_local(c);   // read now, not when asked: the freshest this node has
    done(std::move(c));
  });
}

void subscriber_counts(node& n, std::vector<std::string> hub_channels, std::function<void(std::vector<std::size_t>)> done) {
  auto local = [&n](const std::vector<std::string>& chs, const channel_counts* remote) {
    std::vector<std::size_t> out;
    out.reserve(chs.size());
    for (auto& ch : chs) {
      std::size_t c = n.the_hub().subscribers(ch);
      if (remote)
        if (auto it = remote->find(ch); it != remote->end()) c += it->second;
      out.push_back(c);
    }
    return out;
  };
  auto* cluster = n.cluster();
  if (!cluster) return done(local(hub_channels, nullptr));
  cluster->remote_subscribers([local, chs = std::move(hub_channels), done = std::move(done)](channel_counts c) {
    done(local(chs, &c));
  });
}

void presence_users(node& n, const std::string& hub_channel, std::function<void(std::vector<std::string>)> done) {
  n.the_hub().presence(hub_channel, [done = std::move(done)](std::vector<member> members) {
    std::vector<std::string> users;
    users.reserve(members.size());
    for (auto& m : members)
      if (!m.user.empty()) users.push_back(std::move(m.user));
    std::sort(users.begin(), users.end());
    users.erase(std::unique(users.begin(), users.end()), users.end());   // one per user, however many connections
    done(std::move(users));
  });
}

}  // namespace pushwire::server

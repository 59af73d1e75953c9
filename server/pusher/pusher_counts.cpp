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

void subscriber_count(node& n, const std::string& hub_channel, std::function<void(std::size_t)> done) {
  auto* cluster = n.cluster();
  if (!cluster) return done(n.the_hub().subscribers(hub_channel));
  cluster->remote_subscribers([&n, hub_channel, done = std::move(done)](channel_counts c) {
    auto it = c.find(hub_channel);
    done((it == c.end() ? 0 : it->second) + n.the_hub().subscribers(hub_channel));
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

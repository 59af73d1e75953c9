#include "server/pusher/pusher_counts.hpp"

#include <algorithm>
#include <memory>
#include <mutex>

#include "protocol/json_scan.hpp"
#include "server/pusher/pusher_names.hpp"

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

bool parse_info(std::string_view s, info_attrs& out) {
  while (!s.empty()) {
    auto comma = s.find(',');
    auto a = s.substr(0, comma);
    if (a == "subscription_count") out.subscription_count = true;
    else if (a == "user_count") out.user_count = true;
    else if (!a.empty()) return false;
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return true;
}


void info_fields(node& n, const pusher_app& app, std::vector<info_ask> asks,
                 std::function<void(std::vector<std::string>)> done) {
  struct acc {
    std::mutex mu;
    std::vector<info_ask> asks;
    std::vector<std::size_t> subs, users;
    std::size_t pending = 1;   // the subscription counts, then one per presence look-up
    std::function<void(std::vector<std::string>)> done;
    void one() {
      std::unique_lock lk(mu);
      if (--pending) return;
      lk.unlock();
      std::vector<std::string> out(asks.size());
      for (std::size_t i = 0; i < asks.size(); ++i) {
        auto& f = out[i];
        if (asks[i].info.subscription_count) {
          f += "\"subscription_count\":";
          protocol::append_uint(f, subs[i]);
        }
        if (asks[i].info.user_count && is_presence_channel(asks[i].channel)) {
          if (!f.empty()) f += ',';
          f += "\"user_count\":";
          protocol::append_uint(f, users[i]);
        }
      }
      done(std::move(out));
    }
  };
  auto a = std::make_shared<acc>();
  a->users.assign(asks.size(), 0);
  a->done = std::move(done);
  std::vector<std::string> hub_channels;
  hub_channels.reserve(asks.size());
  for (auto& q : asks) hub_channels.push_back(app.hub_channel(q.channel));
  for (auto& q : asks) a->pending += q.info.user_count && is_presence_channel(q.channel);
  a->asks = std::move(asks);
  for (std::size_t i = 0; i < a->asks.size(); ++i) {
    if (!a->asks[i].info.user_count || !is_presence_channel(a->asks[i].channel)) continue;
    presence_users(n, hub_channels[i], [a, i](std::vector<std::string> u) {
      {
        std::lock_guard lk(a->mu);
        a->users[i] = u.size();
      }
      a->one();
    });
  }
  subscriber_counts(n, std::move(hub_channels), [a](std::vector<std::size_t> counts) {
    {
      std::lock_guard lk(a->mu);
      a->subs = std::move(counts);
    }
    a->one();
  });
}

void channels_info(node& n, const pusher_app& app, std::vector<info_ask> asks, std::function<void(std::string)> done) {
  std::vector<std::string> names;
  names.reserve(asks.size());
  for (auto& q : asks) names.push_back(q.channel);
  info_fields(n, app, std::move(asks), [names = std::move(names), done = std::move(done)](std::vector<std::string> f) {
    std::string out = "{\"channels\":{";
    for (std::size_t j = 0; j < names.size(); ++j) {
      if (j) out += ',';
      protocol::append_json_string(out, names[j]);
      out += ":{";
      out += f[j];
      out += '}';
    }
    out += "}}";
    done(std::move(out));
  });
}

std::vector<info_ask> asks_of(const std::vector<std::string>& channels, info_attrs info) {
  std::vector<info_ask> out;
  out.reserve(channels.size());
  for (auto& c : channels) out.push_back(info_ask{c, info});
  return out;
}


}  // namespace pushwire::server

// What the Pusher HTTP API counts and answers in `info`: subscriptions per channel and presence
// users, cluster-wide with
// the Redis engine — this node's live counts plus every other live node's last report (at most a
// node heartbeat old, --node-heartbeat-ms); presence comes from the presence store, which is
// cluster-wide itself. Completions may run on another thread (the engine's).
#pragma once
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/node/node.hpp"
#include "server/pusher/pusher_apps.hpp"

namespace pushwire::server {

using channel_counts = std::unordered_map<std::string, std::size_t>;   // hub channel -> subscriptions

// Every channel with at least one subscription.
void subscriber_counts(node& n, std::function<void(channel_counts)> done);
// The counts of the given channels, in their order: one cluster round trip however many.
void subscriber_counts(node& n, std::vector<std::string> hub_channels, std::function<void(std::vector<std::size_t>)> done);
// The distinct user ids of a presence channel's members (anonymous members left out), sorted.
void presence_users(node& n, const std::string& hub_channel, std::function<void(std::vector<std::string>)> done);

// The `info` attributes asked for: a comma-separated list of subscription_count and user_count
// (false: something else is in it).
struct info_attrs {
  bool subscription_count = false, user_count = false;
};
bool parse_info(std::string_view s, info_attrs& out);

// One channel (a Pusher name of `app`) whose info is asked for.
struct info_ask {
  std::string channel;
  info_attrs info;
};
std::vector<info_ask> asks_of(const std::vector<std::string>& channels, info_attrs info);

// The info of each ask, in order, as JSON members without braces:
// "subscription_count":n,"user_count":m (user_count on presence channels only). The subscription
// counts come from one look-up however many channels (one cluster round trip), then the presence
// users of each presence channel asked for.
void info_fields(node& n, const pusher_app& app, std::vector<info_ask> asks,
                 std::function<void(std::vector<std::string>)> done);
// `{"channels":{"c":{...},...}}` for the asks (an event's channels, or a listing).
void channels_info(node& n, const pusher_app& app, std::vector<info_ask> asks, std::function<void(std::string)> done);

}  // namespace pushwire::server

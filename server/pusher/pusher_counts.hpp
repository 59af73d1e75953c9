// What the Pusher HTTP API counts: subscriptions per channel and presence users, cluster-wide with
// the Redis engine — this node's live counts plus every other live node's last report (at most a
// node heartbeat old, --node-heartbeat-ms); presence comes from the presence store, which is
// cluster-wide itself. Completions may run on another thread (the engine's).
#pragma once
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/node/node.hpp"

namespace pushwire::server {

using channel_counts = std::unordered_map<std::string, std::size_t>;   // hub channel -> subscriptions

// Every channel with at least one subscription.
void subscriber_counts(node& n, std::function<void(channel_counts)> done);
void subscriber_count(node& n, const std::string& hub_channel, std::function<void(std::size_t)> done);
// The distinct user ids of a presence channel's members (anonymous members left out), sorted.
void presence_users(node& n, const std::string& hub_channel, std::function<void(std::vector<std::string>)> done);

}  // namespace pushwire::server

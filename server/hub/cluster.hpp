// The cluster seam: what a node can tell about the nodes it runs with. The embedded engines (memory,
// disk) are a cluster of one; the Redis engine keeps a node registry with heartbeats in Redis and
// lists the channels of every node.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/hub/history.hpp"

namespace pushwire::server {

struct node_info {
  std::string id;
  std::uint64_t started_ms = 0;   // wall clock, ms since the Unix epoch
};

class cluster_view {
 public:
  virtual ~cluster_view() = default;
  // The live nodes (this one included), by id.
  virtual void nodes(std::function<void(std::vector<node_info>)> done) = 0;
  // Every channel with a position, cluster-wide, at most `limit`; `complete` false when cut there.
  // `subscribers`: the sum over the live nodes, as they last reported them.
  virtual void channels(std::size_t limit, std::function<void(std::vector<channel_info>, bool complete)> done) = 0;
  // The subscriber counts every *other* live node last reported, summed per channel (channels never
  // published to included), for the Pusher API's occupied channels: the caller adds its own live
  // counts, so this node's part is never a heartbeat old.
  virtual void remote_subscribers(std::function<void(std::unordered_map<std::string, std::size_t>)> done) = 0;
  // This node's subscriber counts (every node heartbeat), for the cluster-wide sums.
  virtual void report_subscribers(std::vector<channel_info> local) = 0;
};

}  // namespace pushwire::server

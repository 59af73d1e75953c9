// The cluster seam: what a node can tell about the nodes it runs with. The embedded engines (memory,
// disk) are a cluster of one; the Redis engine keeps a node registry with heartbeats in Redis and
// lists the channels of every node.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
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
  virtual void channels(std::size_t limit, std::function<void(std::vector<channel_info>, bool complete)> done) = 0;
};

}  // namespace pushwire::server

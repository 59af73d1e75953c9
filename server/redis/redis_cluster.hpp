// The node registry and cluster-wide listings on Redis. Each node writes pushwire:node:<id> (its id
// and start time) every heartbeat with an expiry of three heartbeats, so a dead node drops out of
// /api/info within three heartbeats. Listings SCAN the keys (no index key to keep consistent).
#pragma once
#include <boost/asio/steady_timer.hpp>
#include <memory>

#include "server/hub/cluster.hpp"
#include "server/redis/redis_engine.hpp"

namespace pushwire::server {

class redis_cluster final : public cluster_view {
 public:
  redis_cluster(std::shared_ptr<redis_engine> engine, node_info self, std::uint64_t heartbeat_ms);
  ~redis_cluster() override;

  void start();   // the first heartbeat goes out at once, then every heartbeat_ms
  void nodes(std::function<void(std::vector<node_info>)> done) override;
  void channels(std::size_t limit, std::function<void(std::vector<channel_info>, bool)> done) override;

 private:
  void beat();

  std::shared_ptr<redis_engine> engine_;
  node_info self_;
  std::uint64_t heartbeat_ms_;
  std::shared_ptr<boost::asio::steady_timer> timer_;
};

}  // namespace pushwire::server

// The node registry and cluster-wide listings on Redis. Each node writes pushwire:node:<id> (its id
// and start time) every heartbeat with an expiry of three heartbeats, so a dead node drops out of
// /api/info within three heartbeats. Listings SCAN the keys (no index key to keep consistent).
#pragma once
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <unordered_map>

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
  // Kept in one hash per node, pushwire:subs:<id> (channel -> count): only changed counts are
  // written; the key expires with the node's registry entry, so a dead node's counts vanish too.
  void report_subscribers(std::vector<channel_info> local) override;
  void remote_subscribers(std::function<void(std::unordered_map<std::string, std::size_t>)> done) override;

 private:
  void beat();

  std::shared_ptr<redis_engine> engine_;
  node_info self_;
  std::uint64_t heartbeat_ms_;
  std::shared_ptr<boost::asio::steady_timer> timer_;
  std::unordered_map<std::string, std::size_t> reported_;   // engine thread
};

}  // namespace pushwire::server

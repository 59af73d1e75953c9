#include "server/redis/redis_stores.hpp"

#include <chrono>
#include <random>

#include "server/ops/config.hpp"
#include "server/redis/redis_broker.hpp"
#include "server/redis/redis_cluster.hpp"
#include "server/redis/redis_history.hpp"
#include "server/redis/redis_presence.hpp"

namespace pushwire::server {

store_set redis_stores(const config& c, const clock& clk) {
  redis_engine_options eo;
  for (auto& url : c.redis) {
    redis_endpoint ep;
    std::string why;
    if (parse_redis_url(url, ep, why)) eo.shards.push_back(ep);   // (the config checked them)
  }
  eo.pool_size = c.redis_pool_size;
  eo.conn.connect_timeout_ms = c.redis_timeout_ms;
  eo.conn.command_timeout_ms = c.redis_timeout_ms;
  eo.conn.max_in_flight = c.redis_max_in_flight;
  eo.conn.backoff_min_ms = std::max<std::uint64_t>(1, c.redis_reconnect_min_ms);
  eo.conn.backoff_max_ms = std::max<std::uint64_t>(eo.conn.backoff_min_ms, 2000);
  auto engine = std::make_shared<redis_engine>(std::move(eo));

  auto wall_ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                std::chrono::system_clock::now().time_since_epoch()).count());
  std::random_device rd;
  std::uint64_t seed = (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^ clk.now_ns() ^ wall_ms;

  redis_history_config hc;
  hc.policy = c.history_cfg();
  hc.idempotency_ttl_ms = c.idempotency_ttl_ms;
  hc.node_id = c.node_id;
  hc.epoch_seed = seed;
  auto history = std::make_unique<redis_history>(engine, std::move(hc));
  auto brk = std::make_unique<redis_broker>(engine, *history, c.node_id);
  auto presence = std::make_unique<redis_presence>(engine, *brk, clk,
                                                   redis_presence_config{c.max_presence_members, c.effective_lease_ms()});
  auto cluster = std::make_unique<redis_cluster>(engine, node_info{c.node_id, wall_ms}, c.node_heartbeat_ms);
  history->set_listened([b = brk.get()] { return b->listened(); });
  brk->attach();
  engine->start();
  cluster->start();
  store_set s;
  s.history = std::move(history);
  s.brk = std::move(brk);
  s.presence = std::move(presence);
  s.cluster = std::move(cluster);
  s.engine = "redis";
  return s;
}

}  // namespace pushwire::server

// The three seams' implementations a node runs on, as one set. The memory set is the embedded
// default; --engine redis (server/redis/redis_stores.hpp) or a test hands the node another set.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "server/hub/broker.hpp"
#include "server/hub/clock.hpp"
#include "server/hub/cluster.hpp"
#include "server/hub/history.hpp"
#include "server/hub/presence.hpp"

namespace pushwire::server {

struct store_set {
  std::unique_ptr<history_store> history;
  std::unique_ptr<broker> brk;
  std::unique_ptr<presence_store> presence;
  std::unique_ptr<cluster_view> cluster;   // null: a cluster of one (the embedded engines)
  std::string engine = "memory";           // as /api/info names it
};

struct config;
// Makes a node's stores from its configuration.
using store_maker = std::function<store_set(const config&, const clock&)>;

}  // namespace pushwire::server

// The store set of --engine redis: history, broker, presence (and the idempotency keys, checked in
// the publish script) on Redis, plus the node registry. docs/scaling.md.
#pragma once
#include "server/hub/stores.hpp"

namespace pushwire::server {

store_set redis_stores(const config& c, const clock& clk);

}  // namespace pushwire::server

// The HTTP connection: reads requests and routes them (http_session.cpp).
#pragma once
#include <memory>

#include "server/transport/worker.hpp"

namespace pushwire::server {

// A freshly accepted connection; `life` holds its connection-limit slot.
void start_http(node& n, worker& w, tcp::socket sock, std::shared_ptr<void> life);

}  // namespace pushwire::server

// Origin checks (WebSocket, SSE) and CORS headers (DECISIONS §13): no cross-origin access unless
// listed; --demo allows localhost origins; a request without Origin (not a browser) is allowed.
#pragma once
#include <string_view>

#include "server/transport/worker.hpp"

namespace pushwire::server {

bool origin_allowed(const config& cfg, std::string_view origin);
// Adds CORS headers for an allowed Origin.
void add_cors(const config& cfg, const request& req, http::fields& out);

}  // namespace pushwire::server

// The body of POST /api/disconnect, read strictly (docs/protocol.md "HTTP API"): exactly one
// target — {"client":"c7"}, {"user":"alice"} or {"all":true} — plus optional "reconnect" (bool),
// "after_ms" and "jitter_ms" (integers 0 … max_reconnect_delay_ms). Anything else is refused: a
// malformed target must never widen into "everyone".
#pragma once
#include <boost/json/object.hpp>
#include <string>

#include "server/hub/broker.hpp"

namespace pushwire::server {

// Fills `out` and returns true, or returns false with the reason (the API answers 400, 4000).
bool parse_disconnect_body(const boost::json::object& body, disconnect_order& out, std::string& reason);

}  // namespace pushwire::server

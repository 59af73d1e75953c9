// The Pusher HTTP API under /apps/{app_id}/ (docs/pusher.md "HTTP API"), so the Pusher server SDKs
// work unchanged: events, batch_events, channels, channels/{name}, channels/{name}/users and
// users/{id}/terminate_connections, each signed as Pusher signs them (pusher_auth.hpp). No
// networking header: the HTTP session reads the request and writes the reply.
#pragma once
#include "server/http/http_types.hpp"
#include "server/node/node.hpp"
#include "server/pusher/pusher_apps.hpp"

namespace pushwire::server {

void handle_pusher_api(node& n, const http_in& in, http_respond respond);
// The endpoints once the request is known to be `app`'s and signed; `rest` is the path after
// /apps/{app_id} ("/events", "/channels/x", ...). (tests/fuzz/http_fuzz.cpp calls it directly: a
// fuzzer cannot sign.)
void serve_pusher_api(node& n, const pusher_app& app, std::string_view rest, const http_in& in, http_respond respond);

}  // namespace pushwire::server

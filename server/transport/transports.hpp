// The transports (one file each). Each takes the connection over from the HTTP session.
// `life` holds the connection-limit slot (and the per-address slot): keep it as long as the socket.
#pragma once
#include <memory>

#include "server/transport/maybe_tls.hpp"

namespace pushwire::server {

// `sock` is a plain socket or a TLS stream (maybe_tls.hpp).
void run_ws_session(node& n, worker& w, socket_link sock, request req, std::shared_ptr<void> life);
void run_sse_session(node& n, worker& w, socket_link sock, request req, std::shared_ptr<void> life);
// `ip_slot` (--max-connections-per-ip) is held until the poll is answered, `life` with the socket.
void run_poll(node& n, worker& w, http_stream stream, beast::flat_buffer buffer, request req,
              std::shared_ptr<void> life, std::shared_ptr<void> ip_slot);

// The Pusher endpoint (server/pusher/pusher_ws_session.cpp): `app` null = an unknown key (refused
// with 4001 after the upgrade, as Pusher does); `version` is the ?protocol= parameter.
void run_pusher_session(node& n, worker& w, socket_link sock, request req, std::shared_ptr<void> life,
                        const pusher_app* app, std::string_view version);

}  // namespace pushwire::server

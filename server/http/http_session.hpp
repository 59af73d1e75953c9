// The HTTP connection: reads requests and routes them (http_session.cpp).
#pragma once
#include <memory>

#include "server/transport/worker.hpp"

namespace boost::asio::ssl {
class context;
}

namespace pushwire::server {

// A freshly accepted connection; `life` holds its connection-limit slot. With `tls` (the listener's
// current context) the connection is TLS: the handshake comes first. `admin`: accepted on
// --admin-port, which serves /metrics, /api/*, /healthz and /readyz only.
void start_http(node& n, worker& w, tcp_socket sock, std::shared_ptr<void> life,
                std::shared_ptr<net::ssl::context> tls = nullptr, bool admin = false);

}  // namespace pushwire::server

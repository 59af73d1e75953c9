// The one place the server decides a request's client address, for per-IP limits
// (--max-connections-per-ip) and for log lines (connection opened/closed, auth refused, connection
// refused): the TCP peer, or, from a --trusted-proxy peer, what X-Forwarded-For says by the rule in
// server/ops/trusted_proxies.hpp. Every HTTP, WebSocket, SSE and long-poll path calls this.
#pragma once
#include <string>

#include "server/ops/config.hpp"
#include "server/ops/trusted_proxies.hpp"
#include "server/transport/worker.hpp"

namespace pushwire::server {

template <class Socket>
std::string client_address(const config& cfg, const Socket& sock, const request& req) {
  std::string peer;
  beast::error_code ec;
  auto ep = sock.remote_endpoint(ec);
  if (!ec) peer = ep.address().to_string();
  if (cfg.trusted_proxies.empty()) return peer;   // the common case: no header lookup at all
  // Several X-Forwarded-For fields are one list, in order (RFC 9110 §5.3).
  std::string forwarded;
  for (auto [it, end] = req.equal_range("X-Forwarded-For"); it != end; ++it) {
    if (!forwarded.empty()) forwarded += ',';
    forwarded += it->value();
  }
  return client_address(cfg.trusted_proxies, peer, forwarded);
}

}  // namespace pushwire::server

// The server's side of the WebSocket opening handshake (RFC 6455 §4.2): whether the upgrade request
// is one we accept, and the exact bytes of the answer. Pure, no networking: http_session.cpp checks
// the key first (any other is answered 400 there), ws_conn.hpp writes what websocket_handshake()
// returns.
#pragma once
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <string>
#include <string_view>

namespace pushwire::server {

// RFC 6455 §4.2.1: a handshake's Sec-WebSocket-Key is a base64 value that decodes to 16 bytes; any
// other is answered 400. True for 22 base64 characters followed by "==" (the only encoding of 16
// bytes).
bool valid_websocket_key(std::string_view key);

// Sec-WebSocket-Accept for `key`: base64(SHA-1(key + the RFC's GUID)).
std::string websocket_accept(std::string_view key);

struct websocket_answer {
  bool accepted = false;   // a 101: the connection is a WebSocket once `response` is written
  std::string response;    // the whole HTTP response
};

// The answer to an upgrade request, field for field what Boost.Beast's websocket accept answered
// before the server stopped using its stream (tests/server/hostile_test.cpp pins the statuses): a
// 101 with `Server: <server>`; a 400 with Beast's message as the body for a request that is not
// HTTP/1.1, not GET, has no Host, or lacks the Connection/Upgrade tokens or the key; a 426 with
// `Sec-WebSocket-Version: 13` for any version but 13.
websocket_answer websocket_handshake(const boost::beast::http::request<boost::beast::http::string_body>& req,
                                     std::string_view server);

}  // namespace pushwire::server

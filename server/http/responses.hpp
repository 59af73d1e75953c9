// HTTP responses outside the HTTP session's own read loop: transports that refuse a request, and
// the hand-back of a keep-alive connection to the HTTP reader.
#pragma once
#include <string_view>

#include "server/http/http_types.hpp"
#include "server/transport/maybe_tls.hpp"

namespace pushwire::server {

http::response<http::string_body> make_response(node& n, const request& req, const http_reply& r);
// A small reply with CORS, then close (a transport refusing its request).
void write_error_and_close(node& n, http_stream stream, const request& req, protocol::code c,
                           std::string_view reason);
void write_error_and_close(node& n, socket_link stream, const request& req, protocol::code c,
                           std::string_view reason);
// Hands a keep-alive connection back to the HTTP reader (http_session.cpp).
void continue_http(node& n, worker& w, http_stream stream, beast::flat_buffer buffer, std::shared_ptr<void> life);

}  // namespace pushwire::server

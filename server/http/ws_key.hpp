// RFC 6455 §4.2.1: a WebSocket opening handshake's Sec-WebSocket-Key is a base64 value that decodes
// to 16 bytes; any other is answered 400. (Beast checks only its length.) Pure, no networking.
#pragma once
#include <string_view>

namespace pushwire::server {

// True for 22 base64 characters followed by "==" (the only encoding of 16 bytes).
bool valid_websocket_key(std::string_view key);

}  // namespace pushwire::server

// The signatures of Pusher's protocol (docs/pusher.md): HMAC-SHA256 in lowercase hex with the app
// secret, for channel authorization (`socket_id:channel[:channel_data]`), user sign-in
// (`socket_id::user::user_data`), API requests and webhooks; MD5 in hex for API bodies. OpenSSL.
#pragma once
#include <string>
#include <string_view>

namespace pushwire::server {

std::string hmac_sha256_hex(std::string_view secret, std::string_view message);
std::string md5_hex(std::string_view data);
// Compares in time that depends only on the lengths (a signature check must not leak a prefix).
bool equal_constant_time(std::string_view a, std::string_view b);

}  // namespace pushwire::server

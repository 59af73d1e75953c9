// Connection tokens: JWT (RFC 7519) signed with HS256 only (DECISIONS.md §13).
//
// verify_jwt never throws and never trusts an unauthenticated byte further than it must: it checks
// the size, the three base64url segments and the header's `alg` first, then the HMAC (constant-time
// compare), and only then decodes the claims. Every failure is code::unauthorized with a short
// reason, except a token that is valid but past `exp` + leeway, which is code::token_expired.
#pragma once
#include "protocol/codes.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pushwire::server {

// Longest token accepted (DECISIONS.md §12): a token rides in a query string or a frame, and 4 KiB
// holds hundreds of channel grants while keeping URLs below common proxy limits.
inline constexpr std::size_t max_token_length = 4096;

struct token_claims {
  std::string user;                   // `sub`
  std::int64_t exp = 0;               // `exp`, seconds since the epoch
  std::vector<std::string> channels;  // `channels`: names, or prefixes ending in '*'
  bool restricts_channels = false;    // the token carried a `channels` claim
};

struct jwt_result {
  protocol::code error = protocol::code::ok;
  std::string reason;                 // empty when error == ok; static-ish text, safe to log
  token_claims claims;                // filled only when error == ok
};

// Verifies an HS256 token. `sub` (string) and `exp` (integer) are required; `nbf`, when present,
// must be an integer and is honoured with the same leeway. An empty secret refuses every token.
// Clock skew allowed on `exp` and `nbf` (DECISIONS §13).
inline constexpr std::int64_t jwt_leeway_seconds = 30;

jwt_result verify_jwt(std::string_view token, std::string_view secret, std::int64_t now_seconds,
                      std::int64_t leeway_seconds = jwt_leeway_seconds);

// Signs claims as {"alg":"HS256","typ":"JWT"}; `channels` is written only when restricts_channels.
// For tests and tools.
std::string sign_jwt(const token_claims& claims, std::string_view secret);

// base64url without padding (RFC 7515 §2). decode refuses padding, characters outside the
// alphabet, an impossible length and non-zero unused bits, so every byte string has one encoding.
std::string base64url_encode(std::string_view bytes);
bool base64url_decode(std::string_view text, std::string& out);

}  // namespace pushwire::server

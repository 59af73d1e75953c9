// Connection tokens: server/ops/jwt.* (docs/fuzzing.md).
//
// A fuzzer cannot forge an HMAC, so raw tokens alone never reach the claims. The first byte picks:
//   0x00-0x7f  the rest is a raw token, verified as it comes (segments, base64url, header, alg,
//              signature checks);
//   0x80-0xff  the rest is "HEADER\nCLAIMS" (JSON texts): the harness base64url-encodes and signs
//              them with the secret, so the header and claims parsers see every byte. Bit 0 of the
//              first byte then flips one signature bit (must be refused).
// Checked beyond "no crash": base64url decodes what it encodes; a token the verifier accepts was
// signed with the secret, carries HS256, a non-empty sub, an integer exp within leeway, and
// channels only when it listed them; failures have a reason and one of the two codes.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "server/ops/jwt.hpp"

using namespace pushwire;

namespace {

constexpr std::string_view secret = "fuzz-secret";
constexpr std::int64_t now_s = 1'800'000'000;

[[noreturn]] void fail(const char* what, std::string_view input) {
  std::fprintf(stderr, "jwt_fuzz: %s on: %.*s\n", what, static_cast<int>(input.size()), input.data());
  std::abort();
}

std::string sign(std::string_view signing_input) {
  unsigned char mac[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac, &len);
  return std::string(reinterpret_cast<const char*>(mac), len);
}

// Whether the third segment is the harness's HMAC of the first two.
bool signed_by_us(std::string_view token) {
  auto dot = token.rfind('.');
  std::string sig;
  return dot != std::string_view::npos && server::base64url_decode(token.substr(dot + 1), sig) &&
         sig == sign(token.substr(0, dot));
}

void check(const server::jwt_result& r, std::string_view token) {
  using protocol::code;
  if (r.error == code::ok) {
    if (!signed_by_us(token)) fail("accepted a token the harness did not sign", token);
    if (!r.reason.empty()) fail("accepted with a reason", token);
    if (r.claims.user.empty()) fail("accepted without sub", token);
    if (r.claims.exp < now_s - server::jwt_leeway_seconds) fail("accepted past exp + leeway", token);
    if (!r.claims.restricts_channels && !r.claims.channels.empty()) fail("channels without the claim", token);
    // What the verifier accepted, signed again by sign_jwt, verifies to the same claims.
    auto again = server::verify_jwt(server::sign_jwt(r.claims, secret), secret, now_s);
    if (again.error != code::ok || again.claims.user != r.claims.user || again.claims.exp != r.claims.exp ||
        again.claims.channels != r.claims.channels)
      fail("sign_jwt of accepted claims does not verify the same", token);
  } else {
    if (r.error != code::unauthorized && r.error != code::token_expired) fail("unexpected error code", token);
    if (r.reason.empty()) fail("refused without a reason", token);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);

  // base64url round trip on the raw bytes.
  std::string decoded;
  if (!server::base64url_decode(server::base64url_encode(rest), decoded) || decoded != rest)
    fail("base64url does not round-trip", rest);
  if (server::base64url_decode(rest, decoded) && server::base64url_encode(decoded) != rest)
    fail("base64url decode accepted a non-canonical text", rest);

  if (data[0] < 0x80) {
    check(server::verify_jwt(rest, secret, now_s), rest);
    return 0;
  }
  auto nl = rest.find('\n');
  std::string_view header = rest.substr(0, nl);
  std::string_view claims = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
  std::string token = server::base64url_encode(header) + '.' + server::base64url_encode(claims);
  std::string sig = sign(token);
  bool tamper = data[0] & 1;
  if (tamper) sig[static_cast<unsigned char>(data[0] >> 1) % sig.size()] ^= 1;
  token += '.';
  token += server::base64url_encode(sig);
  check(server::verify_jwt(token, secret, now_s), token);
  return 0;
}

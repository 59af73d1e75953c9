#include "server/ops/jwt.hpp"

#include "protocol/channel_name.hpp"
#include "protocol/json_scan.hpp"

#include <boost/json.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <limits>

namespace pushwire::server {
namespace {

constexpr char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::size_t sha256_size = 32;

int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

using digest = std::array<unsigned char, sha256_size>;

bool hmac_sha256(std::string_view key, std::string_view data, digest& out) {
  unsigned int len = 0;
  // HMAC() wants a non-null key pointer even for an empty key.
  const void* key_ptr = key.empty() ? static_cast<const void*>("") : key.data();
  unsigned char* r = HMAC(EVP_sha256(), key_ptr, static_cast<int>(key.size()),
                          reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len);
  return r != nullptr && len == sha256_size;
}

jwt_result fail(std::string reason) {
  jwt_result r;
  r.error = protocol::code::unauthorized;
  r.reason = std::move(reason);
  return r;
}

// Parses one decoded segment as a JSON object. The scanner runs first because it refuses duplicate
// keys, which Boost.JSON 1.81 silently collapses: {"alg":"HS256","alg":"none"} must not mean
// whichever one a given library picks.
const boost::json::object* parse_object(std::string_view text, boost::json::value& storage) {
  std::vector<protocol::json_member> members;
  protocol::scan_error scan_err;
  if (!protocol::scan_object(text, members, scan_err)) return nullptr;
  boost::system::error_code ec;
  storage = boost::json::parse(text, ec);
  if (ec) return nullptr;
  return storage.if_object();
}

// Integer seconds: an int64, or a uint64 that fits (Boost.JSON picks uint64 only above INT64_MAX,
// so in practice that is a refusal). Doubles (1.7e9, 1700000000.5) are refused: NumericDate may be
// fractional in RFC 7519, but this server documents integers and a strict rule is easier to audit.
bool get_seconds(const boost::json::value& v, std::int64_t& out) {
  if (const std::int64_t* i = v.if_int64()) {
    out = *i;
    return true;
  }
  return false;
}

}  // namespace

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  std::size_t i = 0;
  auto byte = [&](std::size_t k) { return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    std::uint32_t n = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out += b64_alphabet[(n >> 18) & 63];
    out += b64_alphabet[(n >> 12) & 63];
    out += b64_alphabet[(n >> 6) & 63];
    out += b64_alphabet[n & 63];
  }
  std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    std::uint32_t n = byte(i) << 16;
    out += b64_alphabet[(n >> 18) & 63];
    out += b64_alphabet[(n >> 12) & 63];
  } else if (rest == 2) {
    std::uint32_t n = (byte(i) << 16) | (byte(i + 1) << 8);
    out += b64_alphabet[(n >> 18) & 63];
    out += b64_alphabet[(n >> 12) & 63];
    out += b64_alphabet[(n >> 6) & 63];
  }
  return out;
}

bool base64url_decode(std::string_view text, std::string& out) {
  out.clear();
  if (text.size() % 4 == 1) return false;  // no byte count encodes to 4k+1 characters
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = b64_value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  // Leftover bits (2 or 4) must be zero, or two texts would decode to the same bytes.
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return false;
  return true;
}

jwt_result verify_jwt(std::string_view token, std::string_view secret, std::int64_t now_seconds,
                      std::int64_t leeway_seconds) {
  if (secret.empty()) return fail("no token secret configured");
  if (token.empty()) return fail("empty token");
  if (token.size() > max_token_length) return fail("token longer than 4096 bytes");

  std::size_t dot1 = token.find('.');
  if (dot1 == std::string_view::npos) return fail("token must have three segments");
  std::size_t dot2 = token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
    return fail("token must have three segments");
  std::string_view header_b64 = token.substr(0, dot1);
  std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  std::string_view sig_b64 = token.substr(dot2 + 1);

  std::string header_text, payload_text, sig;
  if (!base64url_decode(header_b64, header_text)) return fail("header is not base64url");
  if (!base64url_decode(payload_b64, payload_text)) return fail("payload is not base64url");
  if (!base64url_decode(sig_b64, sig)) return fail("signature is not base64url");

  boost::json::value header_value;
  const boost::json::object* header = parse_object(header_text, header_value);
  if (!header) return fail("header is not a JSON object");
  const boost::json::value* alg = header->if_contains("alg");
  if (!alg) return fail("header has no alg");
  const boost::json::string* alg_s = alg->if_string();
  if (!alg_s || *alg_s != "HS256") return fail("alg must be HS256");
  if (const boost::json::value* typ = header->if_contains("typ"); typ && !typ->is_string())
    return fail("typ must be a string");
  // RFC 7515 §4.1.11: extensions we do not understand must make the token invalid.
  if (header->contains("crit")) return fail("crit header is not supported");

  if (sig.size() != sha256_size) return fail("signature mismatch");
  digest expected{};
  if (!hmac_sha256(secret, token.substr(0, dot2), expected)) return fail("signature mismatch");
  if (CRYPTO_memcmp(expected.data(), sig.data(), sha256_size) != 0) return fail("signature mismatch");

  boost::json::value payload_value;
  const boost::json::object* payload = parse_object(payload_text, payload_value);
  if (!payload) return fail("claims are not a JSON object");

  jwt_result result;
  token_claims& claims = result.claims;

  const boost::json::value* sub = payload->if_contains("sub");
  if (!sub) return fail("sub claim is required");
  const boost::json::string* sub_s = sub->if_string();
  if (!sub_s) return fail("sub must be a string");
  if (sub_s->empty()) return fail("sub must not be empty");
  claims.user.assign(sub_s->data(), sub_s->size());

  const boost::json::value* exp = payload->if_contains("exp");
  if (!exp) return fail("exp claim is required");
  if (!get_seconds(*exp, claims.exp)) return fail("exp must be an integer");

  std::int64_t leeway = leeway_seconds < 0 ? 0 : leeway_seconds;
  constexpr std::int64_t max = std::numeric_limits<std::int64_t>::max();
  // now > exp + leeway, written so that neither side can overflow.
  bool expired = claims.exp <= max - leeway && now_seconds > claims.exp + leeway;

  if (const boost::json::value* nbf = payload->if_contains("nbf")) {
    std::int64_t not_before = 0;
    if (!get_seconds(*nbf, not_before)) return fail("nbf must be an integer");
    // now + leeway < nbf
    if (now_seconds <= max - leeway && now_seconds + leeway < not_before) return fail("token not valid yet");
  }

  if (const boost::json::value* channels = payload->if_contains("channels")) {
    const boost::json::array* arr = channels->if_array();
    if (!arr) return fail("channels must be an array of strings");
    claims.restricts_channels = true;
    claims.channels.reserve(arr->size());
    for (const boost::json::value& v : *arr) {
      const boost::json::string* s = v.if_string();
      if (!s) return fail("channels must be an array of strings");
      if (s->empty()) return fail("channels entries must not be empty");
      claims.channels.emplace_back(s->data(), s->size());
    }
  }

  if (expired) {
    jwt_result r;
    r.error = protocol::code::token_expired;
    r.reason = "token expired";
    return r;
  }
  return result;
}

std::string sign_jwt(const token_claims& claims, std::string_view secret) {
  boost::json::object payload;
  payload["sub"] = boost::json::string_view(claims.user.data(), claims.user.size());
  payload["exp"] = claims.exp;
  if (claims.restricts_channels) {
    boost::json::array arr;
    for (const std::string& c : claims.channels) arr.emplace_back(boost::json::string_view(c.data(), c.size()));
    payload["channels"] = std::move(arr);
  }
  std::string signing_input = base64url_encode(R"({"alg":"HS256","typ":"JWT"})");
  signing_input += '.';
  signing_input += base64url_encode(boost::json::serialize(payload));
  digest sig{};
  hmac_sha256(secret, signing_input, sig);
  signing_input += '.';
  signing_input += base64url_encode(std::string_view(reinterpret_cast<const char*>(sig.data()), sig.size()));
  return signing_input;
}

}  // namespace pushwire::server

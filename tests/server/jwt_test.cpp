#include "server/ops/jwt.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <limits>
#include <string>

using namespace pushwire::server;
using pushwire::protocol::code;

namespace {

constexpr std::string_view secret = "s3cret-for-tests";
constexpr std::int64_t now = 1'800'000'000;

// An HMAC computed here, independently of jwt.cpp, so the tests can build any token by hand.
std::string hmac(std::string_view key, std::string_view data) {
  unsigned char out[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string make_token(std::string_view header, std::string_view payload, std::string_view key = secret) {
  std::string input = base64url_encode(header) + "." + base64url_encode(payload);
  return input + "." + base64url_encode(hmac(key, input));
}

std::string payload_with(std::string_view extra = "") {
  std::string p = R"({"sub":"alice","exp":)" + std::to_string(now + 600);
  if (!extra.empty()) p += std::string(",") + std::string(extra);
  return p + "}";
}

constexpr std::string_view hs256 = R"({"alg":"HS256","typ":"JWT"})";

void expect_unauthorized(const jwt_result& r, std::string_view reason_part) {
  EXPECT_EQ(r.error, code::unauthorized);
  EXPECT_NE(r.reason.find(reason_part), std::string::npos) << "reason: " << r.reason;
  EXPECT_TRUE(r.claims.user.empty());
}

}  // namespace

TEST(Base64Url, RoundTripsEveryLength) {
  std::string bytes;
  for (int i = 0; i < 40; ++i) {
    std::string enc = base64url_encode(bytes);
    EXPECT_EQ(enc.find_first_of("=+/"), std::string::npos);
    std::string dec;
    ASSERT_TRUE(base64url_decode(enc, dec)) << enc;
    EXPECT_EQ(dec, bytes);
    bytes += static_cast<char>(i * 37 + 250);
  }
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
}

TEST(Base64Url, RefusesNonCanonicalText) {
  std::string out;
  EXPECT_FALSE(base64url_decode("QQ==", out));   // padding
  EXPECT_FALSE(base64url_decode("QQ=", out));
  EXPECT_FALSE(base64url_decode("Q+8", out));    // standard alphabet, not url
  EXPECT_FALSE(base64url_decode("Q/8", out));
  EXPECT_FALSE(base64url_decode("QUJDR", out));  // 4k+1 characters
  EXPECT_FALSE(base64url_decode("QR", out));     // unused bits set ("QQ" is the canonical "A")
  EXPECT_FALSE(base64url_decode("QQ\n", out));
  EXPECT_FALSE(base64url_decode(std::string("Q\0Q", 3), out));
  EXPECT_TRUE(base64url_decode("QQ", out));
  EXPECT_EQ(out, "A");
  EXPECT_TRUE(base64url_decode("", out));
  EXPECT_EQ(out, "");
}

TEST(Jwt, KnownVectorSignatureChecksOut) {
  // The jwt.io example token: its signature is right, so the verdict comes from the claims check.
  std::string token =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
      "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
  expect_unauthorized(verify_jwt(token, "your-256-bit-secret", now), "exp claim is required");
  expect_unauthorized(verify_jwt(token, "another-secret", now), "signature mismatch");
}

TEST(Jwt, SignedTokenRoundTrips) {
  token_claims c;
  c.user = "user-42";
  c.exp = now + 60;
  std::string token = sign_jwt(c, secret);
  jwt_result r = verify_jwt(token, secret, now);
  ASSERT_EQ(r.error, code::ok) << r.reason;
  EXPECT_TRUE(r.reason.empty());
  EXPECT_EQ(r.claims.user, "user-42");
  EXPECT_EQ(r.claims.exp, now + 60);
  EXPECT_FALSE(r.claims.restricts_channels);
  EXPECT_TRUE(r.claims.channels.empty());

  c.channels = {"news", "chat:*", "private-user-42"};
  c.restricts_channels = true;
  r = verify_jwt(sign_jwt(c, secret), secret, now);
  ASSERT_EQ(r.error, code::ok) << r.reason;
  EXPECT_TRUE(r.claims.restricts_channels);
  EXPECT_EQ(r.claims.channels, c.channels);

  c.channels.clear();  // an empty list still restricts: it grants nothing
  r = verify_jwt(sign_jwt(c, secret), secret, now);
  ASSERT_EQ(r.error, code::ok) << r.reason;
  EXPECT_TRUE(r.claims.restricts_channels);
  EXPECT_TRUE(r.claims.channels.empty());
}

TEST(Jwt, HandBuiltTokenWithExtraClaimsAndNoTyp) {
  jwt_result r = verify_jwt(make_token(R"({"alg":"HS256"})", payload_with(R"("iat":1,"name":"A","nested":{"x":[1]})")),
                            secret, now);
  ASSERT_EQ(r.error, code::ok) << r.reason;
  EXPECT_EQ(r.claims.user, "alice");
  EXPECT_EQ(r.claims.exp, now + 600);
}

TEST(Jwt, ExpiryHonoursLeeway) {
  token_claims c;
  c.user = "u";
  c.exp = now;
  std::string token = sign_jwt(c, secret);
  EXPECT_EQ(verify_jwt(token, secret, now).error, code::ok);
  EXPECT_EQ(verify_jwt(token, secret, now + 30).error, code::ok);        // within the default 30 s
  jwt_result late = verify_jwt(token, secret, now + 31);                  // beyond it
  EXPECT_EQ(late.error, code::token_expired);
  EXPECT_FALSE(late.reason.empty());
  EXPECT_TRUE(late.claims.user.empty());
  EXPECT_EQ(verify_jwt(token, secret, now + 1, 0).error, code::token_expired);
  EXPECT_EQ(verify_jwt(token, secret, now, 0).error, code::ok);
  EXPECT_EQ(verify_jwt(token, secret, now + 100, 100).error, code::ok);
  EXPECT_EQ(verify_jwt(token, secret, now + 1, -5).error, code::token_expired);  // negative = 0
}

TEST(Jwt, ExpiryArithmeticDoesNotOverflow) {
  constexpr std::int64_t max = std::numeric_limits<std::int64_t>::max();
  constexpr std::int64_t min = std::numeric_limits<std::int64_t>::min();
  token_claims c;
  c.user = "u";
  c.exp = max;
  EXPECT_EQ(verify_jwt(sign_jwt(c, secret), secret, max, max).error, code::ok);
  c.exp = min;
  EXPECT_EQ(verify_jwt(sign_jwt(c, secret), secret, now).error, code::token_expired);
  EXPECT_EQ(verify_jwt(sign_jwt(c, secret), secret, min).error, code::ok);
  // exp beyond int64 is not an integer we accept
  expect_unauthorized(verify_jwt(make_token(hs256, R"({"sub":"u","exp":18446744073709551615})"), secret, now),
                      "exp must be an integer");
}

TEST(Jwt, NotBeforeHonoursLeeway) {
  EXPECT_EQ(verify_jwt(make_token(hs256, payload_with("\"nbf\":" + std::to_string(now + 30))), secret, now).error,
            code::ok);
  expect_unauthorized(verify_jwt(make_token(hs256, payload_with("\"nbf\":" + std::to_string(now + 31))), secret, now),
                      "not valid yet");
  expect_unauthorized(verify_jwt(make_token(hs256, payload_with(R"("nbf":"soon")")), secret, now),
                      "nbf must be an integer");
}

TEST(Jwt, RefusesEveryAlgButHs256) {
  std::string payload = payload_with();
  expect_unauthorized(verify_jwt(make_token(R"({"alg":"none","typ":"JWT"})", payload), secret, now), "alg");
  expect_unauthorized(verify_jwt(make_token(R"({"alg":"HS512","typ":"JWT"})", payload), secret, now), "alg");
  expect_unauthorized(verify_jwt(make_token(R"({"alg":"hs256"})", payload), secret, now), "alg");
  expect_unauthorized(verify_jwt(make_token(R"({"alg":"RS256"})", payload), secret, now), "alg");
  expect_unauthorized(verify_jwt(make_token(R"({"alg":"HS256 "})", payload), secret, now), "alg");
  expect_unauthorized(verify_jwt(make_token(R"({"alg":null})", payload), secret, now), "alg");
  expect_unauthorized(verify_jwt(make_token(R"({"alg":["HS256"]})", payload), secret, now), "alg");
  expect_unauthorized(verify_jwt(make_token(R"({"typ":"JWT"})", payload), secret, now), "header has no alg");
  // A classic "alg: none" token: empty signature segment.
  std::string none = base64url_encode(R"({"alg":"none"})") + "." + base64url_encode(payload) + ".";
  expect_unauthorized(verify_jwt(none, secret, now), "alg");
  std::string none_hs = base64url_encode(hs256) + "." + base64url_encode(payload) + ".";
  expect_unauthorized(verify_jwt(none_hs, secret, now), "signature mismatch");
}

TEST(Jwt, RefusesOddHeaders) {
  std::string payload = payload_with();
  expect_unauthorized(verify_jwt(make_token(R"({"alg":"HS256","alg":"none"})", payload), secret, now),
                      "header is not a JSON object");  // duplicate key
  expect_unauthorized(verify_jwt(make_token(R"({"alg":"none","alg":"HS256"})", payload), secret, now),
                      "header is not a JSON object");
  expect_unauthorized(verify_jwt(make_token(R"({"alg":"HS256","typ":7})", payload), secret, now), "typ");
  expect_unauthorized(verify_jwt(make_token(R"({"alg":"HS256","crit":["exp"]})", payload), secret, now), "crit");
  expect_unauthorized(verify_jwt(make_token(R"(["HS256"])", payload), secret, now), "header is not a JSON object");
}

TEST(Jwt, RefusesForgedOrTamperedTokens) {
  token_claims c;
  c.user = "alice";
  c.exp = now + 600;
  std::string token = sign_jwt(c, secret);
  expect_unauthorized(verify_jwt(token, "wrong-secret", now), "signature mismatch");
  expect_unauthorized(verify_jwt(token, std::string(secret) + "x", now), "signature mismatch");

  // Payload swapped for another user's, signature kept.
  std::size_t dot1 = token.find('.');
  std::size_t dot2 = token.rfind('.');
  std::string tampered = token.substr(0, dot1 + 1) + base64url_encode(R"({"sub":"admin","exp":1900000000})") +
                         token.substr(dot2);
  expect_unauthorized(verify_jwt(tampered, secret, now), "signature mismatch");

  // A signature made with another key.
  expect_unauthorized(verify_jwt(make_token(hs256, payload_with(), "attacker"), secret, now), "signature mismatch");

  // Every single-character change of the signature fails (the last character only where it
  // changes the decoded bytes; otherwise base64url refuses it).
  for (std::size_t i = dot2 + 1; i < token.size(); ++i) {
    std::string t = token;
    t[i] = t[i] == 'A' ? 'B' : 'A';
    EXPECT_EQ(verify_jwt(t, secret, now).error, code::unauthorized) << i;
  }
  // Truncated and extended signatures.
  expect_unauthorized(verify_jwt(token.substr(0, token.size() - 4), secret, now), "signature");
  expect_unauthorized(verify_jwt(token + "AAAA", secret, now), "signature mismatch");
  // No secret configured refuses even a token signed with the empty key.
  expect_unauthorized(verify_jwt(make_token(hs256, payload_with(), ""), "", now), "no token secret");
}

TEST(Jwt, RefusesMalformedSegments) {
  token_claims c;
  c.user = "alice";
  c.exp = now + 600;
  std::string token = sign_jwt(c, secret);
  expect_unauthorized(verify_jwt("", secret, now), "empty token");
  expect_unauthorized(verify_jwt("abc", secret, now), "three segments");
  expect_unauthorized(verify_jwt("a.b", secret, now), "three segments");
  expect_unauthorized(verify_jwt(token + ".x", secret, now), "three segments");
  expect_unauthorized(verify_jwt(token + ".", secret, now), "three segments");
  expect_unauthorized(verify_jwt("..", secret, now), "header is not a JSON object");
  expect_unauthorized(verify_jwt("...", secret, now), "three segments");

  std::size_t dot1 = token.find('.');
  std::string header = token.substr(0, dot1);
  expect_unauthorized(verify_jwt(header + "==" + token.substr(dot1), secret, now), "header is not base64url");
  expect_unauthorized(verify_jwt("*" + token, secret, now), "header is not base64url");
  std::string with_padding = token;
  with_padding.insert(token.rfind('.'), "=");
  expect_unauthorized(verify_jwt(with_padding, secret, now), "payload is not base64url");
  expect_unauthorized(verify_jwt(token + "=", secret, now), "signature is not base64url");
  expect_unauthorized(verify_jwt(token + " ", secret, now), "signature is not base64url");
  std::string std_alphabet = token;
  for (char& ch : std_alphabet)
    if (ch == '-') ch = '+';
    else if (ch == '_') ch = '/';
  if (std_alphabet != token) {
    EXPECT_EQ(verify_jwt(std_alphabet, secret, now).error, code::unauthorized);
  }
  expect_unauthorized(verify_jwt(std::string(token).insert(5, 1, '\0'), secret, now), "header is not base64url");
}

TEST(Jwt, RefusesNonJsonAndTrailingGarbage) {
  expect_unauthorized(verify_jwt(make_token("not json", payload_with()), secret, now), "header is not a JSON object");
  expect_unauthorized(verify_jwt(make_token(R"({"alg":"HS256"} x)", payload_with()), secret, now),
                      "header is not a JSON object");
  expect_unauthorized(verify_jwt(make_token(hs256, "not json"), secret, now), "claims are not a JSON object");
  expect_unauthorized(verify_jwt(make_token(hs256, ""), secret, now), "claims are not a JSON object");
  expect_unauthorized(verify_jwt(make_token(hs256, payload_with() + "{}"), secret, now), "claims are not a JSON object");
  expect_unauthorized(verify_jwt(make_token(hs256, "[1,2]"), secret, now), "claims are not a JSON object");
  expect_unauthorized(verify_jwt(make_token(hs256, "\"alice\""), secret, now), "claims are not a JSON object");
  expect_unauthorized(verify_jwt(make_token(hs256, "{\"sub\":\"caf\xe9\",\"exp\":1900000000}"), secret, now),
                      "claims are not a JSON object");  // invalid UTF-8
  expect_unauthorized(verify_jwt(make_token(hs256, R"({"sub":"a","sub":"b","exp":1900000000})"), secret, now),
                      "claims are not a JSON object");  // duplicate key
}

TEST(Jwt, RefusesWrongClaimTypes) {
  auto check = [](std::string_view payload, std::string_view reason) {
    SCOPED_TRACE(payload);
    expect_unauthorized(verify_jwt(make_token(hs256, payload), secret, now), reason);
  };
  check(R"({"exp":1900000000})", "sub claim is required");
  check(R"({"sub":42,"exp":1900000000})", "sub must be a string");
  check(R"({"sub":null,"exp":1900000000})", "sub must be a string");
  check(R"({"sub":"","exp":1900000000})", "sub must not be empty");
  check(R"({"sub":"a"})", "exp claim is required");
  check(R"({"sub":"a","exp":"1900000000"})", "exp must be an integer");
  check(R"({"sub":"a","exp":1.9e9})", "exp must be an integer");
  check(R"({"sub":"a","exp":1900000000.5})", "exp must be an integer");
  check(R"({"sub":"a","exp":true})", "exp must be an integer");
  check(R"({"sub":"a","exp":1900000000,"channels":"news"})", "channels must be an array of strings");
  check(R"({"sub":"a","exp":1900000000,"channels":{"news":true}})", "channels must be an array of strings");
  check(R"({"sub":"a","exp":1900000000,"channels":["news",1]})", "channels must be an array of strings");
  check(R"({"sub":"a","exp":1900000000,"channels":[["news"]]})", "channels must be an array of strings");
  check(R"({"sub":"a","exp":1900000000,"channels":[""]})", "channels entries must not be empty");
  // A malformed claim is refused even when the token is also expired.
  check(R"({"sub":"a","exp":1,"channels":7})", "channels must be an array of strings");
}

TEST(Jwt, LengthLimit) {
  // Judged on size first: 4096 bytes reach the content checks, 4097 do not.
  std::string token = make_token(hs256, payload_with());
  ASSERT_LT(token.size(), max_token_length);
  token += std::string(max_token_length - token.size(), 'A');  // breaks the signature, not the size
  ASSERT_EQ(token.size(), max_token_length);
  jwt_result at = verify_jwt(token, secret, now);
  EXPECT_EQ(at.reason.find("longer"), std::string::npos) << at.reason;  // judged on content, not size
  expect_unauthorized(verify_jwt(token + "A", secret, now), "longer than 4096");
  expect_unauthorized(verify_jwt(std::string(1 << 20, 'A'), secret, now), "longer than 4096");

  // A valid token near the limit passes.
  std::string big_pad(2800, 'y');
  std::string valid = make_token(hs256, payload_with("\"pad\":\"" + big_pad + "\""));
  ASSERT_LE(valid.size(), max_token_length);
  EXPECT_EQ(verify_jwt(valid, secret, now).error, code::ok);
}

TEST(Jwt, NeverReadsPastTheInput) {
  // Every prefix of a valid token is refused without crashing (ASan watches the reads).
  token_claims c;
  c.user = "alice";
  c.exp = now + 600;
  c.restricts_channels = true;
  c.channels = {"a", "b*"};
  std::string token = sign_jwt(c, secret);
  for (std::size_t n = 0; n < token.size(); ++n) {
    std::string prefix = token.substr(0, n);  // its own allocation, so ASan sees any overread
    EXPECT_EQ(verify_jwt(prefix, secret, now).error, code::unauthorized) << n;
  }
  EXPECT_EQ(verify_jwt(token, secret, now).error, code::ok);
}


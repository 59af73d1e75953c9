// The Pusher API signature check (server/pusher/pusher_auth.hpp). The known vectors were made by
// the `pusher` npm SDK 5.3.4 itself (createSignedQueryString with Date.now() fixed at 1700000000 s,
// app key "key", secret "secret"), so a drift from what the SDKs sign fails here first.
#include <gtest/gtest.h>

#include "server/http/query.hpp"
#include "server/pusher/pusher_auth.hpp"
#include "server/pusher/pusher_signature.hpp"

namespace {

namespace ps = pushwire::server;

constexpr std::uint64_t t0 = 1700000000;
const char* events_body = R"({"name":"ev","data":"{\"a\":1}","channels":["ch"]})";

ps::pusher_app app() {
  ps::pusher_app a;
  a.id = "1";
  a.key = "key";
  a.secret = "secret";
  return a;
}

unsigned check(std::string_view method, std::string_view path, std::string_view query, std::string_view body,
               std::uint64_t now = t0) {
  std::string why;
  return ps::check_pusher_auth(app(), method, path, ps::parse_query(query), body, now, why);
}

const char* post_query =
    "auth_key=key&auth_timestamp=1700000000&auth_version=1.0&body_md5=8611503f2dd56f790a0a03adf3ca6fb9"
    "&auth_signature=08e7237470757049b2f849b79f052a6fbdf2824bc009cd4e784634355c5c66e2";
const char* get_query =
    "auth_key=key&auth_timestamp=1700000000&auth_version=1.0&filter_by_prefix=presence-&info=user_count"
    "&auth_signature=e64835b978ac14fa222b4d9a94a321312a51f8c750c4b05e411eb082d53fb2b4";

TEST(PusherAuth, AcceptsWhatTheSdkSigns) {
  EXPECT_EQ(check("POST", "/apps/1/events", post_query, events_body), 0u);
  EXPECT_EQ(check("GET", "/apps/1/channels", get_query, ""), 0u);
  EXPECT_EQ(check("GET", "/apps/1/channels/presence-room/users",
                  "auth_key=key&auth_timestamp=1700000000&auth_version=1.0"
                  "&auth_signature=d0bf6df4fc33bc0af97e50f3a79954a93731fa29f9078010936bde817c68639b",
                  ""),
            0u);
  // The SDK's body MD5 is the plain MD5 of the body text.
  EXPECT_EQ(ps::md5_hex(events_body), "8611503f2dd56f790a0a03adf3ca6fb9");
}

TEST(PusherAuth, StringToSignSortsLowercasedKeysAndSkipsTheSignature) {
  auto q = ps::parse_query("b=2&A=1&auth_signature=x&c=");
  EXPECT_EQ(ps::pusher_string_to_sign("get", "/apps/1/channels", q), "GET\n/apps/1/channels\na=1&b=2&c=");
}

TEST(PusherAuth, RefusesAWrongSignatureMethodPathOrQuery) {
  std::string q = post_query;
  q.back() = q.back() == '2' ? '3' : '2';
  EXPECT_EQ(check("POST", "/apps/1/events", q, events_body), 401u);
  EXPECT_EQ(check("PUT", "/apps/1/events", post_query, events_body), 401u);
  EXPECT_EQ(check("POST", "/apps/1/batch_events", post_query, events_body), 401u);
  // A parameter added after signing (here: info) changes the string to sign.
  EXPECT_EQ(check("GET", "/apps/1/channels", std::string(get_query) + "&x=1", ""), 401u);
  // Signed with another secret.
  std::string why;
  auto other = app();
  other.secret = "other";
  EXPECT_EQ(ps::check_pusher_auth(other, "GET", "/apps/1/channels", ps::parse_query(get_query), "", t0, why), 401u);
}

TEST(PusherAuth, TimestampWithin600Seconds) {
  EXPECT_EQ(check("GET", "/apps/1/channels", get_query, "", t0 + 600), 0u);
  EXPECT_EQ(check("GET", "/apps/1/channels", get_query, "", t0 + 601), 401u);
  EXPECT_EQ(check("GET", "/apps/1/channels", get_query, "", t0 - 600), 0u);
  EXPECT_EQ(check("GET", "/apps/1/channels", get_query, "", t0 - 601), 401u);
}

TEST(PusherAuth, BodyMd5MustMatchTheBody) {
  std::string body = events_body;
  body.back() = ' ';
  EXPECT_EQ(check("POST", "/apps/1/events", post_query, body), 401u);
  // A body without body_md5 (its signature made without one) is refused too.
  EXPECT_EQ(check("POST", "/apps/1/events", get_query, "{}"), 401u);
}

TEST(PusherAuth, MissingOrWrongParameters) {
  for (const char* drop : {"auth_key=key&", "auth_timestamp=1700000000&", "auth_version=1.0&"}) {
    std::string q = get_query;
    q.erase(q.find(drop), std::string_view(drop).size());
    EXPECT_EQ(check("GET", "/apps/1/channels", q, ""), 401u) << drop;
  }
  std::string q = get_query;
  EXPECT_EQ(check("GET", "/apps/1/channels", q.substr(0, q.find("&auth_signature")), ""), 401u);
  std::string wrong_key = get_query;
  wrong_key.replace(0, 12, "auth_key=kez");
  EXPECT_EQ(check("GET", "/apps/1/channels", wrong_key, ""), 401u);
  std::string version = get_query;
  version.replace(version.find("1.0"), 3, "2.0");
  EXPECT_EQ(check("GET", "/apps/1/channels", version, ""), 401u);
  std::string ts = get_query;
  ts.replace(ts.find("1700000000"), 10, "17000000xx");
  EXPECT_EQ(check("GET", "/apps/1/channels", ts, ""), 401u);
}

}  // namespace

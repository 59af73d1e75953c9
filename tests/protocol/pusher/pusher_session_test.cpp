// The Pusher session machine, driven without I/O: messages, engine results and member events in,
// actions and notes out. The signature is a stand-in function here (the server's is HMAC-SHA256,
// checked end to end by tests/pusher/ with the real pusher-js and server SDK).
#include "protocol/pusher/pusher_session.hpp"

#include <gtest/gtest.h>

#include "protocol/json_scan.hpp"
#include "protocol/pusher/pusher_mapping.hpp"

using namespace pushwire::protocol;
using namespace pushwire::protocol::pusher;

namespace {

std::string fake_sign(std::string_view text) {
  std::string s = "s";
  for (char c : text) s += std::to_string(static_cast<unsigned char>(c) % 7);
  return s;
}

session_config config() {
  session_config c;
  c.socket_id = "12.34";
  c.app_key = "key";
  c.ns = "app";
  c.client_events_per_s = 2;
  c.max_subscriptions = 3;
  c.max_message_bytes = 100;
  c.sign = fake_sign;
  return c;
}

std::string auth(std::string_view text) { return "key:" + fake_sign(text); }

struct harness {
  pusher_session s{config(), 0};
  harness() { s.start(); }
  std::vector<session_action> drain() {
    std::vector<session_action> out;
    while (auto a = s.poll_action()) out.push_back(std::move(*a));
    return out;
  }
  std::vector<std::string> sent() {
    std::vector<std::string> out;
    for (auto& a : drain())
      if (a.kind == session_action_kind::send) out.push_back(a.text);
    return out;
  }
  void subscribe(std::string_view channel, std::string_view extra = "") {
    std::string m = R"({"event":"pusher:subscribe","data":{"channel":")";
    m += channel;
    m += '"';
    m += extra;
    m += "}}";
    s.handle_text(m, 0);
  }
};

bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

TEST(PusherSession, GreetsWithSocketIdAndActivityTimeout) {
  harness h;
  auto out = h.sent();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], R"({"event":"pusher:connection_established","data":"{\"socket_id\":\"12.34\",\"activity_timeout\":120}"})");
}

TEST(PusherSession, RefusalSendsErrorAndCloses) {
  pusher_session s{config(), 0};
  s.refuse(close_code::app_not_found, "unknown app key");
  auto e = s.poll_action();
  ASSERT_TRUE(e);
  EXPECT_TRUE(contains(e->text, "pusher:error"));
  EXPECT_TRUE(contains(e->text, "4001"));
  auto c = s.poll_action();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->kind, session_action_kind::close);
  EXPECT_EQ(static_cast<int>(c->close_code), 4001);
  EXPECT_EQ(s.state(), pusher_state::closing);
}

TEST(PusherSession, PingIsAnsweredWithPong) {
  harness h;
  h.drain();
  h.s.handle_text(R"({"event":"pusher:ping","data":{}})", 0);
  auto out = h.sent();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(contains(out[0], "pusher:pong"));
}

TEST(PusherSession, MalformedMessagesGetAnErrorAndKeepTheConnection) {
  harness h;
  h.drain();
  for (std::string_view bad : {"nope", "[]", R"({"data":1})", R"({"event":"what"})", R"({"event":"pusher:subscribe","data":5})"}) {
    h.s.handle_text(bad, 0);
    auto out = h.sent();
    ASSERT_EQ(out.size(), 1u) << bad;
    EXPECT_TRUE(contains(out[0], "pusher:error")) << bad;
  }
  EXPECT_EQ(h.s.state(), pusher_state::open);
}

// The unknown name is quoted back cut to 64 bytes on a character boundary: a cut inside "é" made the
// error invalid UTF-8, which a browser refuses (the long pusher_fuzz run of issue 18).
TEST(PusherSession, UnknownEventIsQuotedBackAsWholeCharacters) {
  harness h;
  h.drain();
  std::string name = "pusher:" + std::string(56, 'x') + "\xc3\xa9\xc3\xa9";   // byte 64 is inside the first é
  h.s.handle_text(R"({"event":")" + name + "\"}", 0);
  auto out = h.sent();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(valid_utf8(out[0])) << out[0];
  EXPECT_TRUE(contains(out[0], "pusher:" + std::string(56, 'x'))) << out[0];
  EXPECT_FALSE(contains(out[0], "\xc3")) << out[0];
  EXPECT_EQ(utf8_prefix("a\xc3\xa9", 2), "a");
  EXPECT_EQ(utf8_prefix("a\xc3\xa9", 3), "a\xc3\xa9");
  EXPECT_EQ(utf8_prefix("abc", 0), "");
}

TEST(PusherSession, PublicSubscribeMapsToTheAppNamespace) {
  harness h;
  h.drain();
  h.subscribe("news");
  auto a = h.drain();
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind, session_action_kind::subscribe);
  EXPECT_EQ(a[0].channel, "app:news");
  EXPECT_FALSE(a[0].since);
  EXPECT_FALSE(a[0].join_presence);
  h.s.handle_result(engine_reply{.request = a[0].request, .pos = {"e", 5}}, 0);
  auto out = h.sent();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], R"({"event":"pusher_internal:subscription_succeeded","channel":"news","data":"{}"})");
}

TEST(PusherSession, PrivateChannelNeedsTheRightSignature) {
  harness h;
  h.drain();
  h.subscribe("private-a", R"(,"auth":"key:wrong")");
  auto out = h.sent();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(contains(out[0], "pusher:subscription_error"));
  EXPECT_TRUE(contains(out[0], "401"));
  h.subscribe("private-a", R"(,"auth":")" + auth("12.34:private-b") + "\"");   // signed for another channel
  EXPECT_TRUE(contains(h.sent().at(0), "subscription_error"));
  h.subscribe("private-a", R"(,"auth":"other)" + auth("12.34:private-a").substr(3) + "\"");   // another app's key
  EXPECT_TRUE(contains(h.sent().at(0), "subscription_error"));
  h.subscribe("private-a", R"(,"auth":")" + auth("12.34:private-a") + "\"");
  auto a = h.drain();
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind, session_action_kind::subscribe);
}

TEST(PusherSession, InvalidChannelNamesAreRefused) {
  harness h;
  h.drain();
  h.subscribe("bad:name");
  EXPECT_TRUE(contains(h.sent().at(0), "InvalidChannel"));
  h.subscribe(std::string(165, 'a'));
  EXPECT_TRUE(contains(h.sent().at(0), "InvalidChannel"));
  h.subscribe(std::string(164, 'a'));
  EXPECT_EQ(h.drain().at(0).kind, session_action_kind::subscribe);
}

TEST(PusherSession, SubscriptionLimit) {
  harness h;
  h.drain();
  h.subscribe("a");
  h.subscribe("b");
  h.subscribe("c");
  EXPECT_EQ(h.drain().size(), 3u);
  h.subscribe("d");
  auto out = h.sent();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(contains(out[0], "LimitReached"));
}

TEST(PusherSession, PresenceJoinsWithChannelDataAndListsOneMemberPerUser) {
  harness h;
  h.drain();
  std::string cd = R"({"user_id":"u1","user_info":{"name":"Ann"}})";
  std::string extra = R"(,"auth":")" + auth("12.34:presence-r:" + cd) + R"(","channel_data":)";
  append_json_string(extra, cd);
  h.subscribe("presence-r", extra);
  auto a = h.drain();
  ASSERT_EQ(a.size(), 1u);
  EXPECT_TRUE(a[0].join_presence);
  EXPECT_TRUE(a[0].with_members);
  EXPECT_EQ(a[0].member_user, "u1");
  EXPECT_EQ(a[0].member_info, R"({"name":"Ann"})");
  engine_reply r{.request = a[0].request, .pos = {"e", 0}};
  r.members = {{"u1", "12.34", R"({"name":"Ann"})"}, {"u2", "9.1", "null"}, {"u2", "9.2", "null"}};
  h.s.handle_result(r, 0);
  auto out = h.sent();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(contains(out[0], R"(\"ids\":[\"u1\",\"u2\"])")) << out[0];
  EXPECT_TRUE(contains(out[0], R"(\"count\":2)")) << out[0];
  auto n = h.s.poll_note();
  ASSERT_TRUE(n);
  EXPECT_EQ(n->what, note::kind::member_added);

  // A second connection of a known user: no member_added; its last connection leaving: removed.
  h.s.handle_member_event({true, "app:presence-r", "u2", "9.3", "null"});
  EXPECT_TRUE(h.sent().empty());
  h.s.handle_member_event({false, "app:presence-r", "u2", "9.1", ""});
  h.s.handle_member_event({false, "app:presence-r", "u2", "9.2", ""});
  EXPECT_TRUE(h.sent().empty());
  h.s.handle_member_event({false, "app:presence-r", "u2", "9.3", ""});
  out = h.sent();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], R"({"event":"pusher_internal:member_removed","channel":"presence-r","data":"{\"user_id\":\"u2\"}"})");
  h.s.handle_member_event({true, "app:presence-r", "u3", "9.9", R"({"a":1})"});
  out = h.sent();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(contains(out[0], "member_added"));
  EXPECT_TRUE(contains(out[0], R"(\"user_info\":{\"a\":1})")) << out[0];
}

TEST(PusherSession, PresenceEventsBeforeTheListWait) {
  harness h;
  h.drain();
  std::string cd = R"({"user_id":7})";
  std::string extra = R"(,"auth":")" + auth("12.34:presence-r:" + cd) + R"(","channel_data":)";
  append_json_string(extra, cd);
  h.subscribe("presence-r", extra);
  auto a = h.drain();
  ASSERT_EQ(a.at(0).member_user, "7");   // a numeric user id is kept as its text
  h.s.handle_member_event({true, "app:presence-r", "u9", "5.5", "null"});
  EXPECT_TRUE(h.sent().empty());
  engine_reply r{.request = a[0].request};
  r.members = {{"7", "12.34", ""}};
  h.s.handle_result(r, 0);
  auto out = h.sent();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(contains(out[0], "member_added"));   // the early join, told once the list is known
  EXPECT_TRUE(contains(out[1], R"(\"count\":2)")) << out[1];
}

TEST(PusherSession, CacheChannelResumesFromJustBeforeTheNewest) {
  harness h;
  h.drain();
  h.subscribe("cache-c");
  auto a = h.drain();
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind, session_action_kind::history);
  h.s.handle_result(engine_reply{.request = a[0].request, .pos = {"e", 9}}, 0);
  a = h.drain();
  ASSERT_EQ(a.size(), 1u);
  ASSERT_TRUE(a[0].since);
  EXPECT_EQ(a[0].since->offset, 8u);
  engine_reply r{.request = a[0].request, .pos = {"e", 9}, .recovered = true};
  h.s.handle_result(r, 0);
  auto out = h.sent();
  ASSERT_EQ(out.size(), 1u);   // the cached event follows as the replay
  EXPECT_TRUE(contains(out[0], "subscription_succeeded"));

  h.subscribe("cache-empty");
  a = h.drain();
  h.s.handle_result(engine_reply{.request = a[0].request, .pos = {"e", 0}}, 0);
  a = h.drain();
  EXPECT_FALSE(a.at(0).since);
  h.s.handle_result(engine_reply{.request = a[0].request, .pos = {"e", 0}}, 0);
  out = h.sent();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(contains(out[1], "pusher:cache_miss"));
}

TEST(PusherSession, ClientEventsOnlyOnPrivateChannelsAndRateLimited) {
  harness h;
  h.drain();
  h.subscribe("pub");
  auto a = h.drain();
  h.s.handle_result(engine_reply{.request = a[0].request}, 0);
  h.drain();
  h.s.handle_text(R"({"event":"client-x","channel":"pub","data":{}})", 0);
  EXPECT_TRUE(contains(h.sent().at(0), "only allowed on private and presence"));
  h.subscribe("private-p", R"(,"auth":")" + auth("12.34:private-p") + "\"");
  a = h.drain();
  h.s.handle_result(engine_reply{.request = a[0].request}, 0);
  h.drain();
  h.s.handle_text(R"({"event":"client-x","channel":"private-p","data":{"a":1}})", 1000);
  a = h.drain();
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind, session_action_kind::publish);
  EXPECT_EQ(a[0].channel, "app:private-p");
  auto ev = from_hub_data(a[0].data);
  EXPECT_EQ(ev.event, "client-x");
  EXPECT_EQ(ev.data, R"({"a":1})");
  EXPECT_EQ(ev.socket_id, "12.34");   // never echoed to the sender
  EXPECT_EQ(ev.user_id, "");           // a private channel has no member
  h.s.handle_text(R"({"event":"client-x","channel":"private-p","data":"s"})", 1000);
  EXPECT_EQ(h.drain().size(), 1u);
  h.s.handle_text(R"({"event":"client-x","channel":"private-p","data":"s"})", 1000);   // third within the second
  auto out = h.sent();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(contains(out[0], "4301"));
  h.s.handle_text(R"({"event":"client-x","channel":"private-p","data":"s"})", 1600);   // refilled
  EXPECT_EQ(h.drain().at(0).kind, session_action_kind::publish);
  h.s.handle_text(R"({"event":"client-x","channel":"private-p","data":")" + std::string(101, 'x') + "\"}", 5000);
  EXPECT_TRUE(contains(h.sent().at(0), "over 100 bytes"));
}

TEST(PusherSession, SigninAllowsTheUsersOwnChannelOnly) {
  harness h;
  h.drain();
  h.subscribe("#server-to-user-u1");
  EXPECT_TRUE(contains(h.sent().at(0), "AuthError"));
  std::string ud = R"({"id":"u1"})";
  std::string m = R"({"event":"pusher:signin","data":{"auth":")" + auth("12.34::user::" + ud) + R"(","user_data":)";
  append_json_string(m, ud);
  m += "}}";
  h.s.handle_text(m, 0);
  EXPECT_TRUE(contains(h.sent().at(0), "pusher:signin_success"));
  EXPECT_EQ(h.s.user(), "u1");
  auto n = h.s.poll_note();
  ASSERT_TRUE(n);
  EXPECT_EQ(n->what, note::kind::signed_in);
  h.subscribe("#server-to-user-u2");
  EXPECT_TRUE(contains(h.sent().at(0), "AuthError"));
  h.subscribe("#server-to-user-u1");
  EXPECT_EQ(h.drain().at(0).kind, session_action_kind::subscribe);
}

TEST(PusherSession, BadSigninClosesWith4009) {
  harness h;
  h.drain();
  h.s.handle_text(R"({"event":"pusher:signin","data":{"auth":"key:nope","user_data":"{\"id\":\"u1\"}"}})", 0);
  auto a = h.drain();
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[1].kind, session_action_kind::close);
  EXPECT_EQ(static_cast<int>(a[1].close_code), 4009);
}

TEST(PusherSession, ServerDisconnectCodes) {
  {
    harness h;
    h.drain();
    h.s.disconnect(code::shutting_down, "bye", true);
    auto a = h.drain();
    EXPECT_EQ(static_cast<int>(a.back().close_code), 4200);
  }
  {
    harness h;
    h.drain();
    h.s.disconnect(code::disconnected_by_server, "terminated", false);
    EXPECT_EQ(static_cast<int>(h.drain().back().close_code), 4009);
  }
  {
    harness h;
    h.drain();
    h.s.disconnect(code::slow_consumer, "slow", true);
    EXPECT_EQ(static_cast<int>(h.drain().back().close_code), 4100);
  }
}

TEST(PusherMapping, RoundTrips) {
  auto obj = from_hub_data(hub_data("ev", R"({"a":[1,2]})", "1.2"));
  EXPECT_EQ(obj.event, "ev");
  EXPECT_EQ(obj.data, R"({"a":[1,2]})");
  EXPECT_EQ(obj.socket_id, "1.2");
  EXPECT_EQ(hub_data("ev", R"({"a":1})"), R"({"event":"ev","data":{"a":1}})");   // Pushwire clients get the object
  for (std::string_view d : {"plain", "123", "\"q\"", " {\"a\":1}", "{bad", "", "null"}) {
    auto v = from_hub_data(hub_data("e", d));
    EXPECT_EQ(v.data, d);
    EXPECT_TRUE(v.socket_id.empty());
  }
  auto presence = from_hub_data(hub_data("client-x", "{}", "1.2", "u7"));
  EXPECT_EQ(presence.user_id, "u7");
  std::string msg;
  pusher_session::encode_message(msg, presence.event, "presence-r", presence.data, presence.user_id);
  EXPECT_EQ(msg, R"({"event":"client-x","channel":"presence-r","data":"{}","user_id":"u7"})");
  auto other = from_hub_data(R"({"x":1})");
  EXPECT_EQ(other.event, "message");
  EXPECT_EQ(other.data, R"({"x":1})");
}

}  // namespace

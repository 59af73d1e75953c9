// The server session machine, driven without I/O: inputs in, actions out, time as an argument.
#include "protocol/server_session.hpp"

#include <gtest/gtest.h>

#include "protocol/frame_codec.hpp"

using namespace pushwire::protocol;

namespace {

session_policy policy() {
  session_policy p;
  p.namespaces.push_back(namespace_policy{"demo", true, true, true, false});
  p.namespaces.push_back(namespace_policy{"secret", false, false, false, true});
  p.max_subscriptions = 2;
  p.max_message_bytes = 10;
  p.handshake_timeout_ms = 100;
  return p;
}

verified_token verify(std::string_view token, std::uint64_t) {
  if (token == "alice") return {code::ok, "", "alice", {"secret:*"}, false};
  if (token == "old") return {code::token_expired, "expired", "", {}, false};
  if (token == "short") return {code::ok, "", "bob", {}, false, 100000};   // accepted for 100 s more
  return {code::unauthorized, "bad signature", "", {}, false};
}

struct harness {
  server_session s{policy(), verify, session_info{"c1", true}, 0};
  std::vector<session_action> drain() {
    std::vector<session_action> out;
    while (auto a = s.poll_action()) out.push_back(std::move(*a));
    return out;
  }
  frame sent(const session_action& a) {
    EXPECT_EQ(a.kind, session_action_kind::send);
    frame f;
    decode_error e;
    std::string_view t(a.text);
    t.remove_suffix(1);
    EXPECT_TRUE(decode_frame(t, f, e)) << a.text << e.reason;
    return f;
  }
  void connect(std::string token = "") {
    s.handle_text(token.empty() ? R"({"cmd":"connect","id":1})" : R"({"cmd":"connect","id":1,"token":")" + token + "\"}", 1);
    auto a = drain();
    ASSERT_EQ(a.size(), 1u);
    ASSERT_EQ(sent(a[0]).kind, frame_kind::connected);
  }
};

}  // namespace

TEST(ServerSession, ConnectAnonymous) {
  harness h;
  EXPECT_EQ(h.s.state(), session_state::awaiting_connect);
  h.s.handle_text(R"({"cmd":"connect","id":1})", 1);
  auto a = h.drain();
  ASSERT_EQ(a.size(), 1u);
  auto f = h.sent(a[0]);
  EXPECT_EQ(f.kind, frame_kind::connected);
  EXPECT_EQ(f.client, "c1");
  EXPECT_EQ(f.id, 1u);
  EXPECT_EQ(h.s.state(), session_state::open);
  EXPECT_FALSE(h.s.next_deadline());
}

TEST(ServerSession, CommandBeforeConnectCloses) {
  harness h;
  h.s.handle_text(R"({"cmd":"subscribe","id":2,"channel":"a"})", 1);
  auto a = h.drain();
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(h.sent(a[0]).error_code, code::not_connected);
  EXPECT_EQ(a[1].kind, session_action_kind::close);
  EXPECT_EQ(a[1].close_code, code::not_connected);
}

TEST(ServerSession, HandshakeTimeout) {
  harness h;
  EXPECT_EQ(h.s.next_deadline(), 100u);
  h.s.handle_timeout(99);
  EXPECT_TRUE(h.drain().empty());
  h.s.handle_timeout(100);
  auto a = h.drain();
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[1].close_code, code::timeout);
}

TEST(ServerSession, MalformedFrameCloses4000) {
  harness h;
  h.connect();
  h.s.handle_text("{not json", 2);
  auto a = h.drain();
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(h.sent(a[0]).error_code, code::bad_frame);
  EXPECT_EQ(a[1].close_code, code::bad_frame);
  h.s.handle_text(R"({"cmd":"connect"})", 3);   // ignored while closing
  EXPECT_TRUE(h.drain().empty());
}

TEST(ServerSession, UnknownCommandKeepsConnection) {
  harness h;
  h.connect();
  h.s.handle_text(R"({"cmd":"fly","id":3})", 2);
  auto a = h.drain();
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(h.sent(a[0]).error_code, code::unknown_command);
  EXPECT_EQ(h.s.state(), session_state::open);
}

TEST(ServerSession, TokenErrors) {
  for (auto [tok, want] : {std::pair{"old", code::token_expired}, std::pair{"forged", code::unauthorized}}) {
    harness h;
    h.s.handle_text(std::string(R"({"cmd":"connect","id":1,"token":")") + tok + "\"}", 1);
    auto a = h.drain();
    ASSERT_EQ(a.size(), 2u);
    EXPECT_EQ(h.sent(a[0]).error_code, want);
    EXPECT_EQ(a[1].close_code, want);
  }
}

TEST(ServerSession, SubscribeFlowAndReplyFrame) {
  harness h;
  h.connect();
  h.s.handle_text(R"({"cmd":"subscribe","id":2,"channel":"demo:x","since":{"epoch":"ab","offset":4}})", 2);
  auto a = h.drain();
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind, session_action_kind::subscribe);
  EXPECT_EQ(a[0].channel, "demo:x");
  ASSERT_TRUE(a[0].since);
  EXPECT_EQ(a[0].since->offset, 4u);
  EXPECT_TRUE(a[0].join_presence);   // anonymous presence in demo
  h.s.handle_result(engine_reply{.request = a[0].request, .pos = {"ab", 6}, .recovered = true}, 3);
  auto b = h.drain();
  ASSERT_EQ(b.size(), 1u);
  auto f = h.sent(b[0]);
  EXPECT_EQ(f.kind, frame_kind::subscribed);
  EXPECT_EQ(f.pos.offset, 6u);
  EXPECT_EQ(f.recovered, true);
  EXPECT_TRUE(h.s.subscribed("demo:x"));
  // Already subscribed.
  h.s.handle_text(R"({"cmd":"subscribe","id":3,"channel":"demo:x"})", 4);
  auto c = h.drain();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(h.sent(c[0]).error_code, code::already_subscribed);
}

TEST(ServerSession, ChannelRules) {
  harness h;
  h.connect();
  auto one_error = [&](std::string text) {
    h.s.handle_text(text, 2);
    auto a = h.drain();
    EXPECT_EQ(a.size(), 1u);
    return a.empty() ? code::ok : h.sent(a[0]).error_code;
  };
  EXPECT_EQ(one_error(R"({"cmd":"subscribe","id":2,"channel":"bad name"})"), code::bad_channel);
  EXPECT_EQ(one_error(R"({"cmd":"subscribe","id":2,"channel":"nope:x"})"), code::bad_channel);
  EXPECT_EQ(one_error(R"({"cmd":"subscribe","id":2,"channel":"private-x"})"), code::permission_denied);
  EXPECT_EQ(one_error(R"({"cmd":"subscribe","id":2,"channel":"secret:x"})"), code::permission_denied);
  EXPECT_EQ(one_error(R"({"cmd":"publish","id":2,"channel":"x","data":1})"), code::permission_denied);
  EXPECT_EQ(one_error(R"({"cmd":"presence","id":2,"channel":"x"})"), code::permission_denied);
  EXPECT_EQ(one_error(R"({"cmd":"unsubscribe","id":2,"channel":"x"})"), code::not_subscribed);
  EXPECT_EQ(one_error(R"({"cmd":"drop","id":2})"), code::permission_denied);
}

TEST(ServerSession, GrantFromToken) {
  harness h;
  h.connect("alice");
  EXPECT_EQ(h.s.user(), "alice");
  h.s.handle_text(R"({"cmd":"subscribe","id":2,"channel":"secret:x"})", 2);
  auto a = h.drain();
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind, session_action_kind::subscribe);
  EXPECT_FALSE(a[0].join_presence);
}

TEST(ServerSession, MaxSubscriptions) {
  harness h;
  h.connect();
  h.s.handle_text("{\"cmd\":\"subscribe\",\"id\":2,\"channel\":\"a\"}\n{\"cmd\":\"subscribe\",\"id\":3,\"channel\":\"b\"}\n"
                  "{\"cmd\":\"subscribe\",\"id\":4,\"channel\":\"c\"}",
                  2);
  auto a = h.drain();
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].kind, session_action_kind::subscribe);
  EXPECT_EQ(a[1].kind, session_action_kind::subscribe);
  EXPECT_EQ(h.sent(a[2]).error_code, code::too_many_subscriptions);
  // A failed engine subscribe frees the slot.
  h.s.handle_result(engine_reply{.request = a[0].request, .error = code::internal_error, .reason = "x"}, 3);
  EXPECT_FALSE(h.s.subscribed("a"));
}

TEST(ServerSession, PublishSizeExactlyNPasses) {
  harness h;
  h.connect();
  h.s.handle_text(R"({"cmd":"publish","id":2,"channel":"demo:x","data":"12345678"})", 2);   // 10 bytes
  auto a = h.drain();
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind, session_action_kind::publish);
  EXPECT_EQ(a[0].data, "\"12345678\"");
  h.s.handle_text(R"({"cmd":"publish","id":3,"channel":"demo:x","data":"123456789"})", 2);  // 11 bytes
  auto b = h.drain();
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(h.sent(b[0]).error_code, code::message_too_large);
  h.s.handle_result(engine_reply{.request = a[0].request, .pos = {"ab", 1}}, 3);
  auto c = h.drain();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(h.sent(c[0]).kind, frame_kind::published);
}

TEST(ServerSession, DisconnectSendsFrameThenCloses) {
  harness h;
  h.connect();
  h.s.disconnect(code::shutting_down, "bye", true, 1500);
  auto a = h.drain();
  ASSERT_EQ(a.size(), 2u);
  auto f = h.sent(a[0]);
  EXPECT_EQ(f.kind, frame_kind::disconnect);
  EXPECT_EQ(f.error_code, code::shutting_down);
  EXPECT_TRUE(f.reconnect);
  EXPECT_EQ(f.after_ms, 1500u);
  EXPECT_EQ(a[1].kind, session_action_kind::close);
  h.s.shell_closed();
  EXPECT_EQ(h.s.state(), session_state::closed);
}

TEST(ServerSession, ChannelGrantPatterns) {
  EXPECT_TRUE(channel_granted({"chat:*"}, "chat:x"));
  EXPECT_FALSE(channel_granted({"chat:*"}, "news:x"));
  EXPECT_TRUE(channel_granted({"a", "b"}, "b"));
  EXPECT_TRUE(channel_granted({"*"}, "private-x"));
}

TEST(ServerSession, ExpiringTokenIsWarnedThenDisconnectedWith4005) {
  harness h;
  h.connect("short");   // at t=1: expires at 100001, warned 30 s before
  EXPECT_EQ(h.s.next_deadline(), 70001u);
  h.s.handle_timeout(70000);
  EXPECT_TRUE(h.drain().empty());
  h.s.handle_timeout(70001);
  auto warn = h.drain();
  ASSERT_EQ(warn.size(), 1u);
  auto f = h.sent(warn[0]);
  EXPECT_EQ(f.kind, frame_kind::error);
  EXPECT_EQ(f.id, 0u);
  EXPECT_EQ(f.error_code, code::token_expired);
  EXPECT_EQ(warn[0].error, code::token_expired);   // the action names the code too (the shell's metrics)
  EXPECT_EQ(h.s.state(), session_state::open);   // still open: time to reconnect with a fresh token
  EXPECT_EQ(h.s.next_deadline(), 100001u);
  h.s.handle_timeout(100000);
  EXPECT_TRUE(h.drain().empty());
  h.s.handle_timeout(100001);
  auto cut = h.drain();
  ASSERT_EQ(cut.size(), 2u);
  auto d = h.sent(cut[0]);
  EXPECT_EQ(d.kind, frame_kind::disconnect);
  EXPECT_EQ(d.error_code, code::token_expired);
  EXPECT_TRUE(d.reconnect);
  EXPECT_EQ(cut[0].error, code::ok);   // only an `error` frame carries one
  EXPECT_EQ(cut[1].kind, session_action_kind::close);
  EXPECT_EQ(cut[1].close_code, code::token_expired);
  EXPECT_FALSE(h.s.next_deadline());
}

TEST(ServerSession, TokenWithoutExpiryAndAnonymousHaveNoDeadline) {
  harness a;
  a.connect("alice");
  EXPECT_FALSE(a.s.next_deadline());
  harness b;
  b.connect();
  EXPECT_FALSE(b.s.next_deadline());
}

// Issue 18, defect 10: a batch over max_batch is refused before any command runs.
TEST(ServerSession, BatchOverTheLimitRunsNothing) {
  harness h;
  auto p = policy();
  p.max_batch = 3;
  h.s = server_session{p, verify, session_info{"c1", true}, 0};
  h.connect();
  std::string four;
  for (int i = 0; i < 4; ++i) four += R"({"cmd":"publish","id":)" + std::to_string(10 + i) + R"(,"channel":"demo:x","data":1})" + "\n";
  h.s.handle_text(four, 2);
  auto a = h.drain();
  for (auto& x : a) EXPECT_NE(x.kind, session_action_kind::publish) << "a publish of the refused batch ran";
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(h.sent(a[0]).error_code, code::bad_frame);
  EXPECT_EQ(h.s.state(), session_state::closing);
}

// Issue 18, defect 2: subscribes and unsubscribes share a per-connection token bucket.
TEST(ServerSession, SubscriptionChurnIsRateLimited) {
  harness h;
  auto p = policy();
  p.max_subscriptions = 100;
  p.churn_burst = 4;
  p.churn_per_s = 2;
  h.s = server_session{p, verify, session_info{"c1", true}, 0};
  h.connect();
  auto sub = [&](int id, std::uint64_t now) {
    h.s.handle_text(R"({"cmd":"subscribe","id":)" + std::to_string(id) + R"(,"channel":"n)" + std::to_string(id) + "\"}", now);
    auto a = h.drain();
    EXPECT_EQ(a.size(), 1u);
    return a.empty() ? session_action_kind::send : a[0].kind;
  };
  for (int i = 0; i < 4; ++i) EXPECT_EQ(sub(i, 10), session_action_kind::subscribe) << i;   // the burst
  h.s.handle_text(R"({"cmd":"subscribe","id":50,"channel":"over"})", 10);
  auto refused = h.drain();
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(h.sent(refused[0]).error_code, code::rate_limited);
  EXPECT_EQ(h.s.state(), session_state::open);   // the connection stays
  EXPECT_FALSE(h.s.subscribed("over"));
  EXPECT_EQ(sub(60, 510), session_action_kind::subscribe);   // 500 ms at 2/s: one more
  EXPECT_EQ(sub(61, 510), session_action_kind::send);        // and no more
  h.s.handle_text(R"({"cmd":"unsubscribe","id":70,"channel":"n0"})", 510);   // unsubscribes count too
  auto u = h.drain();
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(h.sent(u[0]).error_code, code::rate_limited);
}

namespace {

// A session (one-way: an SSE stream's) connected and subscribed to demo:x, whose subscribe the hub
// refuses with `error`: the actions that follow, and the session's state after them.
struct refused_subscribe {
  std::vector<session_action> out;
  session_state state;
};
refused_subscribe refuse_subscribe(bool two_way, code error) {
  server_session s{policy(), verify, session_info{"c1", two_way}, 0};
  s.handle_command(command{.kind = command_kind::connect}, 1);
  while (s.poll_action()) {}
  s.handle_command(command{.kind = command_kind::subscribe, .channel = "demo:x"}, 2);
  auto req = s.poll_action();
  EXPECT_TRUE(req && req->kind == session_action_kind::subscribe);
  s.handle_result(engine_reply{.request = req ? req->request : 0, .error = error, .reason = "refused"}, 3);
  refused_subscribe r;
  while (auto a = s.poll_action()) r.out.push_back(std::move(*a));
  r.state = s.state();
  return r;
}

}  // namespace

// An SSE stream is its URL's channels: one refused because the engine (Redis, the data dir) is
// away ends the stream with reconnect advice, so a plain EventSource asks again.
TEST(ServerSession, OneWayStreamWhoseSubscribeFindsTheEngineAwayIsEndedToBeRetried) {
  harness h;
  for (bool two_way : {false, true}) {
    SCOPED_TRACE(two_way ? "two-way" : "one-way");
    auto [out, state] = refuse_subscribe(two_way, code::storage_unavailable);
    ASSERT_GE(out.size(), 1u);
    EXPECT_EQ(h.sent(out[0]).error_code, code::storage_unavailable);
    if (two_way) {
      EXPECT_EQ(out.size(), 1u);   // told, connection kept
      EXPECT_EQ(state, session_state::open);
      continue;
    }
    ASSERT_EQ(out.size(), 3u);
    auto d = h.sent(out[1]);
    EXPECT_EQ(d.kind, frame_kind::disconnect);
    EXPECT_EQ(d.error_code, code::storage_unavailable);
    EXPECT_TRUE(d.reconnect);
    EXPECT_EQ(out[2].kind, session_action_kind::close);
  }
}

// Any other refusal of a one-way stream's channel is the channel's answer, not the engine's
// absence: told, the stream goes on.
TEST(ServerSession, OneWayStreamKeepsGoingAfterAnotherSubscribeRefusal) {
  auto [out, state] = refuse_subscribe(false, code::too_many_channels);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(state, session_state::open);
}

// End-to-end tests against an in-process server on 127.0.0.1 (ephemeral port), real sockets.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <thread>

#include "server/ops/jwt.hpp"
#include "server/app/server.hpp"
#include "test_client.hpp"

using namespace test;
using pushwire::protocol::code;
using pushwire::protocol::frame_kind;
namespace ps = pushwire::server;

namespace {

ps::config base_config() {
  ps::config c;
  c.port = 0;
  c.threads = 2;
  c.api_key = "key";
  c.token_secret = "secret";
  c.log_level = "warn";
  c.history_size = 5;
  c.max_message_bytes = 100;
  // Generous, so a loaded machine (sanitizers, parallel CTest) cannot trip them; the tests of these
  // timeouts set them short themselves (short_timeouts()).
  c.handshake_timeout_ms = 5000;
  c.request_timeout_ms = 5000;
  c.housekeeping_ms = 20;
  c.poll_hold_ms = 300;
  c.shutdown_timeout_ms = 1000;
  c.namespaces["demo"] = ps::namespace_config{5, 300000, true, true, true, false};
  c.namespaces["priv"] = ps::namespace_config{5, 300000, false, false, false, true};
  return c;
}

ps::config short_timeouts() {
  auto c = base_config();
  c.handshake_timeout_ms = 300;
  c.request_timeout_ms = 400;
  return c;
}


// Publishes into `channel` from its own thread until stopped; `last` is the newest offset published.
struct publisher {
  publisher(unsigned short port, std::string channel) : channel_(std::move(channel)) {
    thread_ = std::thread([this, port] {
      api_client c(port);
      for (int n = 0; !stop_.load(); ++n) {
        auto r = c.post("/api/publish", R"({"channel":")" + channel_ + R"(","data":{"n":)" + std::to_string(n) + "}}");
        if (r.status != 200) { failed.store(true); return; }
        auto p = r.body.find("\"offset\":");
        last.store(std::stoull(r.body.substr(p + 9)));
        if (epoch.empty()) {
          auto e = r.body.find("\"epoch\":\"");
          std::lock_guard lk(mu);
          epoch = r.body.substr(e + 9, r.body.find('"', e + 9) - e - 9);
        }
      }
    });
  }
  ~publisher() { stop(); }
  void stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  // Waits (with a deadline) until at least `n` messages were published.
  bool wait_for(std::uint64_t n, std::chrono::milliseconds d = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + d;
    while (last.load() < n && !failed.load())
      if (std::chrono::steady_clock::now() > deadline) return false; else std::this_thread::yield();
    return last.load() >= n;
  }
  std::string get_epoch() { std::lock_guard lk(mu); return epoch; }
  std::atomic<std::uint64_t> last{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::string epoch;

 private:
  std::string channel_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class Server : public ::testing::Test {
 protected:
  void start(ps::config c = base_config()) {
    srv_ = std::make_unique<ps::server>(std::move(c));
    std::string err;
    ASSERT_TRUE(srv_->start(err)) << err;
    port = srv_->port();
  }
  void SetUp() override { start(); }
  void TearDown() override {
    if (srv_) srv_->shutdown();
  }
  http_result publish(const std::string& channel, const std::string& data, std::string key = "key") {
    return http_call(port, http::verb::post, "/api/publish", R"({"channel":")" + channel + R"(","data":)" + data + "}",
                     {{"Authorization", "Bearer " + key}});
  }
  std::uint64_t publish_offset(const std::string& channel, int n) {
    auto r = publish(channel, "{\"n\":" + std::to_string(n) + "}");
    EXPECT_EQ(r.status, 200u) << r.body;
    auto pos = r.body.find("\"offset\":");
    return std::stoull(r.body.substr(pos + 9));
  }
  std::string epoch_of(const std::string& body) {
    auto p = body.find("\"epoch\":\"");
    return body.substr(p + 9, body.find('"', p + 9) - p - 9);
  }
  std::string token(std::string user, std::int64_t exp_offset = 3600, std::vector<std::string> channels = {}) {
    ps::token_claims c;
    c.user = std::move(user);
    c.exp = static_cast<std::int64_t>(time(nullptr)) + exp_offset;
    c.channels = std::move(channels);
    c.restricts_channels = !c.channels.empty();
    return ps::sign_jwt(c, "secret");
  }
  std::unique_ptr<ps::server> srv_;
  unsigned short port = 0;
};

// ---- WebSocket ----

TEST_F(Server, WsSubscribeReceivesApiPublish) {
  ws_client c(port);
  ASSERT_TRUE(c.ok());
  auto f = c.connect();
  ASSERT_EQ(f.kind, frame_kind::connected) << f.reason;
  c.send(R"({"cmd":"subscribe","id":2,"channel":"news"})");
  f = c.next_non_ping();
  ASSERT_EQ(f.kind, frame_kind::subscribed) << f.reason;
  EXPECT_EQ(f.pos.offset, 0u);
  publish_offset("news", 1);
  f = c.next_non_ping();
  ASSERT_EQ(f.kind, frame_kind::message) << f.reason;
  EXPECT_EQ(f.data, "{\"n\":1}");
  EXPECT_EQ(f.pos.offset, 1u);
}

TEST_F(Server, WsClientPublishWhereAllowed) {
  ws_client c(port);
  c.connect();
  c.send(R"({"cmd":"subscribe","id":2,"channel":"demo:chat"})");
  ASSERT_EQ(c.next_non_ping().kind, frame_kind::subscribed);
  c.send(R"({"cmd":"publish","id":3,"channel":"demo:chat","data":{"t":"hi"}})");
  bool got_pub = false, got_msg = false;
  for (int i = 0; i < 4 && !(got_pub && got_msg); ++i) {
    auto f = c.next_non_ping();
    if (f.kind == frame_kind::published) got_pub = f.id == 3;
    if (f.kind == frame_kind::message) got_msg = f.data == "{\"t\":\"hi\"}";
    ASSERT_NE(f.error_code, code::internal_error) << f.reason;
  }
  EXPECT_TRUE(got_pub && got_msg);
  c.send(R"({"cmd":"publish","id":4,"channel":"news","data":1})");
  auto f = c.next_non_ping();
  EXPECT_EQ(f.kind, frame_kind::error);
  EXPECT_EQ(f.error_code, code::permission_denied);
}

TEST_F(Server, WsResumeAfterCutIsExactlyOnceInOrder) {
  std::string epoch;
  std::uint64_t last = 0;
  {
    ws_client c(port);
    c.connect();
    c.send(R"({"cmd":"subscribe","id":2,"channel":"scores"})");
    auto s = c.next_non_ping();
    epoch = s.pos.epoch;
    publish_offset("scores", 1);
    publish_offset("scores", 2);
    for (int i = 0; i < 2; ++i) {
      auto f = c.next_non_ping();
      ASSERT_EQ(f.kind, frame_kind::message);
      last = f.pos.offset;
    }
    c.close();
  }
  publish_offset("scores", 3);
  publish_offset("scores", 4);
  ws_client c(port);
  c.connect();
  c.send(R"({"cmd":"subscribe","id":2,"channel":"scores","since":{"epoch":")" + epoch + R"(","offset":)" +
         std::to_string(last) + "}}");
  auto s = c.next_non_ping();
  ASSERT_EQ(s.kind, frame_kind::subscribed);
  EXPECT_EQ(s.recovered, true);
  EXPECT_EQ(s.pos.offset, 4u);
  publish_offset("scores", 5);
  for (std::uint64_t want = 3; want <= 5; ++want) {
    auto f = c.next_non_ping();
    ASSERT_EQ(f.kind, frame_kind::message) << f.reason;
    EXPECT_EQ(f.pos.offset, want);
  }
}

TEST_F(Server, WsGapLargerThanHistoryIsNotRecovered) {
  auto r = publish("gap", "0");
  std::string epoch = epoch_of(r.body);
  for (int i = 1; i <= 8; ++i) publish_offset("gap", i);   // history holds 5
  ws_client c(port);
  c.connect();
  c.send(R"({"cmd":"subscribe","id":2,"channel":"gap","since":{"epoch":")" + epoch + R"(","offset":1}})");
  auto s = c.next_non_ping();
  ASSERT_EQ(s.kind, frame_kind::subscribed);
  EXPECT_EQ(s.recovered, false);
  EXPECT_EQ(s.pos.offset, 9u);
  // No partial replay: the next frame is a live one.
  publish_offset("gap", 10);
  auto f = c.next_non_ping();
  EXPECT_EQ(f.pos.offset, 10u);
  // Another epoch is not recovered either.
  ws_client d(port);
  d.connect();
  d.send(R"({"cmd":"subscribe","id":2,"channel":"gap","since":{"epoch":"zzz","offset":9}})");
  EXPECT_EQ(d.next_non_ping().recovered, false);
}

TEST_F(Server, WsHandshakeTimeoutAndConnectFirst) {
  TearDown();
  start(short_timeouts());
  ws_client c(port);
  auto f = c.next();
  EXPECT_EQ(f.kind, frame_kind::error);
  EXPECT_EQ(f.error_code, code::timeout);
  c.next();
  EXPECT_EQ(c.close_reason().code, 4016);
  ws_client d(port);
  d.send(R"({"cmd":"subscribe","id":2,"channel":"x"})");
  EXPECT_EQ(d.next().error_code, code::not_connected);
}

TEST_F(Server, WsMalformedFrameAndMessageSizes) {
  ws_client c(port);
  c.connect();
  // Payload of exactly 100 bytes passes, 101 is refused with 4007.
  std::string exact = "\"" + std::string(98, 'a') + "\"";
  std::string over = "\"" + std::string(99, 'a') + "\"";
  c.send(R"({"cmd":"publish","id":2,"channel":"demo:s","data":)" + exact + "}");
  auto f = c.next_non_ping();
  EXPECT_EQ(f.kind, frame_kind::published) << f.reason;
  c.send(R"({"cmd":"publish","id":3,"channel":"demo:s","data":)" + over + "}");
  f = c.next_non_ping();
  EXPECT_EQ(f.error_code, code::message_too_large);
  c.send("{not json");
  f = c.next_non_ping();
  EXPECT_EQ(f.error_code, code::bad_frame);
  c.next();
  EXPECT_EQ(c.close_reason().code, 4000);
  // A frame over the limit (payload limit + envelope allowance = 740 bytes here) closes with 1009.
  // It is small enough to arrive in one read: had the server closed with unread bytes of it in its
  // receive buffer, the kernel would reset the connection and the client could lose the close frame.
  ws_client d(port);
  d.connect();
  d.send(std::string(1000, ' '));
  d.next();
  EXPECT_EQ(d.close_reason().code, 1009);
}

TEST_F(Server, WsTokensAndPrivateChannels) {
  {
    ws_client c(port);
    auto f = c.connect(token("alice", -3600));
    EXPECT_EQ(f.error_code, code::token_expired);
  }
  {
    ws_client c(port);
    auto t = token("alice");
    t.back() = t.back() == 'A' ? 'B' : 'A';
    EXPECT_EQ(c.connect(t).error_code, code::unauthorized);
  }
  {
    ws_client c(port);
    c.connect(token("bob"));
    c.send(R"({"cmd":"subscribe","id":2,"channel":"private-x"})");
    EXPECT_EQ(c.next_non_ping().error_code, code::permission_denied);
    c.send(R"({"cmd":"subscribe","id":3,"channel":"priv:x"})");
    EXPECT_EQ(c.next_non_ping().error_code, code::permission_denied);
  }
  ws_client c(port);
  auto f = c.connect(token("carol", 3600, {"priv:*", "private-x"}));
  EXPECT_EQ(f.user, "carol");
  c.send(R"({"cmd":"subscribe","id":2,"channel":"priv:x"})");
  EXPECT_EQ(c.next_non_ping().kind, frame_kind::subscribed);
}

TEST_F(Server, PresenceJoinLeaveAndList) {
  ws_client a(port), b(port);
  a.connect(token("alice"));
  a.send(R"({"cmd":"subscribe","id":2,"channel":"demo:room"})");
  ASSERT_EQ(a.next_non_ping().kind, frame_kind::subscribed);
  EXPECT_EQ(a.next_non_ping().kind, frame_kind::join);   // itself
  b.connect(token("bob"));
  b.send(R"({"cmd":"subscribe","id":2,"channel":"demo:room"})");
  ASSERT_EQ(b.next_non_ping().kind, frame_kind::subscribed);
  auto j = a.next_non_ping();
  EXPECT_EQ(j.kind, frame_kind::join);
  EXPECT_NE(j.data.find("\"bob\""), std::string::npos);
  a.send(R"({"cmd":"presence","id":3,"channel":"demo:room"})");
  auto p = a.next_non_ping();
  EXPECT_EQ(p.kind, frame_kind::presence);
  EXPECT_NE(p.data.find("alice"), std::string::npos);
  EXPECT_NE(p.data.find("bob"), std::string::npos);
  auto api = http_call(port, http::verb::get, "/api/presence?channel=demo:room", {}, {{"Authorization", "Bearer key"}});
  EXPECT_NE(api.body.find("bob"), std::string::npos);
  b.close();
  auto l = a.next_non_ping();
  EXPECT_EQ(l.kind, frame_kind::leave);
  EXPECT_NE(l.data.find("\"bob\""), std::string::npos);
}

TEST_F(Server, SlowConsumerIsDisconnectedOthersKeepReceiving) {
  TearDown();
  auto cfg = base_config();
  cfg.queue_bytes = 256 * 1024;
  cfg.max_message_bytes = 60000;
  cfg.history_size = 1000;
  start(cfg);
  ws_client slow(port), fast(port);
  slow.connect();
  fast.connect();
  slow.send(R"({"cmd":"subscribe","id":2,"channel":"firehose"})");
  fast.send(R"({"cmd":"subscribe","id":2,"channel":"firehose"})");
  ASSERT_EQ(slow.next_non_ping().kind, frame_kind::subscribed);
  ASSERT_EQ(fast.next_non_ping().kind, frame_kind::subscribed);
  // Shrink the slow client's receive buffer so the server's queue fills quickly.
  int small = 4096;
  setsockopt(slow.stream().next_layer().native_handle(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  std::string big = "\"" + std::string(50000, 'x') + "\"";
  int received = 0;
  for (int i = 0; i < 1000 && srv_->stats().slow_consumer_disconnects.load() == 0; ++i) {
    ASSERT_EQ(publish("firehose", big).status, 200u);
    auto f = fast.next_non_ping();
    ASSERT_EQ(f.kind, frame_kind::message) << f.reason;
    ++received;
  }
  EXPECT_EQ(srv_->stats().slow_consumer_disconnects.load(), 1u);
  publish("firehose", "1");
  // The fast one drains whatever is in flight and still gets the newest.
  for (;;) {
    auto f = fast.next_non_ping();
    ASSERT_EQ(f.kind, frame_kind::message) << f.reason;
    if (f.data == "1") break;
  }
}

// The data path writes with its own sendmsg while Beast answers the client's pings: a pong must
// never land inside a data frame, even when the kernel takes a write only in part (the client reads
// nothing until 6 MB, more than the kernel's buffers hold, are queued for it, pinging after every
// publish), and a pong does not wait behind the whole queue (Beast reads nothing until it is out).
TEST_F(Server, WsPongsNeverSplitAPartlyWrittenFrame) {
  TearDown();
  auto cfg = base_config();
  cfg.queue_bytes = 16 << 20;
  cfg.max_message_bytes = 30000;
  cfg.history_size = 400;
  start(cfg);
  ws_client c(port);
  c.connect();
  c.send(R"({"cmd":"subscribe","id":2,"channel":"pp"})");
  ASSERT_EQ(c.next_non_ping().kind, frame_kind::subscribed);
  int pongs = 0;
  c.stream().control_callback([&](websocket::frame_type t, beast::string_view) {
    if (t == websocket::frame_type::pong) ++pongs;
  });
  int rcvbuf = 65536;
  setsockopt(c.stream().next_layer().native_handle(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  api_client api(port);
  const int n = 300;
  std::string pad(20000, 'x');
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(api.post("/api/publish", R"({"channel":"pp","data":{"n":)" + std::to_string(i) + R"(,"p":")" + pad + "\"}}").status, 200u);
    c.stream().ping({});
  }
  for (int i = 0; i < n; ++i) {
    auto f = c.next_non_ping();
    ASSERT_EQ(f.kind, frame_kind::message) << i << ": " << f.reason.substr(0, 200);
    ASSERT_TRUE(f.data.starts_with("{\"n\":" + std::to_string(i) + ",")) << f.data.substr(0, 40);
  }
  EXPECT_GT(pongs, 0);
}

// ---- SSE ----

// The SSE write path resumes a write the kernel took only in part: 6 MB (more than the kernel's
// buffers hold) queued for a client that reads nothing meanwhile arrive whole and in order.
TEST_F(Server, SseLargeBacklogArrivesWholeAfterPartialWrites) {
  TearDown();
  auto cfg = base_config();
  cfg.queue_bytes = 16 << 20;
  cfg.max_message_bytes = 30000;
  cfg.history_size = 400;
  start(cfg);
  sse_client s(port, "/sse?channels=big");
  ASSERT_EQ(s.status, 200u);
  ASSERT_NE(s.next_non_ping().data.find("connected"), std::string::npos);
  ASSERT_NE(s.next_non_ping().data.find("subscribed"), std::string::npos);
  int rcvbuf = 65536;
  setsockopt(s.socket().native_handle(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  api_client api(port);
  const int n = 300;
  std::string pad(20000, 'x');
  for (int i = 0; i < n; ++i)
    ASSERT_EQ(api.post("/api/publish", R"({"channel":"big","data":{"n":)" + std::to_string(i) + R"(,"p":")" + pad + "\"}}").status, 200u);
  for (int i = 0; i < n; ++i) {
    auto e = s.next_non_ping();
    ASSERT_FALSE(e.timeout) << i;
    auto f = parse(e.data);
    ASSERT_EQ(f.kind, frame_kind::message) << e.data.substr(0, 80);
    ASSERT_EQ(f.data, R"({"n":)" + std::to_string(i) + R"(,"p":")" + pad + "\"}");
  }
}

TEST_F(Server, SseSubscribeReceiveAndResumeViaLastEventId) {
  std::string last_id;
  {
    sse_client s(port, "/sse?channels=feed");
    ASSERT_EQ(s.status, 200u);
    auto e = s.next_non_ping();
    EXPECT_EQ(e.event, "control");
    EXPECT_NE(e.data.find("connected"), std::string::npos);
    e = s.next_non_ping();
    EXPECT_NE(e.data.find("subscribed"), std::string::npos);
    publish_offset("feed", 1);
    publish_offset("feed", 2);
    for (int i = 1; i <= 2; ++i) {
      e = s.next_non_ping();
      EXPECT_EQ(e.event, "");
      EXPECT_EQ(parse(e.data).pos.offset, static_cast<std::uint64_t>(i));
      last_id = e.id;
    }
    s.close();
  }
  publish_offset("feed", 3);
  publish_offset("feed", 4);
  // A plain EventSource reconnect: Last-Event-ID (wins over since=).
  sse_client s(port, "/sse?channels=feed&since=garbage0-0", {{"Last-Event-ID", last_id}});
  ASSERT_EQ(s.status, 200u);
  s.next_non_ping();   // connected
  auto sub = parse(s.next_non_ping().data);
  EXPECT_EQ(sub.kind, frame_kind::subscribed);
  EXPECT_EQ(sub.recovered, true);
  publish_offset("feed", 5);
  for (std::uint64_t want = 3; want <= 5; ++want) {
    auto e = s.next_non_ping();
    auto f = parse(e.data);
    ASSERT_EQ(f.kind, frame_kind::message) << e.data;
    EXPECT_EQ(f.pos.offset, want);
    EXPECT_EQ(e.id, f.pos.epoch + "-" + std::to_string(want));
  }
}

TEST_F(Server, SseGapAndBadTokenAndCmdPublish) {
  auto r = publish("sgap", "0");
  std::string epoch = epoch_of(r.body);
  for (int i = 0; i < 8; ++i) publish_offset("sgap", i);
  sse_client s(port, "/sse?channels=sgap,demo:c&since=" + epoch + "-1.~");
  ASSERT_EQ(s.status, 200u);
  s.next_non_ping();
  auto sub = parse(s.next_non_ping().data);
  EXPECT_EQ(sub.recovered, false);
  s.next_non_ping();   // demo:c subscribed
  // Client publish through /cmd.
  auto c = http_call(port, http::verb::post, "/cmd",
                     "{\"cmd\":\"connect\"}\n{\"cmd\":\"publish\",\"id\":4,\"channel\":\"demo:c\",\"data\":{\"t\":1}}\n");
  EXPECT_EQ(c.status, 200u);
  EXPECT_NE(c.body.find("\"published\""), std::string::npos) << c.body;
  for (;;) {
    auto e = s.next_non_ping();
    ASSERT_FALSE(e.timeout);
    if (e.event == "control") continue;   // join
    EXPECT_EQ(parse(e.data).data, "{\"t\":1}");
    EXPECT_EQ(std::count(e.id.begin(), e.id.end(), '.'), 1);
    break;
  }
  sse_client bad(port, "/sse?channels=a,b&since=x-1");
  EXPECT_EQ(bad.status, 400u);
  sse_client forged(port, "/sse?channels=a&token=abc.def.ghi");
  EXPECT_EQ(forged.status, 401u);
}


// Resume under load (browser report: one write carried the replay 41..45 and a presence join, the
// next started at 47). An SSE stream resumes with since= while a publisher thread keeps publishing
// through the API; every offset after since must arrive exactly once and in order, across many runs.
TEST_F(Server, SseResumeUnderLiveLoadIsExactlyOnceInOrder) {
  TearDown();
  auto cfg = base_config();
  cfg.namespaces["demo"].history_size = 100000;
  start(cfg);
  // Other subscribers on both I/O threads, so every publication is posted to every thread.
  sse_client other1(port, "/sse?channels=demo:load"), other2(port, "/sse?channels=demo:load");
  std::atomic<bool> stop_churn{false};
  std::thread churn([&] {
    while (!stop_churn.load()) {
      sse_client c(port, "/sse?channels=demo:load");
      c.next_non_ping();
      c.close();
      auto r = http_call(port, http::verb::get, "/poll?channels=demo:load&open=1");
    }
  });
  publisher pub(port, "demo:load");
  ASSERT_TRUE(pub.wait_for(5));
  std::string epoch = pub.get_epoch();
  for (int run = 0; run < 40; ++run) {
    std::uint64_t now = pub.last.load();
    std::uint64_t since = now > 5 ? now - 5 : 0;
    sse_client s(port, "/sse?channels=demo:load&since=" + epoch + "-" + std::to_string(since));
    ASSERT_EQ(s.status, 200u);
    std::uint64_t want = since + 1, until = now + 20;
    while (want <= until) {
      auto e = s.next_non_ping();
      ASSERT_FALSE(e.timeout) << "run " << run << " waiting for " << want;
      if (e.event == "control") continue;
      auto f = parse(e.data);
      ASSERT_EQ(f.kind, frame_kind::message) << e.data;
      ASSERT_EQ(f.pos.offset, want) << "run " << run;
      ASSERT_EQ(e.id, epoch + "-" + std::to_string(want));
      ++want;
    }
  }
  pub.stop();
  stop_churn = true;
  churn.join();
  EXPECT_FALSE(pub.failed.load());
}


// The browser's resume test over SSE: the server drops the stream (API disconnect) again and again
// while a publisher keeps going; the client resumes from the last offset it received.
TEST_F(Server, SseDropAndResumeUnderLoadLosesNothing) {
  TearDown();
  auto cfg = base_config();
  cfg.namespaces["demo"].history_size = 100000;
  start(cfg);
  publisher pub(port, "demo:drop");
  ASSERT_TRUE(pub.wait_for(3));
  std::string epoch = pub.get_epoch();
  std::uint64_t last = pub.last.load();
  for (int run = 0; run < 30; ++run) {
    sse_client s(port, "/sse?channels=demo:drop&since=" + epoch + "-" + std::to_string(last));
    ASSERT_EQ(s.status, 200u);
    int got = 0;
    bool dropped = false;
    for (;;) {
      auto e = s.next_non_ping();
      if (e.timeout) break;   // the server closed after its disconnect frame
      if (e.event == "control") {
        if (e.data.find("\"disconnect\"") != std::string::npos) dropped = true;
        continue;
      }
      auto f = parse(e.data);
      ASSERT_FALSE(dropped) << "message after disconnect";
      ASSERT_EQ(f.pos.offset, last + 1) << "run " << run;
      last = f.pos.offset;
      if (++got == 3) {
        auto r = http_call(port, http::verb::post, "/api/disconnect", R"({"all":true,"jitter_ms":0})", {{"Authorization", "Bearer key"}});
        ASSERT_EQ(r.status, 200u);
      }
    }
    ASSERT_TRUE(dropped) << "run " << run;
  }
}

// ---- Long-polling ----

TEST_F(Server, PollOpenParkResumeAndGap) {
  auto open = http_call(port, http::verb::get, "/poll?channels=lp&open=1");
  ASSERT_EQ(open.status, 200u);
  auto l = lines(open.body);
  ASSERT_EQ(l.size(), 2u) << open.body;
  EXPECT_EQ(parse(l[0]).kind, frame_kind::connected);
  std::string cursor(open.headers["Pushwire-Cursor"]);
  std::string client = "&client=" + parse(l[0]).client;   // later polls send the id back
  ASSERT_FALSE(cursor.empty());
  // Parked, answered by the first publish.
  std::thread pub([&] {
    // Publishes until the parked poll is there (observed through the gauge), without sleeping.
    for (int i = 0; i < 100000 && srv_->stats().parked_polls.load() == 0; ++i) std::this_thread::yield();
    publish_offset("lp", 1);
  });
  auto r = http_call(port, http::verb::get, "/poll?channels=lp&cursor=" + cursor + client);
  pub.join();
  ASSERT_EQ(r.status, 200u);
  auto f = parse(lines(r.body).at(0));
  EXPECT_EQ(f.kind, frame_kind::message) << r.body;
  cursor = std::string(r.headers["Pushwire-Cursor"]);
  // Cut while publishes continue: a cursor behind gets the missed messages at once, in order.
  publish_offset("lp", 2);
  publish_offset("lp", 3);
  r = http_call(port, http::verb::get, "/poll?channels=lp&cursor=" + cursor + client);
  l = lines(r.body);
  ASSERT_EQ(l.size(), 2u) << r.body;
  EXPECT_EQ(parse(l[0]).pos.offset, 2u);
  EXPECT_EQ(parse(l[1]).pos.offset, 3u);
  cursor = std::string(r.headers["Pushwire-Cursor"]);
  // Nothing new within the hold time: a ping.
  r = http_call(port, http::verb::get, "/poll?channels=lp&cursor=" + cursor + client);
  EXPECT_EQ(parse(lines(r.body).at(0)).kind, frame_kind::ping) << r.body;
  // Gap beyond history.
  for (int i = 0; i < 8; ++i) publish_offset("lp", i);
  r = http_call(port, http::verb::get, "/poll?channels=lp&cursor=" + cursor + client);
  auto s = parse(lines(r.body).at(0));
  EXPECT_EQ(s.kind, frame_kind::subscribed) << r.body;
  EXPECT_EQ(s.recovered, false);
  // Client publish over /cmd where allowed.
  auto c = http_call(port, http::verb::post, "/cmd",
                     "{\"cmd\":\"connect\"}\n{\"cmd\":\"publish\",\"id\":9,\"channel\":\"lp\",\"data\":1}\n");
  EXPECT_NE(c.body.find("4003"), std::string::npos) << c.body;
}


// Anonymous long-polls in a presence channel: one lease per client (the id from `connected`, sent
// back as client=), one presence member and one join for it, and its own join never wakes it.
TEST_F(Server, PollLeaseOneMemberOwnJoinDoesNotWake) {
  TearDown();
  auto cfg = base_config();
  cfg.presence_lease_ms = 700;   // hold (300) + grace
  start(cfg);
  ws_client watch(port);
  watch.connect();
  watch.send(R"({"cmd":"subscribe","id":2,"channel":"demo:lobby"})");
  ASSERT_EQ(watch.next_non_ping().kind, frame_kind::subscribed);
  ASSERT_EQ(watch.next_non_ping().kind, frame_kind::join);   // the watcher itself
  auto open = http_call(port, http::verb::get, "/poll?channels=demo:lobby&open=1");
  ASSERT_EQ(open.status, 200u);
  auto conn = parse(lines(open.body).at(0));
  ASSERT_EQ(conn.kind, frame_kind::connected) << open.body;
  std::string id = conn.client, cursor(open.headers["Pushwire-Cursor"]);
  auto j = watch.next_non_ping();
  ASSERT_EQ(j.kind, frame_kind::join);
  EXPECT_NE(j.data.find("\"" + id + "\""), std::string::npos) << j.data;
  for (int i = 0; i < 2; ++i) {
    // Parked for the whole hold time: nothing but a ping (its own join must not answer it).
    auto r = http_call(port, http::verb::get, "/poll?channels=demo:lobby&client=" + id + "&cursor=" + cursor);
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(r.body, "{\"type\":\"ping\"}\n");
  }
  auto pres = http_call(port, http::verb::get, "/api/presence?channel=demo:lobby", {}, {{"Authorization", "Bearer key"}});
  EXPECT_NE(pres.body.find("\"" + id + "\""), std::string::npos) << pres.body;
  EXPECT_EQ(std::count(pres.body.begin(), pres.body.end(), '{'), 3) << pres.body;   // outer + 2 members
  EXPECT_EQ(srv_->stats().connections_polling.load(), 1u);
  auto m = http_call(port, http::verb::get, "/metrics");
  EXPECT_NE(m.body.find("pushwire_connections{transport=\"polling\"} 1"), std::string::npos);
  // No further join; the lease expires (hold + grace) and the member leaves.
  auto l = watch.next_non_ping();
  EXPECT_EQ(l.kind, frame_kind::leave) << l.reason;
  EXPECT_NE(l.data.find("\"" + id + "\""), std::string::npos);
  EXPECT_EQ(srv_->stats().connections_polling.load(), 0u);
}

// client= must look like a server id; an unknown (or expired) one is answered like an opening poll:
// a fresh id, and `subscribed` with `recovered` per the cursor.
TEST_F(Server, PollUnknownOrMalformedClient) {
  auto open = http_call(port, http::verb::get, "/poll?channels=lu&open=1");
  std::string cursor(open.headers["Pushwire-Cursor"]);
  EXPECT_EQ(http_call(port, http::verb::get, "/poll?channels=lu&client=x1&cursor=" + cursor).status, 400u);
  publish_offset("lu", 1);
  auto r = http_call(port, http::verb::get, "/poll?channels=lu&client=c999999&cursor=" + cursor);
  auto l = lines(r.body);
  ASSERT_EQ(l.size(), 3u) << r.body;
  auto c = parse(l[0]);
  EXPECT_EQ(c.kind, frame_kind::connected);
  EXPECT_NE(c.client, "c999999");
  auto sub = parse(l[1]);
  EXPECT_EQ(sub.kind, frame_kind::subscribed);
  EXPECT_EQ(sub.recovered, true);
  EXPECT_EQ(parse(l[2]).pos.offset, 1u);
}

// /api/disconnect reaches polling clients: between polls (the next poll gets the frame at once) and
// while parked (answered at once).
TEST_F(Server, ApiDisconnectReachesPollingClients) {
  TearDown();
  auto cfg = base_config();
  cfg.poll_hold_ms = 20000;   // a parked poll answered before this is answered by the disconnect
  start(cfg);
  auto open = http_call(port, http::verb::get, "/poll?channels=ld&open=1&token=" + token("erin"));
  std::string id = parse(lines(open.body).at(0)).client, cursor(open.headers["Pushwire-Cursor"]);
  auto d = http_call(port, http::verb::post, "/api/disconnect", R"({"client":")" + id + R"(","after_ms":7,"jitter_ms":0})",
                     {{"Authorization", "Bearer key"}});
  EXPECT_EQ(d.body, "{\"disconnected\":1}");
  auto r = http_call(port, http::verb::get, "/poll?channels=ld&client=" + id + "&cursor=" + cursor + "&token=" + token("erin"));
  auto f = parse(lines(r.body).at(0));
  EXPECT_EQ(f.kind, frame_kind::disconnect) << r.body;
  EXPECT_EQ(f.error_code, code::disconnected_by_server);
  EXPECT_EQ(f.after_ms, 7u);
  EXPECT_EQ(srv_->stats().connections_polling.load(), 0u);
  // Parked, then disconnected by user.
  open = http_call(port, http::verb::get, "/poll?channels=ld&open=1&token=" + token("erin"));
  id = parse(lines(open.body).at(0)).client;
  http_result parked;
  std::thread t([&] {
    parked = http_call(port, http::verb::get, "/poll?channels=ld&client=" + id + "&cursor=" + cursor + "&token=" + token("erin"));
  });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (srv_->stats().parked_polls.load() == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  auto started = std::chrono::steady_clock::now();
  d = http_call(port, http::verb::post, "/api/disconnect", R"({"user":"erin","jitter_ms":0})", {{"Authorization", "Bearer key"}});
  EXPECT_EQ(d.body, "{\"disconnected\":1}");
  t.join();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  EXPECT_EQ(parse(lines(parked.body).at(0)).kind, frame_kind::disconnect) << parked.body;
  EXPECT_EQ(srv_->stats().connections_polling.load(), 0u);
}

// A poll with no channels is accepted: `connected` at once, later polls hold and answer a ping.
TEST_F(Server, PollWithoutChannels) {
  auto open = http_call(port, http::verb::get, "/poll?open=1");
  ASSERT_EQ(open.status, 200u) << open.body;
  auto c = parse(lines(open.body).at(0));
  ASSERT_EQ(c.kind, frame_kind::connected);
  auto r = http_call(port, http::verb::get, "/poll?client=" + c.client);
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "{\"type\":\"ping\"}\n");
}

// ---- HTTP API and bad input ----

TEST_F(Server, ApiKeyRequired) {
  EXPECT_EQ(publish("x", "1", "").status, 401u);
  EXPECT_EQ(publish("x", "1", "wrong").status, 401u);
  EXPECT_EQ(publish("x", "1").status, 200u);
  auto bad = http_call(port, http::verb::post, "/api/publish", "{oops", {{"Authorization", "Bearer key"}});
  EXPECT_EQ(bad.status, 400u);
  auto big = publish("x", "\"" + std::string(99, 'a') + "\"");
  EXPECT_EQ(big.status, 413u);
  EXPECT_EQ(publish("x", "\"" + std::string(98, 'a') + "\"").status, 200u);
  EXPECT_EQ(publish("nope:x", "1").status, 400u);
  auto idem1 = http_call(port, http::verb::post, "/api/publish", R"({"channel":"i","data":1,"idempotency_key":"k"})",
                         {{"Authorization", "Bearer key"}});
  auto idem2 = http_call(port, http::verb::post, "/api/publish", R"({"channel":"i","data":1,"idempotency_key":"k"})",
                         {{"Authorization", "Bearer key"}});
  EXPECT_EQ(idem1.body, idem2.body);
  auto h = http_call(port, http::verb::get, "/api/history?channel=i", {}, {{"Authorization", "Bearer key"}});
  EXPECT_NE(h.body.find("\"offset\":1,\"data\":1"), std::string::npos) << h.body;
  EXPECT_EQ(h.body.find("\"offset\":2"), std::string::npos) << h.body;
}

TEST_F(Server, GarbageOverlongHeaderAndSlowloris) {
  TearDown();
  start(short_timeouts());
  net::io_context ioc;
  {
    auto s = connect_socket(ioc, port);
    net::write(s, net::buffer(std::string("GARBAGE\r\n\r\n")));
    char buf[512];
    beast::error_code ec;
    auto n = s.read_some(net::buffer(buf), ec);
    EXPECT_TRUE(std::string(buf, n).starts_with("HTTP/1.1 400")) << std::string(buf, n);
  }
  auto r = http_call(port, http::verb::get, "/healthz", {}, {{"X-Big", std::string(10000, 'a')}});
  EXPECT_EQ(r.status, 431u);
  {
    auto s = connect_socket(ioc, port);
    net::write(s, net::buffer(std::string("GET /healthz HTTP/1.1\r\nHost: x\r\n")));
    char buf[512];
    beast::error_code ec;
    s.read_some(net::buffer(buf), ec);   // closed by the request timeout (400 ms), before our 5 s deadline
    EXPECT_EQ(ec, net::error::eof);
  }
  EXPECT_EQ(http_call(port, http::verb::get, "/healthz").status, 200u);
}

TEST_F(Server, MetricsCountWhatHappened) {
  ws_client c(port);
  c.connect();
  c.send(R"({"cmd":"subscribe","id":2,"channel":"m"})");
  c.next_non_ping();
  publish_offset("m", 1);
  c.next_non_ping();
  c.send(R"({"cmd":"unsubscribe","id":3,"channel":"never"})");   // not subscribed: error 4012
  c.next_non_ping();
  auto m = http_call(port, http::verb::get, "/metrics");
  EXPECT_EQ(m.status, 200u);
  // Each test has a fresh server: the exact figures of one connection, one publish, one delivery.
  EXPECT_NE(m.body.find("\npushwire_connections{transport=\"websocket\"} 1\n"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("\npushwire_messages_published_total 1\n"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("\npushwire_messages_delivered_total{transport=\"websocket\"} 1\n"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("\npushwire_messages_delivered_total{transport=\"sse\"} 0\n"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("\npushwire_command_errors_total{code=\"4012\"} 1\n"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("\npushwire_command_duration_seconds_count{command=\"subscribe\"} 1\n"), std::string::npos) << m.body;
  EXPECT_EQ(srv_->stats().messages_published.load(), 1u);
  EXPECT_EQ(srv_->stats().messages_delivered(), 1u);
  EXPECT_EQ(srv_->stats().connections_websocket.load(), 1u);
}

TEST_F(Server, ApiDisconnectUser) {
  ws_client c(port);
  c.connect(token("dave"));
  auto r = http_call(port, http::verb::post, "/api/disconnect", R"({"user":"dave","jitter_ms":0,"after_ms":5})",
                     {{"Authorization", "Bearer key"}});
  EXPECT_EQ(r.body, "{\"disconnected\":1}");
  auto f = c.next_non_ping();
  EXPECT_EQ(f.kind, frame_kind::disconnect);
  EXPECT_EQ(f.error_code, code::disconnected_by_server);
  EXPECT_EQ(f.after_ms, 5u);
}


TEST_F(Server, WsPingFrameAfterSilence) {
  TearDown();
  auto cfg = base_config();
  cfg.ping_interval_ms = 100;
  start(cfg);
  ws_client c(port);
  auto f = c.connect();
  ASSERT_EQ(f.kind, frame_kind::connected);
  EXPECT_EQ(f.ping_ms, 100u);
  f = c.next();   // nothing else is sent: the next frame is the heartbeat
  EXPECT_EQ(f.kind, frame_kind::ping);
  EXPECT_EQ(f.error_code, code::ok) << f.reason;
}

// Dead-peer detection: a connection that sends no byte at all for --dead-peer-timeout-ms is cut; a
// WebSocket ping at half the timeout asks for one, so a live client (its library answers pings) stays.
TEST_F(Server, WsDeadPeerIsCutLiveClientAnswersPingsAndStays) {
  TearDown();
  auto cfg = base_config();
  cfg.ping_interval_ms = 100;
  cfg.dead_peer_timeout_ms = 400;
  start(cfg);
  ws_client live(port), dead(port);
  ASSERT_EQ(live.connect().kind, frame_kind::connected);
  ASSERT_EQ(dead.connect().kind, frame_kind::connected);
  // `live` keeps reading (Beast answers the server's pings while it reads) for three timeouts.
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1200);
  while (std::chrono::steady_clock::now() < until) {
    auto f = live.next();
    ASSERT_EQ(f.error_code, code::ok) << f.reason;
  }
  // `dead` read nothing meanwhile, so it never answered: its buffered frames end in the cut.
  auto t0 = std::chrono::steady_clock::now();
  pp::frame f;
  for (int i = 0; i < 100 && f.error_code == code::ok; ++i) f = dead.next();
  EXPECT_EQ(f.error_code, code::internal_error) << "still open";
  EXPECT_NE(dead.last_error, beast::error_code(net::error::would_block)) << dead.last_error.message();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_EQ(live.next().error_code, code::ok);
}

// Write coalescing: the first publish after a quiet window is written at once; what arrives within
// the window (a fixed --write-coalesce-us, long here: factor 0) goes out together in one WebSocket
// message, in order. The adaptive window's rule: tests/server/transport/write_pacing_test.cpp.
TEST_F(Server, WriteCoalescingSendsABurstInOneWrite) {
  TearDown();
  auto cfg = base_config();
  cfg.write_coalesce_us = 500'000;
  cfg.write_coalesce_factor = 0;
  start(cfg);
  ws_client c(port);
  c.connect();
  c.send(R"({"cmd":"subscribe","id":2,"channel":"co"})");
  ASSERT_EQ(c.next_non_ping().kind, frame_kind::subscribed);
  api_client api(port);
  ASSERT_EQ(api.post("/api/publish", R"({"channel":"co","data":0})").status, 200u);
  auto f = c.next_non_ping();
  ASSERT_EQ(f.kind, frame_kind::message);
  int before = c.messages;
  for (int i = 1; i <= 3; ++i)
    ASSERT_EQ(api.post("/api/publish", R"({"channel":"co","data":)" + std::to_string(i) + "}").status, 200u);
  for (int i = 1; i <= 3; ++i) {
    f = c.next_non_ping();
    ASSERT_EQ(f.kind, frame_kind::message);
    EXPECT_EQ(f.data, std::to_string(i));
  }
  EXPECT_EQ(c.messages, before + 1) << "the burst was not coalesced";
}

TEST_F(Server, DemoPublishAndDropOnlyInDemoMode) {
  // Without --demo: no /demo/publish, and `drop` is refused.
  EXPECT_NE(http_call(port, http::verb::post, "/demo/publish", R"({"channel":"demo:x","data":1})").status, 200u);
  {
    ws_client c(port);
    c.connect();
    c.send(R"({"cmd":"drop","id":3})");
    auto f = c.next_non_ping();
    EXPECT_EQ(f.kind, frame_kind::error);
    EXPECT_EQ(f.error_code, code::permission_denied);
  }
  TearDown();
  auto cfg = base_config();
  cfg.demo = true;
  cfg.demo_rate_per_s = 2;
  start(cfg);
  auto r = http_call(port, http::verb::post, "/demo/publish", R"({"channel":"demo:x","data":{"v":1}})");
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_NE(r.body.find("\"offset\":1"), std::string::npos) << r.body;
  EXPECT_EQ(http_call(port, http::verb::post, "/demo/publish", R"({"channel":"news","data":1})").status, 403u);
  // Rate limited per address (2 per second here; the window may roll over once).
  unsigned last = 200;
  for (int i = 0; i < 6 && last != 429; ++i)
    last = http_call(port, http::verb::post, "/demo/publish", R"({"channel":"demo:x","data":1})").status;
  EXPECT_EQ(last, 429u);
  ws_client c(port);
  c.connect();
  c.send(R"({"cmd":"drop","id":3})");
  auto f = c.next_non_ping();
  EXPECT_EQ(f.kind, frame_kind::disconnect);
  EXPECT_EQ(f.error_code, code::disconnected_by_server);
  EXPECT_TRUE(f.reconnect);
  c.next();
  EXPECT_EQ(c.close_reason().code, 4010);
}

TEST_F(Server, StaticFilesAndCors) {
  TearDown();
  auto dir = std::string(::testing::TempDir()) + "/pw_static";
  std::system(("mkdir -p " + dir + "/web " + dir + "/client/dist " + dir + "/client/src").c_str());
  std::ofstream(dir + "/web/index.html") << "<h1>hi</h1>";
  std::ofstream(dir + "/client/src/pushwire.mjs") << "export {}";
  std::ofstream(dir + "/client/dist/pushwire_core.wasm") << "wasm";
  auto cfg = base_config();
  cfg.web_root = dir + "/web";
  cfg.client_root = dir + "/client";
  cfg.allowed_origins = {"http://app.example"};
  start(cfg);
  auto r = http_call(port, http::verb::get, "/");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.headers[http::field::content_type], "text/html; charset=utf-8");
  r = http_call(port, http::verb::get, "/pushwire/pushwire.mjs");
  EXPECT_EQ(r.headers[http::field::content_type], "text/javascript");
  r = http_call(port, http::verb::get, "/pushwire/pushwire_core.wasm");
  EXPECT_EQ(r.headers[http::field::content_type], "application/wasm");
  EXPECT_EQ(http_call(port, http::verb::get, "/../../etc/passwd").status, 404u);
  EXPECT_EQ(http_call(port, http::verb::get, "/pushwire/..%2f..%2fetc%2fpasswd").status, 404u);
  r = http_call(port, http::verb::get, "/healthz", {}, {{"Origin", "http://app.example"}});
  EXPECT_EQ(r.headers[http::field::access_control_allow_origin], "http://app.example");
  r = http_call(port, http::verb::get, "/healthz", {}, {{"Origin", "http://evil.example"}});
  EXPECT_EQ(r.headers.count(http::field::access_control_allow_origin), 0u);
  ws_client evil(port, "http://evil.example");
  EXPECT_FALSE(evil.ok());
  ws_client good(port, "http://app.example");
  EXPECT_TRUE(good.ok());
}

// Static files carry a strong ETag; a browser's revalidation gets 304 with no body until the file
// changes (issue 15: every page load used to download the whole client).
TEST_F(Server, StaticFilesRevalidateWithETag) {
  TearDown();
  auto dir = std::string(::testing::TempDir()) + "/pw_etag";
  std::system(("mkdir -p " + dir + "/web").c_str());
  std::ofstream(dir + "/web/app.js") << "console.log(1)";
  auto cfg = base_config();
  cfg.web_root = dir + "/web";
  start(cfg);
  auto first = http_call(port, http::verb::get, "/app.js");
  ASSERT_EQ(first.status, 200u);
  std::string etag(first.headers[http::field::etag]);
  ASSERT_FALSE(etag.empty());
  EXPECT_EQ(etag.front(), '"');
  auto again = http_call(port, http::verb::get, "/app.js", {}, {{"If-None-Match", etag}});
  EXPECT_EQ(again.status, 304u);
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(http_call(port, http::verb::get, "/app.js", {}, {{"If-None-Match", "\"other\", W/" + etag}}).status, 304u);
  EXPECT_EQ(http_call(port, http::verb::get, "/app.js", {}, {{"If-None-Match", "\"other\""}}).status, 200u);
  std::ofstream(dir + "/web/app.js") << "console.log(2)";
  auto changed = http_call(port, http::verb::get, "/app.js", {}, {{"If-None-Match", etag}});
  EXPECT_EQ(changed.status, 200u);
  EXPECT_EQ(changed.body, "console.log(2)");
  EXPECT_NE(std::string(changed.headers[http::field::etag]), etag);
}

// ---- Limits: connections per address, the descriptor cap ----

// A WebSocket upgrade request sent as a plain HTTP call, so a refusal's status and body are visible.
http_result ws_upgrade_call(unsigned short port) {
  return http_call(port, http::verb::get, "/ws", {},
                   {{"Connection", "Upgrade"}, {"Upgrade", "websocket"}, {"Sec-WebSocket-Version", "13"},
                    {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}});
}

TEST_F(Server, ConnectionsPerIpLimitCountsStreamsAndParkedPolls) {
  TearDown();
  auto cfg = base_config();
  cfg.max_connections_per_ip = 3;
  cfg.poll_hold_ms = 5000;   // the parked poll below is answered by a publication, not the hold
  start(cfg);
  auto refused_before = srv_->stats().connections_refused.load();
  ws_client a(port), b(port);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(a.connect().kind, frame_kind::connected);
  sse_client sse(port, "/sse?channels=lim");
  ASSERT_EQ(sse.status, 200u);
  ASSERT_EQ(sse.next_non_ping().data.find("\"type\":\"connected\""), 1u);
  // N = 3 held: the next WebSocket, SSE stream and poll from this address are refused.
  auto ws4 = ws_upgrade_call(port);
  EXPECT_EQ(ws4.status, 503u);
  EXPECT_NE(ws4.body.find("\"code\":4015"), std::string::npos) << ws4.body;
  auto sse4 = http_call(port, http::verb::get, "/sse?channels=lim");
  EXPECT_EQ(sse4.status, 503u);
  EXPECT_NE(sse4.body.find("\"code\":4015"), std::string::npos) << sse4.body;
  auto poll4 = http_call(port, http::verb::get, "/poll?channels=lim&open=1");
  EXPECT_EQ(poll4.status, 503u);
  EXPECT_NE(poll4.body.find("\"code\":4015"), std::string::npos) << poll4.body;
  EXPECT_EQ(srv_->stats().connections_refused.load(), refused_before + 3);
  // Plain requests do not count.
  EXPECT_EQ(http_call(port, http::verb::get, "/healthz").status, 200u);
  EXPECT_EQ(http_call(port, http::verb::get, "/api/stats", {}, {{"Authorization", "Bearer key"}}).status, 200u);
  // The WebSocket still works.
  a.send(R"({"cmd":"subscribe","id":2,"channel":"lim"})");
  ASSERT_EQ(a.next_non_ping().kind, frame_kind::subscribed);

  // Closing one frees its slot (the server notices the close asynchronously: retry until accepted).
  b.close();
  std::unique_ptr<ws_client> again;
  ASSERT_TRUE(eventually([&] {
    again = std::make_unique<ws_client>(port);
    return again->ok();
  }));
  EXPECT_EQ(ws_upgrade_call(port).status, 503u);   // full again

  // A parked long-poll holds a slot while parked and gives it back when answered. Held: a, sse, again.
  sse.close();
  again.reset();
  std::unique_ptr<ws_client> x;
  ASSERT_TRUE(eventually([&] {
    x = std::make_unique<ws_client>(port);
    return x->ok();
  }));
  // Held: a, x (or a, x and a closed one the server has not noticed yet). An opening poll is
  // answered at once, so it succeeds exactly when a slot is free.
  http_result open;
  ASSERT_TRUE(eventually([&] {
    open = http_call(port, http::verb::get, "/poll?channels=lim&open=1");
    return open.status == 200u;
  }));
  std::string id = parse(lines(open.body).at(0)).client, cursor(open.headers["Pushwire-Cursor"]);
  http_result parked;
  std::thread poller([&] { parked = http_call(port, http::verb::get, "/poll?channels=lim&client=" + id + "&cursor=" + cursor); });
  ASSERT_TRUE(eventually([&] { return srv_->stats().parked_polls.load() == 1; }));
  EXPECT_EQ(ws_upgrade_call(port).status, 503u);   // a, x and the parked poll
  publish_offset("lim", 1);
  poller.join();
  EXPECT_EQ(parked.status, 200u);
  EXPECT_NE(parked.body.find("\"type\":\"message\""), std::string::npos) << parked.body;
  ASSERT_TRUE(eventually([&] {
    again = std::make_unique<ws_client>(port);
    return again->ok();
  }));
}

TEST(ServerConfig, MaxConnectionsPerIpFlagEnvFileAndHelp) {
  auto path = std::string(::testing::TempDir()) + "/pw_cfg_ip_" + std::to_string(getpid()) + ".json";
  std::ofstream(path) << R"({"max_connections_per_ip":7})";
  const char* none[] = {"x"};
  EXPECT_EQ(ps::parse_config(1, none, {}).cfg.max_connections_per_ip, 0u);   // off by default
  const char* file[] = {"x", "--config", path.c_str()};
  EXPECT_EQ(ps::parse_config(3, file, {}).cfg.max_connections_per_ip, 7u);
  EXPECT_EQ(ps::parse_config(3, file, {{"PUSHWIRE_MAX_CONNECTIONS_PER_IP", "8"}}).cfg.max_connections_per_ip, 8u);
  const char* flag[] = {"x", "--config", path.c_str(), "--max-connections-per-ip", "9"};
  EXPECT_EQ(ps::parse_config(5, flag, {{"PUSHWIRE_MAX_CONNECTIONS_PER_IP", "8"}}).cfg.max_connections_per_ip, 9u);
  auto help = ps::help_text();
  auto at = help.find("--max-connections-per-ip");
  ASSERT_NE(at, std::string::npos);
  EXPECT_NE(help.find("proxy", at), std::string::npos);   // its reason is listed with it
  std::remove(path.c_str());
}

// ---- Long-poll presence between polls ----

// Join/leave frames in `body` (one per line), as "join:<client>" / "leave:<client>".
std::vector<std::string> presence_events(const std::string& body) {
  std::vector<std::string> out;
  for (auto& l : lines(body)) {
    auto f = parse(l);
    if (f.kind != frame_kind::join && f.kind != frame_kind::leave) continue;
    auto c = l.find("\"client\":\"");
    out.push_back(std::string(f.kind == frame_kind::join ? "join:" : "leave:") +
                  l.substr(c + 10, l.find('"', c + 10) - c - 10));
  }
  return out;
}

TEST_F(Server, PollGetsPresenceChangesFromBetweenPolls) {
  TearDown();
  auto cfg = base_config();
  cfg.poll_hold_ms = 3000;   // a poll that waited for the hold instead of answering at once would show
  start(cfg);
  auto open = http_call(port, http::verb::get, "/poll?channels=demo:between&open=1");
  ASSERT_EQ(open.status, 200u);
  std::string id = parse(lines(open.body).at(0)).client, cursor(open.headers["Pushwire-Cursor"]);
  ASSERT_FALSE(id.empty()) << open.body;
  // Between polls: a WebSocket client joins and leaves.
  ws_client w(port);
  auto conn = w.connect();
  ASSERT_EQ(conn.kind, frame_kind::connected);
  w.send(R"({"cmd":"subscribe","id":2,"channel":"demo:between"})");
  ASSERT_EQ(w.next_non_ping().kind, frame_kind::subscribed);
  ASSERT_EQ(w.next_non_ping().kind, frame_kind::join);   // its own
  w.send(R"({"cmd":"unsubscribe","id":3,"channel":"demo:between"})");
  ASSERT_EQ(w.next_non_ping().kind, frame_kind::unsubscribed);   // the leave happened before this reply
  auto t0 = std::chrono::steady_clock::now();
  auto r = http_call(port, http::verb::get, "/poll?channels=demo:between&client=" + id + "&cursor=" + cursor);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(presence_events(r.body), (std::vector<std::string>{"join:" + conn.client, "leave:" + conn.client})) << r.body;
  EXPECT_LT(took, std::chrono::milliseconds(2500)) << "answered at once, not after the hold";
  EXPECT_EQ(r.headers["Pushwire-Cursor"], cursor);   // presence does not move positions
  // Delivered once: the next poll holds (answered by a publication here, so the test stays short).
  http_result next;
  std::thread poller([&] { next = http_call(port, http::verb::get, "/poll?channels=demo:between&client=" + id + "&cursor=" + cursor); });
  ASSERT_TRUE(eventually([&] { return srv_->stats().parked_polls.load() == 1; }));
  publish_offset("demo:between", 1);
  poller.join();
  EXPECT_TRUE(presence_events(next.body).empty()) << next.body;
  EXPECT_NE(next.body.find("\"type\":\"message\""), std::string::npos) << next.body;
}

TEST_F(Server, ParkedPollWokenByOthersJoinNeverByItsOwn) {
  TearDown();
  auto cfg = base_config();
  cfg.poll_hold_ms = 3000;
  start(cfg);
  auto open = http_call(port, http::verb::get, "/poll?channels=demo:park&open=1");
  ASSERT_EQ(open.status, 200u);
  std::string id = parse(lines(open.body).at(0)).client, cursor(open.headers["Pushwire-Cursor"]);
  EXPECT_TRUE(presence_events(open.body).empty()) << open.body;   // not its own join
  http_result parked;
  std::thread poller([&] { parked = http_call(port, http::verb::get, "/poll?channels=demo:park&client=" + id + "&cursor=" + cursor); });
  ASSERT_TRUE(eventually([&] { return srv_->stats().parked_polls.load() == 1; }));
  ws_client w(port);
  auto conn = w.connect();
  w.send(R"({"cmd":"subscribe","id":2,"channel":"demo:park"})");
  ASSERT_EQ(w.next_non_ping().kind, frame_kind::subscribed);
  poller.join();
  EXPECT_EQ(presence_events(parked.body), (std::vector<std::string>{"join:" + conn.client})) << parked.body;
}

TEST_F(Server, PollPresenceQueueIsBoundedOldestDropped) {
  // 40 joins + 40 leaves between polls: the next poll carries the newest 64, in order.
  auto open = http_call(port, http::verb::get, "/poll?channels=demo:many&open=1");
  ASSERT_EQ(open.status, 200u);
  std::string id = parse(lines(open.body).at(0)).client, cursor(open.headers["Pushwire-Cursor"]);
  ws_client w(port);
  auto conn = w.connect();
  for (int i = 0; i < 40; ++i) {
    w.send(R"({"cmd":"subscribe","id":2,"channel":"demo:many"})");
    ASSERT_EQ(w.next_non_ping().kind, frame_kind::subscribed);
    ASSERT_EQ(w.next_non_ping().kind, frame_kind::join);
    w.send(R"({"cmd":"unsubscribe","id":3,"channel":"demo:many"})");
    ASSERT_EQ(w.next_non_ping().kind, frame_kind::unsubscribed);
  }
  auto r = http_call(port, http::verb::get, "/poll?channels=demo:many&client=" + id + "&cursor=" + cursor);
  ASSERT_EQ(r.status, 200u);
  auto ev = presence_events(r.body);
  ASSERT_EQ(ev.size(), 64u) << r.body;
  for (std::size_t i = 0; i < ev.size(); ++i)
    EXPECT_EQ(ev[i], (i % 2 ? "leave:" : "join:") + conn.client) << i;
}

// ---- The descriptor cap (DECISIONS §11), against the real binary under a low RLIMIT_NOFILE ----

struct capped_server {
  pid_t pid = -1;
  unsigned short port = 0;
  std::string log_path;

  capped_server(rlim_t nofile, const char* max_connections) {
    auto base = std::string(::testing::TempDir()) + "/pw_cap_" + std::to_string(getpid()) + "_" + max_connections;
    std::string port_file = base + ".port";
    log_path = base + ".log";
    std::remove(port_file.c_str());
    pid = fork();
    if (pid == 0) {
      // Only async-signal-safe calls between fork and exec.
      int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (log_fd >= 0) ::dup2(log_fd, 2);
      for (int fd = 3; fd < 4096; ++fd) ::close(fd);   // inherit nothing but stdio
      rlimit rl{nofile, nofile};
      ::setrlimit(RLIMIT_NOFILE, &rl);
      execl(PUSHWIRE_SERVER_BINARY, PUSHWIRE_SERVER_BINARY, "--port", "0", "--port-file", port_file.c_str(),
            "--api-key", "k", "--log-level", "info", "--threads", "2", "--max-connections", max_connections,
            "--shutdown-timeout-ms", "500", nullptr);
      _exit(127);
    }
    eventually([&] {
      std::ifstream in(port_file);
      int p = 0;
      if (in >> p && p > 0) port = static_cast<unsigned short>(p);
      return port != 0;
    }, std::chrono::seconds(10));
    std::remove(port_file.c_str());
  }
  ~capped_server() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    std::remove(log_path.c_str());
  }
  // utime + stime of the server process, in milliseconds (/proc/<pid>/stat fields 14 and 15).
  long cpu_ms() const {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::istringstream rest(stat.substr(stat.rfind(')') + 2));   // after "pid (comm) "
    std::string field;
    long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::stol(field);
      if (i == 15) stime = std::stol(field);
    }
    return (utime + stime) * 1000 / sysconf(_SC_CLK_TCK);
  }
  std::string log() const {
    std::ifstream in(log_path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
};

// One request on a new connection: "ok" (200, the connection stays open in `held`), "503",
// "closed" (EOF or reset without an answer) or "other".
std::string attempt(net::io_context& ioc, unsigned short port, std::vector<tcp::socket>& held) {
  tcp::socket s(ioc);
  beast::error_code ec;
  s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return "closed";
  set_timeout(s, 5000);
  static const std::string req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  net::write(s, net::buffer(req), ec);   // a refused one may already be closed: its answer counts
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(s, buf, res, ec);
  if (ec) return ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset
                     ? "closed" : "other: " + ec.message();
  if (res.result_int() == 200) {
    held.push_back(std::move(s));
    return "ok";
  }
  if (res.result_int() == 503 && res.body().find("4015") != std::string::npos) return "503";
  return "other: " + std::to_string(res.result_int());
}

void descriptor_cap_scenario(const char* max_connections, const char* expected_reason) {
  capped_server srv(64, max_connections);
  ASSERT_NE(srv.port, 0) << srv.log();
  // Opened first: a subscriber and a keep-alive API connection, both must keep working.
  ws_client sub(srv.port);
  ASSERT_EQ(sub.connect().kind, frame_kind::connected);
  sub.send(R"({"cmd":"subscribe","id":2,"channel":"cap"})");
  ASSERT_EQ(sub.next_non_ping().kind, frame_kind::subscribed);
  net::io_context ioc;
  auto api = connect_socket(ioc, srv.port);
  beast::flat_buffer api_buf;
  auto api_call = [&](http::verb v, std::string target, std::string body) {
    http::request<http::string_body> req{v, target, 11};
    req.set(http::field::host, "x");
    req.set(http::field::authorization, "Bearer k");
    req.body() = std::move(body);
    req.prepare_payload();
    http::write(api, req);
    http::response<http::string_body> res;
    http::read(api, api_buf, res);
    return res;
  };
  ASSERT_EQ(api_call(http::verb::get, "/healthz", {}).result_int(), 200u);

  std::vector<tcp::socket> held;
  std::string first_refusal;
  for (int i = 0; i < 200 && first_refusal.empty(); ++i) {
    auto r = attempt(ioc, srv.port, held);
    if (r != "ok") first_refusal = r;
  }
  ASSERT_FALSE(first_refusal.empty()) << "never refused after " << held.size() << " connections";
  EXPECT_TRUE(first_refusal == "503" || first_refusal == "closed") << first_refusal;
  EXPECT_GT(held.size(), 10u);

  // Refused without spinning: 20 more attempts over about a second cost the server little CPU.
  auto cpu0 = srv.cpu_ms();
  int answered_503 = first_refusal == "503";
  for (int i = 0; i < 20; ++i) {
    auto r = attempt(ioc, srv.port, held);
    EXPECT_TRUE(r == "503" || r == "closed") << i << ": " << r;
    answered_503 += r == "503";
    std::this_thread::sleep_for(std::chrono::milliseconds(50));   // pacing the attempts, not synchronisation
  }
  auto cpu1 = srv.cpu_ms();
  EXPECT_LT(cpu1 - cpu0, 200) << "server CPU grew by " << (cpu1 - cpu0) << " ms while refusing";
  EXPECT_GT(answered_503, 0);

  // The existing connections keep being served: metrics on the open keep-alive connection, and a
  // publication reaches the subscriber.
  auto m = api_call(http::verb::get, "/metrics", {});
  ASSERT_EQ(m.result_int(), 200u);
  auto at = m.body().find("\npushwire_connections_refused_total ");
  ASSERT_NE(at, std::string::npos) << m.body();
  EXPECT_GE(std::stoul(m.body().substr(at + 36)), 21u);
  ASSERT_EQ(api_call(http::verb::post, "/api/publish", R"({"channel":"cap","data":{"n":1}})").result_int(), 200u);
  auto msg = sub.next_non_ping();
  EXPECT_EQ(msg.kind, frame_kind::message) << msg.reason;
  std::string log;
  ASSERT_TRUE(eventually([&] { log = srv.log(); return log.find("connection refused") != std::string::npos; })) << log;
  EXPECT_NE(log.find(expected_reason), std::string::npos) << log;

  // Closing some makes room again.
  for (int i = 0; i < 5; ++i) held.pop_back();
  std::vector<tcp::socket> more;
  EXPECT_TRUE(eventually([&] { return attempt(ioc, srv.port, more) == "ok"; }));
}

TEST(ServerBinary, DescriptorCapDefaultMaxConnectionsFromRlimit) {
  // --max-connections 0: the default comes from RLIMIT_NOFILE (64 -> 32), below the descriptors.
  descriptor_cap_scenario("0", "max connections");
}

TEST(ServerBinary, DescriptorCapEmfileUsesTheSpare) {
  // A limit above what the descriptors allow: accept() itself fails with EMFILE.
  descriptor_cap_scenario("1000", "EMFILE");
}

TEST(ServerBinary, SigtermDrainsWithDisconnectFrame) {
  auto port_file = std::string(::testing::TempDir()) + "/pw_port_" + std::to_string(getpid());
  std::remove(port_file.c_str());
  pid_t pid = fork();
  if (pid == 0) {
    execl(PUSHWIRE_SERVER_BINARY, PUSHWIRE_SERVER_BINARY, "--port", "0", "--port-file", port_file.c_str(),
          "--api-key", "k", "--log-level", "warn", "--shutdown-timeout-ms", "2000", nullptr);
    _exit(127);
  }
  unsigned short port = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(port_file);
    int p = 0;
    if (in >> p && p > 0) { port = static_cast<unsigned short>(p); break; }
    std::this_thread::yield();
  }
  ASSERT_NE(port, 0);
  ws_client c(port);
  ASSERT_EQ(c.connect().kind, frame_kind::connected);
  kill(pid, SIGTERM);
  auto f = c.next_non_ping();
  EXPECT_EQ(f.kind, frame_kind::disconnect);
  EXPECT_EQ(f.error_code, code::shutting_down);
  EXPECT_TRUE(f.reconnect);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(ServerConfig, FlagsEnvFileAndHelp) {
  auto path = std::string(::testing::TempDir()) + "/pw_cfg.json";
  std::ofstream(path) << R"({"port":1234,"max_message_bytes":10,"namespaces":{"chat":{"presence":true}}})";
  const char* argv[] = {"x", "--config", path.c_str(), "--max-message-bytes=20"};
  auto r = ps::parse_config(4, argv, {{"PUSHWIRE_PORT", "2222"}, {"PUSHWIRE_MAX_MESSAGE_BYTES", "15"}});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.cfg.port, 2222);
  EXPECT_EQ(r.cfg.max_message_bytes, 20u);
  EXPECT_TRUE(r.cfg.namespaces["chat"].presence);
  EXPECT_NE(ps::help_text().find("--queue-bytes"), std::string::npos);
  const char* bad[] = {"x", "--nope"};
  EXPECT_FALSE(ps::parse_config(2, bad, {}).ok);
}

}  // namespace

// A slow consumer is told why it was disconnected: when it reads again within the grace period it
// finds the 4008 disconnect frame and close code after the frames already in flight, and it can
// resume from its last offset without loss. One that never reads is cut after the grace period.
#include <gtest/gtest.h>

#include <sys/socket.h>

#include "server/app/server.hpp"
#include "test_client.hpp"

namespace ps = pushwire::server;
using namespace test;

namespace {

ps::config slow_config() {
  ps::config c;
  c.port = 0;
  c.threads = 2;
  c.api_key = "key";
  c.log_level = "error";
  c.queue_bytes = 256 * 1024;
  c.max_message_bytes = 60000;
  c.history_size = 1000;
  c.slow_consumer_grace_ms = 10000;
  c.housekeeping_ms = 20;
  c.shutdown_timeout_ms = 500;
  return c;
}

unsigned publish(unsigned short port, const std::string& data) {
  return http_call(port, http::verb::post, "/api/publish", R"({"channel":"firehose","data":)" + data + "}",
                   {{"Authorization", "Bearer key"}}).status;
}

}  // namespace

TEST(SlowConsumer, ReadingAgainFindsTheCodeAndResumesWithoutLoss) {
  ps::server srv(slow_config());
  std::string err;
  ASSERT_TRUE(srv.start(err)) << err;
  ws_client slow(srv.port());
  slow.connect();
  // Not below one loopback MSS (64 KiB): a smaller buffer never re-opens the TCP window by itself
  // and the stream would crawl on zero-window probes once the client reads again.
  int small = 128 * 1024;
  setsockopt(slow.stream().next_layer().native_handle(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  slow.send(R"({"cmd":"subscribe","id":2,"channel":"firehose"})");
  auto sub = slow.next_non_ping();
  ASSERT_EQ(sub.kind, pp::frame_kind::subscribed);
  std::string big = "\"" + std::string(50000, 'x') + "\"";
  int published = 0;
  while (srv.stats().slow_consumer_disconnects.load() == 0 && published < 2000) {
    ASSERT_EQ(publish(srv.port(), big), 200u);
    ++published;
  }
  ASSERT_EQ(srv.stats().slow_consumer_disconnects.load(), 1u);

  // Reading again: the frames that were in flight, then the notice, then the close.
  std::uint64_t last = 0;
  pp::frame f;
  for (;;) {
    f = slow.next_non_ping();
    if (f.kind != pp::frame_kind::message) break;
    ASSERT_EQ(f.pos.offset, last + 1);
    last = f.pos.offset;
  }
  EXPECT_EQ(f.kind, pp::frame_kind::disconnect) << f.reason;
  EXPECT_EQ(f.error_code, pp::code::slow_consumer);
  EXPECT_TRUE(f.reconnect);
  slow.next();
  EXPECT_EQ(slow.close_reason().code, 4008);

  // Resume from the last offset received: everything after it is replayed.
  ws_client again(srv.port());
  again.connect();
  again.send(R"({"cmd":"subscribe","id":2,"channel":"firehose","since":{"epoch":")" + sub.pos.epoch +
             R"(","offset":)" + std::to_string(last) + "}}");
  auto resumed = again.next_non_ping();
  ASSERT_EQ(resumed.kind, pp::frame_kind::subscribed);
  EXPECT_EQ(resumed.recovered, true);
  for (std::uint64_t o = last + 1; o <= static_cast<std::uint64_t>(published); ++o) {
    auto m = again.next_non_ping();
    ASSERT_EQ(m.kind, pp::frame_kind::message);
    ASSERT_EQ(m.pos.offset, o);
  }
  again.close();
  srv.shutdown();
}

TEST(SlowConsumer, OneThatNeverReadsIsCutAfterTheGracePeriod) {
  auto c = slow_config();
  c.slow_consumer_grace_ms = 200;
  ps::server srv(c);
  std::string err;
  ASSERT_TRUE(srv.start(err)) << err;
  ws_client slow(srv.port());
  slow.connect();
  int small = 4096;
  setsockopt(slow.stream().next_layer().native_handle(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  slow.send(R"({"cmd":"subscribe","id":2,"channel":"firehose"})");
  ASSERT_EQ(slow.next_non_ping().kind, pp::frame_kind::subscribed);
  std::string big = "\"" + std::string(50000, 'x') + "\"";
  for (int i = 0; i < 2000 && srv.stats().slow_consumer_disconnects.load() == 0; ++i)
    ASSERT_EQ(publish(srv.port(), big), 200u);
  ASSERT_EQ(srv.stats().slow_consumer_disconnects.load(), 1u);
  // The server lets go of the connection by itself (the websocket gauge drops to 0).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (srv.stats().connections_websocket.load() != 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  EXPECT_EQ(srv.stats().connections_websocket.load(), 0u);
  srv.shutdown();
}

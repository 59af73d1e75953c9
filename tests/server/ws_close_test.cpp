// The WebSocket connection's own control frames and closing handshake (server/transport/ws_conn.hpp),
// against the real server binary over a raw socket: pongs echo the ping; a peer's close is answered
// with its code and TCP closes; a server close waits for the peer's close frame (TCP stays up until
// then) or for request_timeout_ms; a protocol violation is answered with its code and the server
// stops sending (FIN) at once; a binary message is read like text.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "tests/server/raw_peer.hpp"
#include "tests/server/spawned_server.hpp"

namespace {

using namespace test;

constexpr int close_timeout_ms = 600;   // --request-timeout-ms: the closing handshake's bound

class WsClose : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    srv = new spawned_server({"--api-key", "k", "--log-level", "error", "--threads", "1",
                              "--request-timeout-ms", std::to_string(close_timeout_ms)});
  }
  static void TearDownTestSuite() {
    delete srv;
    srv = nullptr;
  }
  void SetUp() override { ASSERT_NE(srv->port, 0) << srv->log(); }

  // An open, connected WebSocket.
  static void connect(raw_peer& p) {
    ASSERT_TRUE(p.ws_upgrade());
    p.send(raw_peer::text(R"({"cmd":"connect","id":1})"));
    ASSERT_NE(p.ws_text().find("\"connected\""), std::string::npos);
  }
  static int code_of(const raw_peer::ws_frame& f) {
    return f.payload.size() >= 2 ? (static_cast<std::uint8_t>(f.payload[0]) << 8) | static_cast<std::uint8_t>(f.payload[1]) : 1005;
  }

  static spawned_server* srv;
};
spawned_server* WsClose::srv = nullptr;

TEST_F(WsClose, PingIsAnsweredWithItsPayload) {
  raw_peer p(srv->port);
  connect(p);
  p.send(raw_peer::frame(0x89, "are you there"));
  auto f = p.read_frame();
  ASSERT_EQ(f.status, raw_peer::ws_frame::got);
  EXPECT_EQ(f.op, 0xa);
  EXPECT_EQ(f.payload, "are you there");
  // Still open: a command is answered.
  p.send(raw_peer::text(R"({"cmd":"presence","id":2,"channel":"a"})"));
  EXPECT_NE(p.ws_text().find("\"id\":2"), std::string::npos);
}

TEST_F(WsClose, PingBetweenFragmentsIsAnswered) {
  raw_peer p(srv->port);
  connect(p);
  p.send(raw_peer::frame(0x01, R"({"cmd":"presence",)") + raw_peer::frame(0x89, "mid") +
         raw_peer::frame(0x80, R"("id":3,"channel":"a"})"));
  auto f = p.read_frame();
  ASSERT_EQ(f.status, raw_peer::ws_frame::got);
  EXPECT_EQ(f.op, 0xa);
  EXPECT_EQ(f.payload, "mid");
  EXPECT_NE(p.ws_text().find("\"id\":3"), std::string::npos);
}

TEST_F(WsClose, PeerCloseIsEchoedThenTcpCloses) {
  raw_peer p(srv->port);
  connect(p);
  p.send(raw_peer::close_frame(std::string("\x10\xe1", 2) + "bye"));   // 4321
  auto f = p.read_frame();
  ASSERT_EQ(f.status, raw_peer::ws_frame::got);
  EXPECT_EQ(f.op, 0x8);
  EXPECT_EQ(code_of(f), 4321);
  EXPECT_EQ(p.read_frame(close_timeout_ms / 2).status, raw_peer::ws_frame::ended);   // before the timeout
}

TEST_F(WsClose, EmptyPeerCloseIsAnsweredWith1000) {
  raw_peer p(srv->port);
  connect(p);
  p.send(raw_peer::close_frame(""));
  auto f = p.read_frame();
  ASSERT_EQ(f.status, raw_peer::ws_frame::got);
  EXPECT_EQ(f.op, 0x8);
  EXPECT_EQ(code_of(f), 1000);
}

TEST_F(WsClose, ServerCloseWaitsForThePeersClose) {
  raw_peer p(srv->port);
  ASSERT_TRUE(p.ws_upgrade());
  p.send(raw_peer::text(R"({"cmd":"subscribe","id":2,"channel":"a"})"));   // before connect: 4017
  EXPECT_EQ(p.ws_close_code(), 4017);
  // The server holds TCP open for the peer's close frame ...
  EXPECT_EQ(p.read_frame(close_timeout_ms / 3).status, raw_peer::ws_frame::timed_out);
  // ... and closes it once that came.
  p.send(raw_peer::close_frame(std::string("\x0f\xa9", 2)));
  EXPECT_EQ(p.read_frame(close_timeout_ms / 2).status, raw_peer::ws_frame::ended);
}

TEST_F(WsClose, ServerCloseEndsAfterTheTimeoutWithoutThePeersClose) {
  raw_peer p(srv->port);
  ASSERT_TRUE(p.ws_upgrade());
  p.send(raw_peer::text(R"({"cmd":"subscribe","id":2,"channel":"a"})"));
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(p.ws_close_code(), 4017);
  EXPECT_EQ(p.read_frame(close_timeout_ms * 5).status, raw_peer::ws_frame::ended);
  auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(waited, close_timeout_ms - 50);
}

TEST_F(WsClose, ViolationIsAnsweredAndTheServerStopsSending) {
  raw_peer p(srv->port);
  connect(p);
  p.send(raw_peer::frame(0x83, "x"));   // reserved opcode
  EXPECT_EQ(p.ws_close_code(), 1002);
  // Its sending side is shut at once (FIN), as Beast's teardown did; no waiting for a close frame.
  EXPECT_EQ(p.read_frame(close_timeout_ms / 2).status, raw_peer::ws_frame::ended);
}

TEST_F(WsClose, BinaryMessageIsReadLikeText) {
  raw_peer p(srv->port);
  ASSERT_TRUE(p.ws_upgrade());
  p.send(raw_peer::frame(0x82, R"({"cmd":"connect","id":1})"));
  EXPECT_NE(p.ws_text().find("\"connected\""), std::string::npos);
}

}  // namespace

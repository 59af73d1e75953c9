// POST /api/disconnect reads its body strictly (issue 18, defects 1, 4 and 5): exactly one target,
// delays bounded by max_reconnect_delay_ms, no unknown field. A malformed body is 400 (4000) and
// disconnects nobody; only {"all":true} addresses everyone.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "server/app/server.hpp"
#include "server/hub/broker.hpp"
#include "server/ops/config.hpp"
#include "tests/server/test_client.hpp"

namespace {

namespace ps = pushwire::server;
using namespace test;
using pushwire::protocol::frame_kind;

class ApiDisconnect : public ::testing::Test {
 protected:
  void SetUp() override {
    ps::config c;
    c.port = 0;
    c.threads = 2;
    c.api_key = "key";
    c.log_level = "error";
    c.shutdown_timeout_ms = 500;
    srv_ = std::make_unique<ps::server>(c);
    std::string err;
    ASSERT_TRUE(srv_->start(err)) << err;
    port = srv_->port();
  }
  void TearDown() override { srv_->shutdown(); }
  std::unique_ptr<ps::server> srv_;
  unsigned short port = 0;
};

TEST_F(ApiDisconnect, MalformedBodiesAre400AndDisconnectNobody) {
  ws_client a(port);
  ASSERT_EQ(a.connect().kind, frame_kind::connected);
  a.send(R"({"cmd":"subscribe","id":2,"channel":"d"})");
  ASSERT_EQ(a.next_non_ping().kind, frame_kind::subscribed);
  const std::string max = std::to_string(ps::max_reconnect_delay_ms);
  const std::string over = std::to_string(ps::max_reconnect_delay_ms + 1);
  const char* const bodies[] = {
      "",
      "[]",
      "null",
      "{}",
      R"({"client":7})",
      R"({"client":null})",
      R"({"client":""})",
      R"({"client":"bob"})",
      R"({"user":null})",
      R"({"user":""})",
      R"({"user":7})",
      R"({"all":false})",
      R"({"all":1})",
      R"({"all":"true"})",
      R"({"clinet":"c1"})",
      R"({"all":true,"user":"alice"})",
      R"({"client":"c1","user":"alice"})",
      R"({"all":true,"extra":1})",
      R"({"all":true,"reconnect":"yes"})",
      R"({"all":true,"jitter_ms":18446744073709551615})",
      R"({"all":true,"jitter_ms":-1})",
      R"({"all":true,"jitter_ms":1.5})",
      R"({"all":true,"jitter_ms":"5"})",
      R"({"all":true,"after_ms":9007199254740993})",
      R"({"all":true,"after_ms":18446744073709551615})",
      R"({"all":true,"after_ms":1e3})",
  };
  for (const char* body : bodies) {
    auto r = api_post(port, "/api/disconnect", body);
    EXPECT_EQ(r.status, 400u) << body << " -> " << r.body;
    EXPECT_NE(r.body.find("4000"), std::string::npos) << body << " -> " << r.body;
  }
  for (auto* k : {"after_ms", "jitter_ms"}) {
    auto body = std::string(R"({"all":true,")") + k + "\":" + over + "}";
    EXPECT_EQ(api_post(port, "/api/disconnect", body).status, 400u) << body;
  }
  // The maximum itself is accepted (a client id that matches nobody).
  auto ok = api_post(port, "/api/disconnect", R"({"client":"c999999","after_ms":)" + max + R"(,"jitter_ms":)" + max + "}");
  EXPECT_EQ(ok.status, 200u) << ok.body;
  EXPECT_EQ(ok.body, R"({"disconnected":0})");
  // The subscriber is still connected: the next frame it gets is the publication.
  ASSERT_EQ(api_post(port, "/api/publish", R"({"channel":"d","data":1})").status, 200u);
  auto f = a.next_non_ping();
  EXPECT_EQ(f.kind, frame_kind::message) << f.reason;
}

TEST_F(ApiDisconnect, EachTargetAddressesOnlyItsConnections) {
  ws_client a(port), b(port);
  auto ca = a.connect();
  ASSERT_EQ(ca.kind, frame_kind::connected);
  ASSERT_EQ(b.connect().kind, frame_kind::connected);
  auto one = api_post(port, "/api/disconnect", R"({"client":")" + ca.client + R"(","after_ms":5,"jitter_ms":0})");
  EXPECT_EQ(one.body, R"({"disconnected":1})");
  auto fa = a.next_non_ping();
  EXPECT_EQ(fa.kind, frame_kind::disconnect);
  EXPECT_EQ(fa.after_ms, 5u);
  auto all = api_post(port, "/api/disconnect", R"({"all":true,"jitter_ms":0})");
  EXPECT_EQ(all.status, 200u) << all.body;
  EXPECT_EQ(b.next_non_ping().kind, frame_kind::disconnect);
}

}  // namespace

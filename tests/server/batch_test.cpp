// Batches are all or nothing (issue 18, defect 10): a WebSocket message or a /cmd body with more
// commands than --max-batch is refused whole, and none of its publishes happened.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "server/app/server.hpp"
#include "server/ops/config.hpp"
#include "tests/server/test_client.hpp"

namespace {

namespace ps = pushwire::server;
namespace json = boost::json;
using namespace test;
using pushwire::protocol::code;
using pushwire::protocol::frame_kind;

class Batch : public ::testing::Test {
 protected:
  void SetUp() override {
    ps::config c;
    c.port = 0;
    c.threads = 2;
    c.api_key = "key";
    c.log_level = "error";
    c.max_batch = 3;
    c.handshake_timeout_ms = 5000;
    ps::namespace_config pub;
    pub.client_publish = true;
    c.namespaces["pub"] = pub;
    srv_ = std::make_unique<ps::server>(c);
    std::string err;
    ASSERT_TRUE(srv_->start(err)) << err;
    port_ = srv_->port();
  }
  void TearDown() override {
    if (srv_) srv_->shutdown();
  }
  static std::string publishes(int n, const std::string& channel) {
    std::string out;
    for (int i = 0; i < n; ++i) {
      out += R"({"cmd":"publish","id":)";
      out += std::to_string(10 + i);
      out += R"(,"channel":")";
      out += channel;
      out += R"(","data":1})";
      out += '\n';
    }
    return out;
  }
  std::size_t published(const std::string& channel) {
    auto r = api_get(port_, "/api/history?channel=" + channel);
    EXPECT_EQ(r.status, 200u) << r.body;
    return json::parse(r.body).at("publications").as_array().size();
  }

  std::unique_ptr<ps::server> srv_;
  unsigned short port_ = 0;
};

TEST_F(Batch, WebSocketMessageOverTheLimitRunsNothing) {
  ws_client c(port_);
  ASSERT_EQ(c.connect().kind, frame_kind::connected);
  c.send(publishes(4, "pub:w"));   // before the fix: the first 3 were published, unacknowledged
  auto f = c.next_non_ping();
  EXPECT_EQ(f.kind, frame_kind::error) << f.reason;
  EXPECT_EQ(f.error_code, code::bad_frame);
  c.next_non_ping();   // the close
  EXPECT_EQ(c.close_reason().code, 4000);
  EXPECT_EQ(published("pub:w"), 0u);
  // The limit itself still passes whole.
  ws_client d(port_);
  ASSERT_EQ(d.connect().kind, frame_kind::connected);
  d.send(publishes(3, "pub:w"));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(d.next_non_ping().kind, frame_kind::published);
  EXPECT_EQ(published("pub:w"), 3u);
}

TEST_F(Batch, CmdBodyOverTheLimitRunsNothing) {
  // connect + 3 publishes = 4 commands > 3: before the fix connect and two publishes ran.
  auto over = http_call(port_, http::verb::post, "/cmd", "{\"cmd\":\"connect\",\"id\":1}\n" + publishes(3, "pub:c"));
  EXPECT_EQ(over.status, 400u) << over.body;
  EXPECT_NE(over.body.find("4000"), std::string::npos) << over.body;
  EXPECT_EQ(published("pub:c"), 0u);
  auto ok = http_call(port_, http::verb::post, "/cmd", "{\"cmd\":\"connect\",\"id\":1}\n" + publishes(2, "pub:c"));
  EXPECT_EQ(ok.status, 200u) << ok.body;
  EXPECT_EQ(published("pub:c"), 2u);
}

}  // namespace

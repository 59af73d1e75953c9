// Subscription churn (issue 18, defect 2): one WebSocket subscribing and unsubscribing many
// distinct names leaves the channel table as it was and cannot make a backend publish fail, and
// the churn itself is rate-limited per connection (4011, the connection stays).
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

class Churn : public ::testing::Test {
 protected:
  void start(std::size_t burst, std::size_t per_s) {
    ps::config c;
    c.port = 0;
    c.threads = 2;
    c.api_key = "key";
    c.log_level = "error";
    c.max_channels = 100;
    c.handshake_timeout_ms = 5000;
    c.subscribe_churn_burst = burst;
    c.subscribe_churn_per_s = per_s;
    srv_ = std::make_unique<ps::server>(c);
    std::string err;
    ASSERT_TRUE(srv_->start(err)) << err;
    port_ = srv_->port();
  }
  void TearDown() override {
    if (srv_) srv_->shutdown();
  }
  std::uint64_t channels() {
    auto r = api_get(port_, "/api/stats");
    EXPECT_EQ(r.status, 200u) << r.body;
    return json::parse(r.body).at("channels").to_number<std::uint64_t>();
  }
  static std::string cmd(const char* kind, int id, const std::string& channel) {
    std::string out = R"({"cmd":")";
    out += kind;
    out += R"(","id":)";
    out += std::to_string(id);
    out += R"(,"channel":")";
    out += channel;
    out += "\"}\n";
    return out;
  }

  std::unique_ptr<ps::server> srv_;
  unsigned short port_ = 0;
};

// The reproduction, scaled: 2,000 distinct names against a cap of 100 channels. Before the fix
// every subscribe made a channel entry until the idle sweep: the table filled and the backend's
// publish to a new channel got 4020.
TEST_F(Churn, SubscribeUnsubscribeManyNamesLeavesTheTableAsItWas) {
  start(0, 0);   // no churn limit: the table itself must hold
  ASSERT_EQ(api_post(port_, "/api/publish", R"({"channel":"base","data":1})").status, 200u);
  auto before = channels();
  ws_client c(port_);
  ASSERT_EQ(c.connect().kind, frame_kind::connected);
  int id = 2;
  for (int round = 0; round < 40; ++round) {   // 50 subscribe + unsubscribe pairs per message
    std::string batch;
    for (int i = 0; i < 50; ++i) {
      auto name = "spray" + std::to_string(round * 50 + i);
      batch += cmd("subscribe", id++, name);
      batch += cmd("unsubscribe", id++, name);
    }
    c.send(batch);
    for (int i = 0; i < 100; ++i) {
      auto f = c.next_non_ping();
      ASSERT_TRUE(f.kind == frame_kind::subscribed || f.kind == frame_kind::unsubscribed)
          << pushwire::protocol::frame_name(f.kind) << " " << f.reason;
    }
  }
  EXPECT_EQ(channels(), before);
  auto fresh = api_post(port_, "/api/publish", R"({"channel":"fresh","data":1})");
  EXPECT_EQ(fresh.status, 200u) << fresh.body;
  EXPECT_EQ(channels(), before + 1);
}

TEST_F(Churn, ChurnOverTheBudgetIsRefusedWith4011AndTheConnectionStays) {
  start(10, 1);   // 10 at once, then one a second
  ws_client c(port_);
  ASSERT_EQ(c.connect().kind, frame_kind::connected);
  std::string batch;
  for (int i = 0; i < 30; ++i) batch += cmd("subscribe", 100 + i, "r" + std::to_string(i));
  c.send(batch);
  int ok = 0, limited = 0;
  for (int i = 0; i < 30; ++i) {
    auto f = c.next_non_ping();
    if (f.kind == frame_kind::subscribed) ++ok;
    else if (f.kind == frame_kind::error && f.error_code == code::rate_limited) ++limited;
    else ADD_FAILURE() << pushwire::protocol::frame_name(f.kind) << " " << f.reason;
  }
  EXPECT_GE(ok, 10);
  EXPECT_LE(ok, 12);   // the burst, plus what one second refills while the test runs
  EXPECT_EQ(ok + limited, 30);
  // Still open and serving: a command that is not churn is answered.
  c.send(R"({"cmd":"history","id":500,"channel":"r0"})");
  EXPECT_EQ(c.next_non_ping().kind, frame_kind::history);
}

}  // namespace

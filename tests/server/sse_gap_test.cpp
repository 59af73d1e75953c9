// A plain EventSource learns of gaps (issue 18, defect 9): when history cannot cover a resume, the
// SSE stream carries a named `event: gap`; and the defaults keep enough history for a resume
// across the server's own retry window at tens of messages per second.
#include <gtest/gtest.h>

#include "server/app/server.hpp"
#include "server/ops/config.hpp"
#include "tests/server/test_client.hpp"

namespace {

namespace ps = pushwire::server;
using namespace test;

class SseGap : public ::testing::Test {
 protected:
  void start(ps::config c) {
    c.port = 0;
    c.threads = 2;
    c.api_key = "key";
    c.log_level = "error";
    srv_ = std::make_unique<ps::server>(c);
    std::string err;
    ASSERT_TRUE(srv_->start(err)) << err;
    port_ = srv_->port();
  }
  void TearDown() override {
    if (srv_) srv_->shutdown();
  }
  std::string publish(const std::string& channel, int n) {   // the last answer's epoch
    std::string epoch;
    api_client api(port_);
    for (int i = 0; i < n; ++i) {
      auto r = api.post("/api/publish", R"({"channel":")" + channel + R"(","data":)" + std::to_string(i) + "}");
      EXPECT_EQ(r.status, 200u) << r.body;
      auto at = r.body.find("\"epoch\":\"");
      if (at != std::string::npos) epoch = r.body.substr(at + 9, r.body.find('"', at + 9) - at - 9);
    }
    return epoch;
  }

  std::unique_ptr<ps::server> srv_;
  unsigned short port_ = 0;
};

TEST_F(SseGap, AResumeHistoryCannotCoverSendsANamedGapEvent) {
  ps::config c;
  c.history_size = 3;
  start(c);
  auto epoch = publish("g", 10);   // offsets 1-10; only 8-10 are kept
  sse_client s(port_, "/sse?channels=g", {{"Last-Event-ID", epoch + "-2"}});
  ASSERT_EQ(s.status, 200u);
  bool control = false, gap = false;
  for (int i = 0; i < 4 && !gap; ++i) {
    auto e = s.next_non_ping();
    ASSERT_FALSE(e.timeout);
    if (e.event == "control" && e.data.find("\"subscribed\"") != std::string::npos) {
      control = true;
      EXPECT_NE(e.data.find("\"recovered\":false"), std::string::npos) << e.data;
    }
    if (e.event == "gap") {
      gap = true;
      EXPECT_NE(e.data.find("\"channel\":\"g\""), std::string::npos) << e.data;
    }
  }
  EXPECT_TRUE(control);
  EXPECT_TRUE(gap) << "no `event: gap` for a resume history could not cover";
  // A resume history covers has no gap event: the replay follows the subscribed frame.
  sse_client ok(port_, "/sse?channels=g", {{"Last-Event-ID", epoch + "-8"}});
  for (int off = 9; off <= 10;) {
    auto e = ok.next_non_ping();
    ASSERT_FALSE(e.timeout);
    EXPECT_NE(e.event, "gap") << e.data;
    if (e.event.empty()) {
      EXPECT_NE(e.data.find("\"offset\":" + std::to_string(off)), std::string::npos) << e.data;
      ++off;
    }
  }
}

// The defaults: 50 messages a second for a retry window of the server's own `retry:` (at most
// 1.5 x 2 s) plus margin, i.e. 10 s = 500 publications missed, are still covered.
TEST_F(SseGap, DefaultsCoverTheRetryWindowAtFiftyMessagesPerSecond) {
  ps::config defaults;
  EXPECT_GE(defaults.history_size * 1000 / 50, 3 * defaults.sse_retry_ms / 2 + 5000)
      << "history at 50 msg/s must outlast the retry window plus margin";
  start(defaults);
  auto epoch = publish("busy", 501);
  sse_client s(port_, "/sse?channels=busy", {{"Last-Event-ID", epoch + "-1"}});
  ASSERT_EQ(s.status, 200u);
  sse_event sub;
  do sub = s.next_non_ping();
  while (!sub.timeout && sub.data.find("\"subscribed\"") == std::string::npos);
  EXPECT_NE(sub.data.find("\"recovered\":true"), std::string::npos) << sub.data;
  int replayed = 0;
  while (replayed < 500) {
    auto e = s.next_non_ping();
    ASSERT_FALSE(e.timeout) << replayed;
    ASSERT_NE(e.event, "gap");
    if (e.event.empty()) ++replayed;
  }
}

}  // namespace

// A token over --max-token-bytes is refused before any stream starts, on SSE as on the other
// transports (issue 18, defect 13: SSE answered 200 and refused it in-stream with 4004). A token
// of the same kind within the bound opens the stream, so the length alone decides.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "server/app/server.hpp"
#include "server/ops/config.hpp"
#include "server/ops/jwt.hpp"
#include "tests/server/test_client.hpp"

namespace {

namespace ps = pushwire::server;
using namespace test;

class SseToken : public ::testing::Test {
 protected:
  void SetUp() override {
    ps::config c;
    c.port = 0;
    c.threads = 1;
    c.api_key = "key";
    c.log_level = "error";
    c.token_secret = "secret";
    c.max_token_bytes = 300;
    c.shutdown_timeout_ms = 500;
    srv_ = std::make_unique<ps::server>(c);
    std::string err;
    ASSERT_TRUE(srv_->start(err)) << err;
    port = srv_->port();
  }
  void TearDown() override { srv_->shutdown(); }
  static std::string token_with_user(std::size_t user_bytes) {
    ps::token_claims claims;
    claims.user = std::string(user_bytes, 'u');
    claims.exp = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count() + 600;
    return ps::sign_jwt(claims, "secret");
  }
  std::unique_ptr<ps::server> srv_;
  unsigned short port = 0;
};

TEST_F(SseToken, OverLongTokenIs401BeforeTheStream) {
  auto fits = token_with_user(10);
  ASSERT_LE(fits.size(), 300u);
  sse_client ok(port, "/sse?channels=a&token=" + fits);
  EXPECT_EQ(ok.status, 200u);
  auto first = ok.next_non_ping();
  EXPECT_NE(first.data.find("\"connected\""), std::string::npos) << first.data;

  auto too_long = token_with_user(400);
  ASSERT_GT(too_long.size(), 300u);
  sse_client in_query(port, "/sse?channels=a&token=" + too_long);
  EXPECT_EQ(in_query.status, 401u);
  sse_client in_header(port, "/sse?channels=a", {{"Authorization", "Bearer " + too_long}});
  EXPECT_EQ(in_header.status, 401u);
  auto r = http_call(port, http::verb::get, "/sse?channels=a&token=" + too_long);
  EXPECT_EQ(r.status, 401u);
  EXPECT_NE(r.body.find("4004"), std::string::npos) << r.body;
}

}  // namespace

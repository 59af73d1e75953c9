// A connection whose token expires while it is open is warned (error 4005) and then disconnected
// with 4005 at expiry — with the server's clock injected, so the minute this takes is a few
// microseconds of test time.
#include <gtest/gtest.h>

#include <ctime>

#include "server/app/server.hpp"
#include "server/ops/jwt.hpp"
#include "tests/server/test_client.hpp"

namespace ps = pushwire::server;
using namespace test;

TEST(TokenExpiry, OpenConnectionIsWarnedThenCutWith4005) {
  ps::manual_clock clk;
  ps::config c;
  c.port = 0;
  c.threads = 1;
  c.api_key = "key";
  c.log_level = "error";
  c.token_secret = "secret";
  c.housekeeping_ms = 10;          // the real tick that reads the manual clock
  c.write_coalesce_us = 0;         // a frozen clock must not hold writes back
  c.token_refresh_warning_ms = 10000;
  ps::server srv(c, &clk);
  std::string err;
  ASSERT_TRUE(srv.start(err)) << err;
  ps::token_claims claims;
  claims.user = "alice";
  claims.exp = static_cast<std::int64_t>(time(nullptr));   // accepted for the 30 s leeway
  ws_client ws(srv.port());
  ASSERT_EQ(ws.connect(ps::sign_jwt(claims, "secret")).kind, pp::frame_kind::connected);
  clk.advance(15'000);   // 15 s left: inside the 10 s warning? not yet
  clk.advance(6'000);    // 9 s left: warned
  auto warn = ws.next_non_ping();
  EXPECT_EQ(warn.kind, pp::frame_kind::error);
  EXPECT_EQ(warn.error_code, pp::code::token_expired);
  EXPECT_EQ(warn.id, 0u);
  clk.advance(10'000);   // past expiry
  auto d = ws.next_non_ping();
  EXPECT_EQ(d.kind, pp::frame_kind::disconnect) << d.reason;
  EXPECT_EQ(d.error_code, pp::code::token_expired);
  EXPECT_TRUE(d.reconnect);
  ws.next();   // the close
  EXPECT_EQ(static_cast<int>(ws.close_reason().code), 4005);
}

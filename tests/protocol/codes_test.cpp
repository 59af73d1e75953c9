#include "protocol/codes.hpp"

#include <gtest/gtest.h>

using namespace pushwire::protocol;

TEST(Codes, EveryCodeHasANameAndReconnectAdvice) {
  for (code c : {code::bad_frame, code::slow_consumer, code::unauthorized, code::shutting_down, code::message_too_big}) {
    EXPECT_NE(code_name(c), "unknown code");
  }
  EXPECT_TRUE(reconnect_advised(code::slow_consumer));
  EXPECT_TRUE(reconnect_advised(code::shutting_down));
  EXPECT_TRUE(reconnect_advised(code::token_expired));
  EXPECT_FALSE(reconnect_advised(code::unauthorized));
  EXPECT_FALSE(reconnect_advised(code::bad_frame));
  EXPECT_FALSE(reconnect_advised(code::message_too_big));
  EXPECT_EQ(code_name(static_cast<code>(4242)), "unknown code");
}

#include "protocol/position.hpp"

#include <gtest/gtest.h>

using namespace pushwire::protocol;

TEST(ResumeToken, EncodesAndDecodesSeveralChannels) {
  std::vector<std::optional<position>> p{position{"k3j9x2ab", 42}, std::nullopt, position{"b7q1zz0c", 0}};
  std::string token = encode_resume_token(p);
  EXPECT_EQ(token, "k3j9x2ab-42.~.b7q1zz0c-0");
  auto back = decode_resume_token(token);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, p);
  EXPECT_EQ(encode_resume_token({position{"e", 7}}), "e-7");
}

TEST(ResumeToken, RefusesMalformedTokens) {
  for (std::string_view bad : {"", ".", "e-", "-1", "e1", "E-1", "e-1.", ".e-1", "e-1..e-2", "e-01", "e--1", "e-1x",
                               "abcdefghijklmnopq-1", "e-9007199254740992", "e-1 "}) {
    EXPECT_FALSE(decode_resume_token(bad)) << bad;
  }
  std::string many;
  for (int i = 0; i < 65; ++i) many += i ? ".~" : "~";
  EXPECT_FALSE(decode_resume_token(many));
  many.resize(many.size() - 2);
  EXPECT_TRUE(decode_resume_token(many));
}

TEST(Epoch, IsValidAndSpreads) {
  std::string a = make_epoch(1), b = make_epoch(2);
  EXPECT_TRUE(valid_epoch(a));
  EXPECT_TRUE(valid_epoch(b));
  EXPECT_NE(a, b);
  EXPECT_EQ(a.size(), 8u);
  EXPECT_EQ(make_epoch(1), a);
}

#include "protocol/channel_name.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace pushwire::protocol;

TEST(ChannelName, AcceptsPlainAndNamespacedNames) {
  EXPECT_TRUE(valid_channel("scores"));
  EXPECT_TRUE(valid_channel("demo:chat"));
  EXPECT_TRUE(valid_channel("a.b-c_d=e@f"));
  EXPECT_TRUE(valid_channel(std::string(max_channel_length, 'x')));
}

TEST(ChannelName, RefusesBadNames) {
  EXPECT_FALSE(valid_channel(""));
  EXPECT_FALSE(valid_channel(std::string(max_channel_length + 1, 'x')));
  EXPECT_FALSE(valid_channel("a b"));
  EXPECT_FALSE(valid_channel("a,b"));
  EXPECT_FALSE(valid_channel(":chat"));
  EXPECT_FALSE(valid_channel("demo:"));
  EXPECT_FALSE(valid_channel("a:b:c"));
  EXPECT_FALSE(valid_channel("ns.x:chat"));
  EXPECT_FALSE(valid_channel("caf\xc3\xa9"));
  EXPECT_FALSE(valid_channel(std::string("a\0b", 3)));
}

TEST(ChannelName, NamespaceAndPrivacy) {
  EXPECT_EQ(channel_namespace("scores"), "");
  EXPECT_EQ(channel_namespace("demo:chat"), "demo");
  EXPECT_TRUE(is_private_channel("private-alice"));
  EXPECT_TRUE(is_private_channel("team:private-ops"));
  EXPECT_FALSE(is_private_channel("public-private-x"));
}

// Numbers from flags, the environment and the config file are bounded where they enter: each must
// fit its field (no silent wrap: --threads 2^32 was 0, one thread per core) and the protocol's
// integer range 0 ... 2^53 - 1 (a ping interval goes out in `connected`). Issue 18, must-deliver 1.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "server/ops/config.hpp"

namespace {

namespace ps = pushwire::server;

bool accepts(std::string flag, std::string value) {
  std::string arg = "--" + flag + "=" + value;
  const char* argv[] = {"x", arg.c_str()};
  return ps::parse_config(2, argv, {}).ok;
}

TEST(ConfigBounds, NumbersMustFitTheirFieldAndTheProtocolRange) {
  EXPECT_TRUE(accepts("ping-interval-ms", "9007199254740991"));
  EXPECT_FALSE(accepts("ping-interval-ms", "9007199254740992"));
  EXPECT_FALSE(accepts("ping-interval-ms", "18446744073709551615"));
  EXPECT_FALSE(accepts("ping-interval-ms", "18446744073709551616"));
  EXPECT_FALSE(accepts("ping-interval-ms", "-1"));
  EXPECT_TRUE(accepts("threads", "4"));
  EXPECT_FALSE(accepts("threads", "4294967296"));   // unsigned: would wrap to 0
  EXPECT_FALSE(accepts("port", "4294967297"));      // int: would wrap to 1
  EXPECT_FALSE(accepts("reconnect-jitter-ms", "18446744073709551615"));
  const char* argv[] = {"x"};
  EXPECT_FALSE(ps::parse_config(1, argv, {{"PUSHWIRE_HEADER_LIMIT", "9007199254740992"}}).ok);
  auto path = std::string(::testing::TempDir()) + "/pw_bounds.json";
  std::ofstream(path) << R"({"max_message_bytes":18446744073709551615})";
  const char* with_file[] = {"x", "--config", path.c_str()};
  EXPECT_FALSE(ps::parse_config(3, with_file, {}).ok);
}

TEST(ConfigBounds, SsePaddingIsBounded) {
  EXPECT_TRUE(accepts("sse-padding-bytes", "0"));
  EXPECT_TRUE(accepts("sse-padding-bytes", std::to_string(ps::max_sse_padding_bytes)));
  EXPECT_FALSE(accepts("sse-padding-bytes", std::to_string(ps::max_sse_padding_bytes + 1)));
}

TEST(ConfigBounds, WriteCoalescingIsBounded) {
  EXPECT_TRUE(accepts("write-coalesce-us", "1000000"));
  EXPECT_FALSE(accepts("write-coalesce-us", "1000001"));
  EXPECT_TRUE(accepts("write-coalesce-factor", "0"));
  EXPECT_TRUE(accepts("write-coalesce-factor", "64"));
  EXPECT_FALSE(accepts("write-coalesce-factor", "65"));
}

}  // namespace

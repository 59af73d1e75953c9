// Pusher's naming rules (server/pusher/pusher_names.hpp) and the registry key of a Pusher user.
#include <gtest/gtest.h>

#include <string>

#include "server/pusher/pusher_apps.hpp"
#include "server/pusher/pusher_names.hpp"

namespace {

namespace ps = pushwire::server;

TEST(PusherNames, ChannelNames) {
  EXPECT_TRUE(ps::valid_pusher_channel("presence-room_1-a=b@c,d.e;f"));
  EXPECT_TRUE(ps::valid_pusher_channel("#server-to-user-42"));
  EXPECT_TRUE(ps::valid_pusher_channel(std::string(164, 'a')));
  EXPECT_FALSE(ps::valid_pusher_channel(std::string(165, 'a')));
  EXPECT_FALSE(ps::valid_pusher_channel(""));
  EXPECT_FALSE(ps::valid_pusher_channel("#server-to-user-"));
  EXPECT_FALSE(ps::valid_pusher_channel("#other"));
  for (const char* bad : {"a b", "a:b", "a/b", "a#b", "caf\xc3\xa9", "a\"b"}) EXPECT_FALSE(ps::valid_pusher_channel(bad)) << bad;
}

TEST(PusherNames, SocketIds) {
  EXPECT_TRUE(ps::valid_socket_id("123.456"));
  EXPECT_TRUE(ps::valid_socket_id("1.2"));
  for (const char* bad : {"", "1", "1.", ".1", "1.2.3", "a.1", "1.2 ", "-1.2"}) EXPECT_FALSE(ps::valid_socket_id(bad)) << bad;
  EXPECT_TRUE(ps::valid_socket_id(std::string(20, '1') + "." + std::string(20, '2')));
  EXPECT_FALSE(ps::valid_socket_id(std::string(21, '1') + ".2"));
}

TEST(PusherNames, EventNames) {
  EXPECT_TRUE(ps::valid_pusher_event(std::string(200, 'e')));
  EXPECT_FALSE(ps::valid_pusher_event(std::string(201, 'e')));
  EXPECT_FALSE(ps::valid_pusher_event(""));
}

TEST(PusherNames, UserKeySeparatesApps) {
  ps::pusher_app a;
  a.id = "7";
  EXPECT_EQ(ps::pusher_user_key(a, "u1"), "pusher:7:u1");
}

}  // namespace

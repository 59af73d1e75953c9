// valid_websocket_key: base64 of exactly 16 bytes, nothing else (RFC 6455 §4.2.1; issue 18, defect 8).
#include <gtest/gtest.h>

#include "server/http/ws_key.hpp"

namespace {

using pushwire::server::valid_websocket_key;

TEST(WebSocketKey, OnlyBase64OfSixteenBytes) {
  EXPECT_TRUE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ=="));
  EXPECT_TRUE(valid_websocket_key("AAAAAAAAAAAAAAAAAAAA+/=="));
  for (const char* bad : {"", "AAAAAAAAAAA=", "!!!!!!!!!!!!!!!!!!!!!!==", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ=",
                          "dGhlIHNhbXBsZSBub25jZQ===", "dGhlIHNhbXBsZSBub25jZ===", "dGhlIHNhbXBsZSBub25jZQ==AAAA",
                          "dGhlIHNhbXBsZSBub2 jZQ=="})
    EXPECT_FALSE(valid_websocket_key(bad)) << bad;
}

}  // namespace

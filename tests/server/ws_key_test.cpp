// valid_websocket_key: base64 of exactly 16 bytes, nothing else (RFC 6455 §4.2.1; issue 18, defect 8).
// websocket_handshake: the answer Beast's accept gave, byte for byte (issue 19: our own WebSocket).
#include <gtest/gtest.h>

#include "server/http/ws_key.hpp"

namespace {

using pushwire::server::valid_websocket_key;
using pushwire::server::websocket_accept;
using pushwire::server::websocket_handshake;
namespace http = boost::beast::http;

http::request<http::string_body> upgrade(std::string_view version = "13") {
  http::request<http::string_body> r{http::verb::get, "/ws", 11};
  r.set(http::field::host, "x");
  r.set(http::field::upgrade, "websocket");
  r.set(http::field::connection, "keep-alive, Upgrade");
  r.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
  if (!version.empty()) r.set(http::field::sec_websocket_version, version);
  return r;
}

TEST(WebSocketKey, OnlyBase64OfSixteenBytes) {
  EXPECT_TRUE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ=="));
  EXPECT_TRUE(valid_websocket_key("AAAAAAAAAAAAAAAAAAAA+/=="));
  for (const char* bad : {"", "AAAAAAAAAAA=", "!!!!!!!!!!!!!!!!!!!!!!==", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ=",
                          "dGhlIHNhbXBsZSBub25jZQ===", "dGhlIHNhbXBsZSBub25jZ===", "dGhlIHNhbXBsZSBub25jZQ==AAAA",
                          "dGhlIHNhbXBsZSBub2 jZQ=="})
    EXPECT_FALSE(valid_websocket_key(bad)) << bad;
}

TEST(WebSocketHandshake, AcceptIsTheRfcExample) {
  EXPECT_EQ(websocket_accept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");   // RFC 6455 §1.3
}

TEST(WebSocketHandshake, SwitchingProtocols) {
  auto a = websocket_handshake(upgrade(), "pushwire");
  EXPECT_TRUE(a.accepted);
  EXPECT_EQ(a.response,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nServer: pushwire\r\n\r\n");
}

TEST(WebSocketHandshake, RefusalsAsBeastGaveThem) {
  auto v12 = websocket_handshake(upgrade("12"), "pushwire");
  EXPECT_FALSE(v12.accepted);
  EXPECT_EQ(v12.response,
            "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nContent-Length: 62\r\nServer: pushwire\r\n\r\n"
            "The WebSocket handshake Sec-WebSocket-Version field is invalid");
  auto none = websocket_handshake(upgrade(""), "pushwire");
  EXPECT_FALSE(none.accepted);
  EXPECT_TRUE(none.response.starts_with("HTTP/1.1 400 Bad Request\r\n")) << none.response;
  EXPECT_TRUE(none.response.ends_with("Sec-WebSocket-Version field is missing")) << none.response;
  auto r = upgrade();
  r.erase(http::field::host);
  auto nohost = websocket_handshake(r, "pushwire");
  EXPECT_FALSE(nohost.accepted);
  EXPECT_TRUE(nohost.response.ends_with("\r\n\r\nThe WebSocket handshake Host field is missing")) << nohost.response;
  auto p = upgrade();
  p.method(http::verb::post);
  EXPECT_FALSE(websocket_handshake(p, "pushwire").accepted);
  auto c = upgrade();
  c.set(http::field::connection, "keep-alive");
  EXPECT_FALSE(websocket_handshake(c, "pushwire").accepted);
  auto u = upgrade();
  u.set(http::field::upgrade, "h2c");
  EXPECT_FALSE(websocket_handshake(u, "pushwire").accepted);
}

}  // namespace

#include "server/http/ws_key.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <boost/beast/http/rfc7230.hpp>

namespace pushwire::server {

namespace http = boost::beast::http;

bool valid_websocket_key(std::string_view key) {
  if (key.size() != 24 || !key.ends_with("==")) return false;
  for (char c : key.substr(0, 22)) {
    bool b64 = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
    if (!b64) return false;
  }
  return true;
}

std::string websocket_accept(std::string_view key) {
  std::string in(key);
  in += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(in.data()), in.size(), digest);
  unsigned char out[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  int n = EVP_EncodeBlock(out, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
}

namespace {

std::string refusal(std::string_view status, std::string_view extra, std::string_view message, std::string_view server) {
  std::string r = "HTTP/1.1 ";
  r += status;
  r += "\r\n";
  r += extra;
  r += "Content-Length: " + std::to_string(message.size()) + "\r\nServer: ";
  r += server;
  r += "\r\n\r\n";
  r += message;
  return r;
}

}  // namespace

websocket_answer websocket_handshake(const http::request<http::string_body>& req, std::string_view server) {
  auto bad = [&](std::string_view message) { return websocket_answer{false, refusal("400 Bad Request", "", message, server)}; };
  if (req.version() != 11) return bad("The WebSocket handshake was not HTTP/1.1");
  if (req.method() != http::verb::get) return bad("The WebSocket handshake method was not GET");
  if (req.find(http::field::host) == req.end()) return bad("The WebSocket handshake Host field is missing");
  auto connection = req.find(http::field::connection);
  if (connection == req.end()) return bad("The WebSocket handshake Connection field is missing");
  if (!http::token_list{connection->value()}.exists("upgrade"))
    return bad("The WebSocket handshake Connection field is missing the upgrade token");
  auto upgrade = req.find(http::field::upgrade);
  if (upgrade == req.end()) return bad("The WebSocket handshake Upgrade field is missing");
  if (!http::token_list{upgrade->value()}.exists("websocket"))
    return bad("The WebSocket handshake Upgrade field is missing the websocket token");
  auto key = req.find(http::field::sec_websocket_key);
  if (key == req.end()) return bad("The WebSocket handshake Sec-WebSocket-Key field is missing");
  if (!valid_websocket_key(key->value())) return bad("The WebSocket handshake Sec-WebSocket-Key field is invalid");
  auto version = req.find(http::field::sec_websocket_version);
  if (version == req.end()) return bad("The WebSocket handshake Sec-WebSocket-Version field is missing");
  if (version->value() != "13")
    return {false, refusal("426 Upgrade Required", "Sec-WebSocket-Version: 13\r\n",
                           "The WebSocket handshake Sec-WebSocket-Version field is invalid", server)};
  std::string r = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Accept: ";
  r += websocket_accept(key->value());
  r += "\r\nServer: ";
  r += server;
  r += "\r\n\r\n";
  return {true, std::move(r)};
}

}  // namespace pushwire::server

// An HTTP request as the handlers (API, /cmd, /demo/publish) see it, their reply, and the mapping
// of protocol codes to HTTP statuses. No networking header: the HTTP session does the I/O.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/codes.hpp"

namespace pushwire::server {

struct http_in {
  std::string method;
  std::string path;
  std::map<std::string, std::string> query;   // percent-decoded
  std::string body;
  std::string authorization;                  // the value after "Bearer "
  std::string origin;
  std::string remote;                         // client address
  std::string content_type;
};

struct http_reply {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Handlers answer through a callback: the hub may complete later (a store behind the network).
using http_respond = std::function<void(http_reply)>;

unsigned http_status(protocol::code c);
std::string error_json(protocol::code c, std::string_view reason);
http_reply error_reply(protocol::code c, std::string_view reason);
http_reply json_reply(std::string body);

}  // namespace pushwire::server

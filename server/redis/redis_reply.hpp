// A Redis reply as a plain value (a copy of hiredis's redisReply, so it outlives the reader), and
// the connection URL. No networking header.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pushwire::server {

struct redis_reply {
  enum class kind : std::uint8_t { string, array, integer, nil, status, error };
  kind type = kind::nil;
  long long integer = 0;
  std::string str;                     // string, status, error
  std::vector<redis_reply> elements;   // array
  // A failure of a command that was written before the connection broke or timed out: Redis may
  // have run it (a stalled Redis runs what it already read when it resumes).
  bool outcome_unknown = false;
  bool is_error() const { return type == kind::error; }
  static redis_reply failure(std::string why) {
    redis_reply r;
    r.type = kind::error;
    r.str = std::move(why);
    return r;
  }
};

// redis://[:password@]host[:port][/db]  or  unix:/path/to/socket[?db=N]
struct redis_endpoint {
  std::string host = "127.0.0.1";
  unsigned short port = 6379;
  std::string unix_path;   // non-empty: a Unix socket instead of host:port
  std::string password;
  unsigned db = 0;
};
bool parse_redis_url(std::string_view url, redis_endpoint& out, std::string& error);

}  // namespace pushwire::server

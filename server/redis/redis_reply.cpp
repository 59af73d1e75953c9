#include "server/redis/redis_reply.hpp"

#include <charconv>

namespace pushwire::server {

namespace {
bool parse_number(std::string_view s, unsigned long max, unsigned long& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && out <= max;
}
}  // namespace

bool parse_redis_url(std::string_view url, redis_endpoint& out, std::string& error) {
  out = redis_endpoint{};
  unsigned long n = 0;
  if (url.starts_with("unix:")) {
    auto rest = url.substr(5);
    auto q = rest.find('?');
    out.unix_path = std::string(rest.substr(0, q));
    if (out.unix_path.empty() || out.unix_path[0] != '/') return error = "unix: needs an absolute socket path", false;
    if (q != std::string_view::npos) {
      auto query = rest.substr(q + 1);
      if (!query.starts_with("db=") || !parse_number(query.substr(3), 15, n)) return error = "unix: only ?db=0..15", false;
      out.db = static_cast<unsigned>(n);
    }
    return true;
  }
  if (!url.starts_with("redis://")) return error = "a Redis URL starts with redis:// or unix:", false;
  auto rest = url.substr(8);
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    auto auth = rest.substr(0, at);
    if (auth.starts_with(':')) auth.remove_prefix(1);
    out.password = std::string(auth);
    rest.remove_prefix(at + 1);
  }
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    auto db = rest.substr(slash + 1);
    if (!db.empty() && !parse_number(db, 15, n)) return error = "database must be 0..15", false;
    out.db = static_cast<unsigned>(n);
    rest = rest.substr(0, slash);
  }
  if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    if (!parse_number(rest.substr(colon + 1), 65535, n) || n == 0) return error = "bad port", false;
    out.port = static_cast<unsigned short>(n);
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return error = "a host is required", false;
  out.host = std::string(rest);
  return true;
}

}  // namespace pushwire::server

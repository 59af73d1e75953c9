#include "server/pusher/pusher_auth.hpp"

#include <algorithm>
#include <utility>
#include <vector>

#include "protocol/json_scan.hpp"
#include "server/pusher/pusher_signature.hpp"

namespace pushwire::server {

namespace {
std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}
const std::string* find(const std::map<std::string, std::string>& q, const char* k) {
  auto it = q.find(k);
  return it == q.end() ? nullptr : &it->second;
}
}  // namespace

std::string pusher_string_to_sign(std::string_view method, std::string_view path,
                                  const std::map<std::string, std::string>& query) {
  std::vector<std::pair<std::string, std::string_view>> kv;
  kv.reserve(query.size());
  for (auto& [k, v] : query) {
    auto lk = lower(k);
    if (lk != "auth_signature") kv.emplace_back(std::move(lk), v);
  }
  std::sort(kv.begin(), kv.end());   // by key (byte order, as the SDKs' sort), then value
  std::string out;
  out.reserve(method.size() + path.size() + 64 * kv.size() + 2);
  for (char c : method) out += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  out += '\n';
  out += path;
  out += '\n';
  for (std::size_t i = 0; i < kv.size(); ++i) {
    if (i) out += '&';
    out += kv[i].first;
    out += '=';
    out += kv[i].second;
  }
  return out;
}

unsigned check_pusher_auth(const pusher_app& app, std::string_view method, std::string_view path,
                           const std::map<std::string, std::string>& query, std::string_view body,
                           std::uint64_t now_s, std::string& reason) {
  auto* key = find(query, "auth_key");
  auto* ts = find(query, "auth_timestamp");
  auto* version = find(query, "auth_version");
  auto* sig = find(query, "auth_signature");
  if (!key || !ts || !version || !sig) {
    reason = "auth_key, auth_timestamp, auth_version and auth_signature are required";
    return 401;
  }
  if (!equal_constant_time(*key, app.key)) { reason = "unknown auth_key"; return 401; }
  if (*version != "1.0") { reason = "auth_version must be 1.0"; return 401; }
  auto t = protocol::parse_uint(*ts);
  if (!t) { reason = "auth_timestamp must be seconds since the Unix epoch"; return 401; }
  std::uint64_t skew = *t > now_s ? *t - now_s : now_s - *t;
  if (skew > pusher_auth_window_s) {
    reason = "auth_timestamp is more than 600 s from the server's time (check the clock)";
    return 401;
  }
  // An SDK sends body_md5 for every non-empty body; a body without it could be swapped.
  auto* md5 = find(query, "body_md5");
  if (!body.empty() && !md5) { reason = "body_md5 is required for a request with a body"; return 401; }
  if (md5 && !equal_constant_time(*md5, md5_hex(body))) { reason = "body_md5 does not match the body"; return 401; }
  auto expected = hmac_sha256_hex(app.secret, pusher_string_to_sign(method, path, query));
  if (!equal_constant_time(lower(*sig), expected)) { reason = "invalid auth_signature"; return 401; }
  return 0;
}

}  // namespace pushwire::server

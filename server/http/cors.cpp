#include "server/http/cors.hpp"

namespace pushwire::server {

bool origin_allowed(const config& cfg, std::string_view origin) {
  if (origin.empty()) return true;
  for (auto& o : cfg.allowed_origins)
    if (o == "*" || o == origin) return true;
  if (cfg.demo) {
    // (https too: the demo served with --tls-cert is the same demo.)
    for (std::string_view prefix : {"http://localhost", "http://127.0.0.1", "https://localhost", "https://127.0.0.1"}) {
      if (!origin.starts_with(prefix)) continue;
      auto rest = origin.substr(prefix.size());
      if (rest.empty()) return true;
      if (rest[0] != ':' || rest.size() < 2) continue;
      bool digits = true;
      for (char c : rest.substr(1)) digits = digits && c >= '0' && c <= '9';
      if (digits) return true;
    }
  }
  return false;
}

void add_cors(const config& cfg, const request& req, http::fields& out) {
  auto origin = req[http::field::origin];
  if (origin.empty() || !origin_allowed(cfg, origin)) return;
  out.set(http::field::access_control_allow_origin, origin);
  out.set(http::field::vary, "Origin");
  out.set(http::field::access_control_expose_headers, "Pushwire-Cursor");
}

}  // namespace pushwire::server

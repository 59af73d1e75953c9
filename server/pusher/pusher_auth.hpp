// The signature of a Pusher HTTP API request (docs/pusher.md "HTTP API"), as the server SDKs make
// it: auth_signature = HMAC-SHA256(secret, METHOD "\n" PATH "\n" QUERY) in lowercase hex, where
// QUERY is every query parameter but auth_signature, keys lowercased and sorted, joined as `k=v`
// with `&`, values as they were before URL-encoding (the SDKs do not encode them). Pure: the caller
// passes the time.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "server/pusher/pusher_apps.hpp"

namespace pushwire::server {

// Pusher's window: a request signed more than this far from our clock is refused (a replay bound).
inline constexpr std::uint64_t pusher_auth_window_s = 600;

// The string an SDK signs for this request (`query` percent-decoded; auth_signature is skipped).
std::string pusher_string_to_sign(std::string_view method, std::string_view path,
                                  const std::map<std::string, std::string>& query);

// 0 when the request is signed by `app` within the window; else the HTTP status to answer (401, as
// Pusher does, for a missing, malformed or wrong key, timestamp, version, body MD5 or signature)
// with `reason` filled.
unsigned check_pusher_auth(const pusher_app& app, std::string_view method, std::string_view path,
                           const std::map<std::string, std::string>& query, std::string_view body,
                           std::uint64_t now_s, std::string& reason);

}  // namespace pushwire::server

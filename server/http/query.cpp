#include "server/http/query.hpp"

namespace pushwire::server {

using protocol::code;

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> parse_query(std::string_view q) {
  std::map<std::string, std::string> out;
  while (!q.empty()) {
    auto amp = q.find('&');
    auto kv = q.substr(0, amp);
    auto eq = kv.find('=');
    if (!kv.empty()) {
      if (eq == std::string_view::npos) out[percent_decode(kv)] = "";
      else out[percent_decode(kv.substr(0, eq))] = percent_decode(kv.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return out;
}

bool parse_stream_params(std::size_t max_channels, std::string_view channels, std::string_view token_text,
                         std::string token, stream_params& out, code& c, std::string& reason) {
  out.token = std::move(token);
  std::string_view list = channels;
  while (!list.empty()) {
    auto comma = list.find(',');
    out.channels.emplace_back(list.substr(0, comma));
    if (out.channels.size() > max_channels) {   // checked while splitting: a huge list costs nothing
      c = code::too_many_subscriptions;
      reason = "at most " + std::to_string(max_channels) + " channels per stream";
      return false;
    }
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  out.since.assign(out.channels.size(), std::nullopt);
  if (!token_text.empty()) {
    auto t = protocol::decode_resume_token(token_text);
    if (!t || t->size() != out.channels.size()) {
      c = code::bad_resume_token;
      reason = "malformed resume token, or its entry count differs from channels";
      return false;
    }
    out.since = std::move(*t);
  }
  return true;
}

}  // namespace pushwire::server

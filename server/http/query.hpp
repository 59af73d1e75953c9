// URL query strings, and the channel list + resume token of a one-way stream (SSE, long-poll),
// which name their channels and positions in the URL (DECISIONS §5).
#pragma once
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/codes.hpp"
#include "protocol/position.hpp"

namespace pushwire::server {

// Parses `a=b&c=d` with percent-decoding.
std::map<std::string, std::string> parse_query(std::string_view q);
std::string percent_decode(std::string_view s);

struct stream_params {
  std::vector<std::string> channels;
  std::vector<std::optional<protocol::position>> since;
  std::string token;
};
// At most `max_channels`; the token must hold one entry per channel. On failure fills code/reason.
bool parse_stream_params(std::size_t max_channels, std::string_view channels, std::string_view token_text,
                         std::string token, stream_params& out, protocol::code& c, std::string& reason);

}  // namespace pushwire::server

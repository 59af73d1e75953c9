// Channel naming rules, shared by server and client so both refuse the same names.
//
//   channel   = [namespace ":"] name
//   namespace = 1*32 ( ALPHA / DIGIT / "_" / "-" )
//   name      = 1*( ALPHA / DIGIT / "_" / "-" / "." / "=" / "@" ), whole channel at most 128 bytes
// A name starting with "private-" is private: subscribing needs a token that grants it.
// Every allowed character is URL-unreserved or harmless in a query, and none is ",", so channel lists
// travel in query strings as `channels=a,b,c` without escaping.
#pragma once
#include <string_view>

namespace pushwire::protocol {

inline constexpr std::size_t max_channel_length = 128;
inline constexpr std::string_view private_prefix = "private-";

bool valid_channel(std::string_view channel);
// The namespace part ("" for the default namespace). Precondition: valid_channel(channel).
std::string_view channel_namespace(std::string_view channel);
bool is_private_channel(std::string_view channel);

}  // namespace pushwire::protocol

#include "protocol/channel_name.hpp"

namespace pushwire::protocol {
namespace {

bool namespace_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}
bool name_char(char c) { return namespace_char(c) || c == '.' || c == '=' || c == '@'; }

}  // namespace

bool valid_channel(std::string_view channel) {
  if (channel.empty() || channel.size() > max_channel_length) return false;
  std::size_t colon = channel.find(':');
  std::string_view name = channel;
  if (colon != std::string_view::npos) {
    std::string_view ns = channel.substr(0, colon);
    name = channel.substr(colon + 1);
    if (ns.empty() || ns.size() > 32) return false;
    for (char c : ns)
      if (!namespace_char(c)) return false;
  }
  if (name.empty()) return false;
  for (char c : name)
    if (!name_char(c)) return false;
  return true;
}

std::string_view channel_namespace(std::string_view channel) {
  std::size_t colon = channel.find(':');
  return colon == std::string_view::npos ? std::string_view{} : channel.substr(0, colon);
}

bool is_private_channel(std::string_view channel) {
  std::size_t colon = channel.find(':');
  std::string_view name = colon == std::string_view::npos ? channel : channel.substr(colon + 1);
  return name.starts_with(private_prefix);
}

}  // namespace pushwire::protocol

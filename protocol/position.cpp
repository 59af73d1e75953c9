#include "protocol/position.hpp"

#include "protocol/json_scan.hpp"

namespace pushwire::protocol {

bool valid_epoch(std::string_view epoch) {
  if (epoch.empty() || epoch.size() > max_epoch_length) return false;
  for (char c : epoch)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  return true;
}

void append_token_entry(std::string& out, const position* p, bool first) {
  if (!first) out += '.';
  if (!p) {
    out += '~';
    return;
  }
  out += p->epoch;
  out += '-';
  append_uint(out, p->offset);
}

std::string encode_resume_token(const std::vector<std::optional<position>>& positions) {
  std::string out;
  for (std::size_t i = 0; i < positions.size(); ++i)
    append_token_entry(out, positions[i] ? &*positions[i] : nullptr, i == 0);
  return out;
}

std::optional<std::vector<std::optional<position>>> decode_resume_token(std::string_view token) {
  std::vector<std::optional<position>> out;
  if (token.empty()) return std::nullopt;
  for (;;) {
    std::size_t dot = token.find('.');
    std::string_view entry = token.substr(0, dot);
    if (out.size() >= max_token_channels) return std::nullopt;
    if (entry == "~") {
      out.emplace_back(std::nullopt);
    } else {
      std::size_t dash = entry.find('-');
      if (dash == std::string_view::npos) return std::nullopt;
      std::string_view epoch = entry.substr(0, dash);
      auto offset = parse_uint(entry.substr(dash + 1));
      if (!valid_epoch(epoch) || !offset) return std::nullopt;
      out.emplace_back(position{std::string(epoch), *offset});
    }
    if (dot == std::string_view::npos) break;
    token.remove_prefix(dot + 1);
  }
  return out;
}

std::string make_epoch(std::uint64_t seed) {
  // splitmix64 finaliser spreads nearby seeds (e.g. a counter) over the whole range.
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  static constexpr char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string out(8, '0');
  for (auto& c : out) {
    c = digits[z % 36];
    z /= 36;
  }
  return out;
}

}  // namespace pushwire::protocol

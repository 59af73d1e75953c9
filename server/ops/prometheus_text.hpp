// The pieces of Prometheus's text format that metrics.cpp and process_stats.cpp both write: a
// family's HELP and TYPE lines, and seconds from microseconds, exact and locale-free
// (50 -> "0.00005", 1000000 -> "1", 1234567 -> "1.234567"). Integers: protocol::append_uint.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/json_scan.hpp"

namespace pushwire::server {

inline void append_seconds(std::string& out, std::uint64_t us) {
  protocol::append_uint(out, us / 1'000'000);
  std::uint64_t frac = us % 1'000'000;
  if (frac == 0) return;
  char digits[6];
  for (int i = 5; i >= 0; --i, frac /= 10) digits[i] = static_cast<char>('0' + frac % 10);
  int len = 6;
  while (len > 0 && digits[len - 1] == '0') --len;
  out += '.';
  out.append(digits, static_cast<std::size_t>(len));
}

inline void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

}  // namespace pushwire::server

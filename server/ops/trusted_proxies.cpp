#include "server/ops/trusted_proxies.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace pushwire::server {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_mapped_v4(const std::array<unsigned char, 16>& a) {
  static constexpr unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a.data(), prefix, 12) == 0;
}

std::string format_ip(const std::array<unsigned char, 16>& a) {
  char buf[INET6_ADDRSTRLEN];
  if (is_mapped_v4(a)) return ::inet_ntop(AF_INET, a.data() + 12, buf, sizeof buf) ? buf : "";
  return ::inet_ntop(AF_INET6, a.data(), buf, sizeof buf) ? buf : "";
}

}  // namespace

bool parse_ip(std::string_view text, std::array<unsigned char, 16>& out) {
  char buf[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof buf) return false;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  unsigned char v4[4];
  if (::inet_pton(AF_INET, buf, v4) == 1) {
    out = {};
    out[10] = out[11] = 0xff;
    std::memcpy(out.data() + 12, v4, 4);
    return true;
  }
  return ::inet_pton(AF_INET6, buf, out.data()) == 1;
}

bool parse_cidr_list(std::string_view list, std::vector<cidr>& out, std::string& error) {
  out.clear();
  while (!list.empty()) {
    auto comma = list.find(',');
    auto item = trim(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    if (item.empty()) continue;
    if (out.size() == max_trusted_proxies) {
      error = "--trusted-proxy: more than ";
      error += std::to_string(max_trusted_proxies);
      error += " ranges";
      return false;
    }
    auto slash = item.find('/');
    auto addr = item.substr(0, slash);
    cidr c;
    if (!parse_ip(addr, c.net)) {
      error = "--trusted-proxy: not an address: ";
      error += addr;
      return false;
    }
    bool v4 = addr.find(':') == std::string_view::npos;
    unsigned max = v4 ? 32 : 128;
    unsigned prefix = max;
    if (slash != std::string_view::npos) {
      auto p = item.substr(slash + 1);
      auto r = std::from_chars(p.data(), p.data() + p.size(), prefix);
      if (p.empty() || r.ec != std::errc{} || r.ptr != p.data() + p.size() || prefix > max) {
        error = "--trusted-proxy: bad prefix length in ";
        error += item;
        return false;
      }
    }
    c.prefix = v4 ? prefix + 96 : prefix;
    // Host bits set ("10.0.0.1/8") is most likely a typo for a narrower range: refuse it.
    for (unsigned bit = c.prefix; bit < 128; ++bit) {
      if (c.net[bit / 8] & (0x80u >> (bit % 8))) {
        error = "--trusted-proxy: host bits set in ";
        error += item;
        return false;
      }
    }
    out.push_back(c);
  }
  return true;
}

bool in_ranges(const std::vector<cidr>& ranges, const std::array<unsigned char, 16>& addr) {
  for (const auto& r : ranges) {
    unsigned full = r.prefix / 8, rest = r.prefix % 8;
    if (std::memcmp(r.net.data(), addr.data(), full) != 0) continue;
    if (rest) {
      unsigned char mask = static_cast<unsigned char>(0xff00u >> rest);
      if ((r.net[full] & mask) != (addr[full] & mask)) continue;
    }
    return true;
  }
  return false;
}

std::string client_address(const std::vector<cidr>& trusted, const std::string& peer, std::string_view forwarded) {
  if (trusted.empty() || forwarded.empty()) return peer;
  std::array<unsigned char, 16> a;
  if (!parse_ip(peer, a) || !in_ranges(trusted, a)) return peer;
  // From the right: skip trusted hops; the first untrusted entry is the client.
  std::string nearest = peer;   // the nearest trusted address seen so far
  while (!forwarded.empty()) {
    auto comma = forwarded.rfind(',');
    auto item = trim(comma == std::string_view::npos ? forwarded : forwarded.substr(comma + 1));
    forwarded = comma == std::string_view::npos ? std::string_view{} : forwarded.substr(0, comma);
    if (item.empty()) continue;
    if (!parse_ip(item, a)) return nearest;
    std::string text = format_ip(a);
    if (!in_ranges(trusted, a)) return text;
    nearest = std::move(text);
  }
  return nearest;   // every entry trusted: the left-most
}

}  // namespace pushwire::server

// --trusted-proxy: which TCP peers may say who the client is (X-Forwarded-For), and the rule that
// picks the client address from that header. Pure: addresses are strings in, strings out (no
// sockets), so the rule is unit-tested on its own and the server has one place that applies it
// (server/transport/client_address.hpp).
//
// The rule: when the TCP peer is in a trusted range, walk X-Forwarded-For from the right and take
// the first address that is not itself trusted. Why the right-most, not the left-most: every proxy
// appends the address it received the connection from, so entries are written right to left by
// ever less trusted hands. The right-most entry was written by our own proxy (the peer we trust);
// each trusted hop to its left vouches for the entry before it; the first untrusted entry is the
// last address anyone we trust actually saw. Everything further left was sent by that client and
// may be forged ("X-Forwarded-For: 1.2.3.4" from an attacker would otherwise pick its own per-IP
// bucket, or fill the log with lies). When every entry is trusted, the left-most is the client
// (nginx's real_ip_recursive does the same). An entry that does not parse as an address ends the
// walk: the nearest trusted address to its right is used (a proxy we trust did not write it).
#pragma once
#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace pushwire::server {

// A range; IPv4 is held as IPv4-mapped IPv6 (::ffff:a.b.c.d) with the prefix + 96, so an IPv4 range
// also matches a dual-stack socket's mapped peer.
struct cidr {
  std::array<unsigned char, 16> net{};
  unsigned prefix = 0;   // 0..128
};

// Bounded: the list is walked for every stream a client opens.
inline constexpr std::size_t max_trusted_proxies = 64;

// "10.0.0.0/8, 192.168.1.7, ::1/128, fd00::/8" (a bare address is a /32 or /128). False with `error`
// on a malformed entry, a prefix out of range, host bits set, or more than max_trusted_proxies.
bool parse_cidr_list(std::string_view list, std::vector<cidr>& out, std::string& error);

// A textual IPv4 or IPv6 address as 16 bytes (IPv4 mapped); false when it is not one.
bool parse_ip(std::string_view text, std::array<unsigned char, 16>& out);

bool in_ranges(const std::vector<cidr>& ranges, const std::array<unsigned char, 16>& addr);

// The client address for per-IP limits and logs: `peer` (the TCP peer, as the socket reports it)
// unless it is trusted and `forwarded` (every X-Forwarded-For field value, joined with ',' in
// order) names another; a forwarded address comes back in canonical form (inet_ntop), never as the
// raw header text.
std::string client_address(const std::vector<cidr>& trusted, const std::string& peer, std::string_view forwarded);

}  // namespace pushwire::server

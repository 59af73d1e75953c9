// A stable 64-bit hash of a publication's data (FNV-1a), so an idempotency key can remember what it
// published without keeping the payload, and a durable or remote store can persist that number.
// Stable means: the same bytes give the same number on every build and machine (never std::hash).
#pragma once
#include <cstdint>
#include <string_view>

namespace pushwire::server {

constexpr std::uint64_t data_hash(std::string_view bytes) {
  std::uint64_t h = 14695981039346656037ull;   // FNV-1a 64 offset basis
  for (char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;                     // FNV-1a 64 prime
  }
  return h;
}

static_assert(data_hash("") == 14695981039346656037ull);
static_assert(data_hash("a") == 0xaf63dc4c8601ec8cull);   // the published FNV-1a test vector

}  // namespace pushwire::server

// A message's place in a channel's history, and the compact resume token that carries the places of
// several channels (the SSE `id:` and the long-poll `cursor`).
//
// `epoch` names one unbroken run of a channel's history; it changes whenever that history restarts
// (server restart with the memory engine, channel expired and created anew), so an offset is only
// comparable within its epoch. `offset` increases by one per published message, starting at 1;
// offset 0 means "before the first message".
//
// Token: one entry per channel, in the order of the stream's channel list, joined by ".":
//   entry = epoch "-" offset      (epoch: 1-16 of [a-z0-9]; offset: decimal)
//         | "~"                   (no position: start from now)
// e.g. "k3j9x-42" for one channel, "k3j9x-42.~.b7q1-0" for three. Only URL-unreserved characters.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pushwire::protocol {

struct position {
  std::string epoch;
  std::uint64_t offset = 0;
  bool operator==(const position&) const = default;
};

inline constexpr std::size_t max_epoch_length = 16;
inline constexpr std::size_t max_token_channels = 64;

bool valid_epoch(std::string_view epoch);

std::string encode_resume_token(const std::vector<std::optional<position>>& positions);
// Appends one token entry (null = "~"), preceded by "." unless it is the first: for writers that
// keep their positions in another shape (the server's stream machine, on every SSE event).
void append_token_entry(std::string& out, const position* p, bool first);
// nullopt when the token is malformed or holds more than max_token_channels entries.
std::optional<std::vector<std::optional<position>>> decode_resume_token(std::string_view token);

// Makes an epoch from a seed (the caller's randomness): 8 base-36 characters.
std::string make_epoch(std::uint64_t seed);

}  // namespace pushwire::protocol

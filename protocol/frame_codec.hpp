// Encode and decode every frame of protocol v1. Decoding never throws and never trusts its input:
// malformed JSON, a missing or wrong-typed field, an over-long frame or invalid UTF-8 returns false
// with a code and a reason. Encoding appends one frame and a trailing "\n", so encoded frames can be
// concatenated into a newline-delimited batch (DECISIONS.md §2) without extra separator buffers.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "protocol/frame.hpp"
#include "protocol/json_scan.hpp"

namespace pushwire::protocol {

struct decode_error {
  code error_code = code::bad_frame;
  std::string reason;
};

struct codec_limits {
  std::size_t max_frame_bytes = 1 << 20;   // one frame's text; the server sets it from max message size
};

// The pieces of every decode, public for the client's own frame decoder (client_frame_decoder.hpp).
// The size limit, then scan_object (json_scan.hpp) with its error as a decode_error:
bool scan_envelope(std::string_view text, std::vector<json_member>& members, decode_error& err,
                   const codec_limits& limits);
// The envelope member named `key`, or null:
const json_member* find_member(const std::vector<json_member>& members, std::string_view key);
// Sets err to bad_frame with the reason "field '<key>' <what>" and returns false:
bool field_error(decode_error& err, std::string_view key, std::string_view what);

bool decode_command(std::string_view text, command& out, decode_error& err, const codec_limits& = {});
bool decode_frame(std::string_view text, frame& out, decode_error& err, const codec_limits& = {});

void encode_command(const command& c, std::string& out);
void encode_frame(const frame& f, std::string& out);
// The `message` frame straight from its parts: the server encodes each publication once per node
// and building a `frame` first would copy the payload once more. Same bytes as encode_frame.
void encode_message(std::string_view channel, const position& pos, std::string_view data, std::string& out);
inline std::string encode(const command& c) { std::string s; encode_command(c, s); return s; }
inline std::string encode(const frame& f) { std::string s; encode_frame(f, s); return s; }

// Calls `each` for every non-blank line of a newline-delimited batch.
template <class F>
void split_batch(std::string_view batch, F&& each) {
  while (!batch.empty()) {
    std::size_t nl = batch.find('\n');
    std::string_view line = batch.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) each(line);
    if (nl == std::string_view::npos) break;
    batch.remove_prefix(nl + 1);
  }
}

// How many commands a batch holds (its non-empty lines), counted before any runs: a batch over
// the limit is refused whole.
inline std::size_t batch_size(std::string_view batch) {
  std::size_t n = 0;
  split_batch(batch, [&](std::string_view) { ++n; });
  return n;
}

}  // namespace pushwire::protocol

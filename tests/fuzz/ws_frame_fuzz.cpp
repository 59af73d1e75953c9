// Client WebSocket bytes through the server's frame reader: protocol/ws_frame_reader.* (docs/fuzzing.md).
//
// Input: byte 0 picks the message limit (1 + 16 x byte), byte 1 seeds the split of the rest; the rest
// is what a client sent. The harness reads it whole, byte by byte, and in pieces of 1-32 bytes
// (from byte 1), and requires the same events all three ways (streaming safety). Checked beyond
// "no crash": every text message is valid UTF-8 and no message is over the limit; ping/pong
// payloads are at most 125 bytes; a close's code is one that may be on the wire and its reason UTF-8;
// a close or a failure is the last event and a failure's code is 1002, 1007 or 1009; the reader
// never holds more than about one message.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/json_scan.hpp"
#include "protocol/ws_frame_reader.hpp"

using namespace pushwire::protocol;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "ws_frame_fuzz: %s\n", what);
  std::abort();
}

std::vector<std::string> run(std::string_view bytes, std::size_t limit, const std::vector<std::size_t>& cuts) {
  ws_frame_reader r(limit);
  std::vector<std::string> out;
  bool ended = false;
  std::size_t at = 0, i = 0;
  while (at < bytes.size()) {
    std::size_t n = cuts.empty() ? bytes.size() : std::min(cuts[i++ % cuts.size()], bytes.size() - at);
    std::string piece(bytes.substr(at, n));
    std::string_view in(piece);
    at += n;
    for (;;) {
      auto e = r.read(in);
      if (e.kind == ws_event_kind::need_more) break;
      if (ended) fail("an event after a close or a failure");
      std::string s(1, static_cast<char>('0' + static_cast<int>(e.kind)));
      s += e.binary ? 'b' : 't';
      s += std::to_string(e.code) + ":";
      s += e.data;
      switch (e.kind) {
        case ws_event_kind::message:
          if (e.data.size() > limit) fail("a message over the limit");
          if (!e.binary && !valid_utf8(e.data)) fail("a text message that is not UTF-8");
          break;
        case ws_event_kind::ping:
        case ws_event_kind::pong:
          if (e.data.size() > 125) fail("a control payload over 125 bytes");
          break;
        case ws_event_kind::close:
          if (e.code && !ws_close_code_valid(e.code)) fail("a close code that may not be on the wire");
          if (!valid_utf8(e.data)) fail("a close reason that is not UTF-8");
          ended = true;
          break;
        case ws_event_kind::fail:
          if (e.code != 1002 && e.code != 1007 && e.code != 1009) fail("an unknown failure code");
          ended = true;
          break;
        default:
          break;
      }
      out.push_back(std::move(s));
    }
    if (!in.empty()) fail("input left after need_more");
    if (r.buffered_capacity() > 2 * (limit + 125) + 64) fail("more than a message buffered");
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  std::size_t limit = 1 + 16 * static_cast<std::size_t>(data[0]);
  std::uint32_t seed = data[1];
  std::string_view bytes(reinterpret_cast<const char*>(data) + 2, size - 2);
  auto whole = run(bytes, limit, {});
  if (run(bytes, limit, {1}) != whole) fail("byte by byte differs from whole");
  std::vector<std::size_t> cuts;
  for (int i = 0; i < 16; ++i) {
    seed = seed * 1103515245u + 12345u;
    cuts.push_back(1 + (seed >> 16) % 32);
  }
  if (run(bytes, limit, cuts) != whole) fail("a split differs from whole");
  return 0;
}

// The WebSocket frame reader (protocol/ws_frame_reader.hpp): every rule has a row whose event changes
// when the rule is removed, and every stream gives the same events however its bytes are split.
#include "protocol/ws_frame_reader.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

using namespace pushwire::protocol;

namespace {

constexpr std::size_t limit = 1000;

// One client frame: first byte `b0` (FIN, RSV, opcode), masked unless told, with the length field
// `len` (default: the payload's), encoded in the shortest form unless `len_bytes` forces 2 or 8.
std::string frame(std::uint8_t b0, std::string_view payload, bool masked = true, std::uint64_t len = UINT64_MAX,
                  int len_bytes = 0) {
  if (len == UINT64_MAX) len = payload.size();
  std::string f(1, static_cast<char>(b0));
  std::uint8_t m = masked ? 0x80 : 0;
  if (len_bytes == 0) len_bytes = len < 126 ? 0 : len < 65536 ? 2 : 8;
  if (len_bytes == 0) {
    f += static_cast<char>(m | len);
  } else {
    f += static_cast<char>(m | (len_bytes == 2 ? 126 : 127));
    for (int i = len_bytes - 1; i >= 0; --i) f += static_cast<char>((len >> (8 * i)) & 0xff);
  }
  const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
  if (masked) f.append(reinterpret_cast<const char*>(key), 4);
  for (std::size_t i = 0; i < payload.size(); ++i)
    f += masked ? static_cast<char>(payload[i] ^ key[i & 3]) : payload[i];
  return f;
}
std::string text(std::string_view s) { return frame(0x81, s); }
std::string close_frame(std::string_view payload) { return frame(0x88, payload); }

// An event as a comparable string.
std::string show(const ws_event& e) {
  switch (e.kind) {
    case ws_event_kind::need_more: return "need_more";
    case ws_event_kind::message: return std::string(e.binary ? "binary:" : "text:") + std::string(e.data);
    case ws_event_kind::ping: return "ping:" + std::string(e.data);
    case ws_event_kind::pong: return "pong:" + std::string(e.data);
    case ws_event_kind::close: return "close:" + std::to_string(e.code) + ":" + std::string(e.data);
    case ws_event_kind::fail: return "fail:" + std::to_string(e.code);
  }
  return "?";
}

// Feeds `bytes` in pieces of the given sizes (the last piece takes the rest) and collects events.
std::vector<std::string> feed(std::string_view bytes, const std::vector<std::size_t>& cuts, std::size_t max = limit) {
  ws_frame_reader r(max);
  std::vector<std::string> out;
  std::size_t at = 0, i = 0;
  while (at < bytes.size()) {
    std::size_t n = i < cuts.size() ? std::min(cuts[i++], bytes.size() - at) : bytes.size() - at;
    std::string piece(bytes.substr(at, n));   // its own storage: views must not outlive a read
    std::string_view in(piece);
    at += n;
    for (;;) {
      auto e = r.read(in);
      if (e.kind == ws_event_kind::need_more) break;
      out.push_back(show(e));
    }
    EXPECT_TRUE(in.empty());
  }
  return out;
}
std::vector<std::string> feed_whole(std::string_view bytes, std::size_t max = limit) { return feed(bytes, {}, max); }

using events = std::vector<std::string>;

}  // namespace

TEST(WsFrameReader, TextMessage) {
  EXPECT_EQ(feed_whole(text("hello")), events{"text:hello"});
  EXPECT_EQ(feed_whole(text("")), events{"text:"});
  EXPECT_EQ(feed_whole(text("a") + text("b")), (events{"text:a", "text:b"}));
  EXPECT_EQ(feed_whole(text("h\xc3\xa9llo \xf0\x9f\x98\x80")), events{"text:h\xc3\xa9llo \xf0\x9f\x98\x80"});
}

TEST(WsFrameReader, LengthEncodings) {
  std::string m126(126, 'x'), m300(300, 'y');
  EXPECT_EQ(feed_whole(text(m126)), events{"text:" + m126});
  EXPECT_EQ(feed_whole(text(m300)), events{"text:" + m300});
  std::string big(70000, 'z');
  EXPECT_EQ(feed_whole(text(big), 100000), events{"text:" + big});
}

TEST(WsFrameReader, NonCanonicalLengthIsAProtocolError) {
  EXPECT_EQ(feed_whole(frame(0x81, "abc", true, 3, 2)), events{"fail:1002"});
  EXPECT_EQ(feed_whole(frame(0x81, std::string(200, 'a'), true, 200, 8)), events{"fail:1002"});
}

TEST(WsFrameReader, BinaryIsDeliveredFlagged) {
  // As Beast's stream did: the payload as it is, no UTF-8 check.
  EXPECT_EQ(feed_whole(frame(0x82, std::string_view("\xff\x00", 2))), events{std::string("binary:\xff\x00", 9)});
}

TEST(WsFrameReader, Fragments) {
  EXPECT_EQ(feed_whole(frame(0x01, "he") + frame(0x00, "ll") + frame(0x80, "o")), events{"text:hello"});
  // Control frames may come between fragments and do not disturb the message.
  EXPECT_EQ(feed_whole(frame(0x01, "he") + frame(0x89, "p1") + frame(0x80, "llo")), (events{"ping:p1", "text:hello"}));
  // An empty non-final first frame.
  EXPECT_EQ(feed_whole(frame(0x01, "") + frame(0x80, "x")), events{"text:x"});
  // A character split across fragments.
  EXPECT_EQ(feed_whole(frame(0x01, "\xc3") + frame(0x80, "\xa9")), events{"text:\xc3\xa9"});
}

TEST(WsFrameReader, PingPong) {
  EXPECT_EQ(feed_whole(frame(0x89, "")), events{"ping:"});
  EXPECT_EQ(feed_whole(frame(0x89, std::string(125, 'p'))), events{"ping:" + std::string(125, 'p')});
  EXPECT_EQ(feed_whole(frame(0x8a, "x")), events{"pong:x"});
}

TEST(WsFrameReader, Close) {
  EXPECT_EQ(feed_whole(close_frame("")), events{"close:0:"});
  EXPECT_EQ(feed_whole(close_frame("\x03\xe8")), events{"close:1000:"});
  EXPECT_EQ(feed_whole(close_frame("\x0f\xa0" "bye")), events{"close:4000:bye"});
  EXPECT_EQ(feed_whole(close_frame("\x0b\xb8")), events{"close:3000:"});
  // Nothing after a close is read.
  EXPECT_EQ(feed_whole(close_frame("\x03\xe8") + text("late")), events{"close:1000:"});
}

TEST(WsFrameReader, CloseCodes) {
  for (std::uint16_t ok : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 3000, 3999, 4000, 4999})
    EXPECT_TRUE(ws_close_code_valid(ok)) << ok;
  for (std::uint16_t bad : {0, 999, 1004, 1005, 1006, 1014, 1015, 1016, 2999, 5000, 65535})
    EXPECT_FALSE(ws_close_code_valid(bad)) << bad;
}

// Each rule and the close code it answers with; every row fails when its rule is removed.
struct violation {
  const char* name;
  std::string bytes;
  std::string event;
};

TEST(WsFrameReader, Violations) {
  std::vector<violation> rows = {
      {"unmasked client frame", frame(0x81, "x", false), "fail:1002"},
      {"RSV1", frame(0xc1, "x"), "fail:1002"},
      {"RSV2", frame(0xa1, "x"), "fail:1002"},
      {"RSV3", frame(0x91, "x"), "fail:1002"},
      {"RSV on a continuation", frame(0x01, "x") + frame(0xc0, "y"), "fail:1002"},
      {"RSV on a ping", frame(0xc9, ""), "fail:1002"},
      {"reserved data opcode 3", frame(0x83, "x"), "fail:1002"},
      {"reserved data opcode 7", frame(0x87, "x"), "fail:1002"},
      {"reserved control opcode 11", frame(0x8b, ""), "fail:1002"},
      {"reserved control opcode 15", frame(0x8f, ""), "fail:1002"},
      {"fragmented ping", frame(0x09, "x"), "fail:1002"},
      {"fragmented close", frame(0x08, "\x03\xe8"), "fail:1002"},
      {"ping over 125 bytes", frame(0x89, std::string(126, 'p')), "fail:1002"},
      {"pong over 125 bytes", frame(0x8a, std::string(200, 'p')), "fail:1002"},
      {"continuation without a start", frame(0x80, "x"), "fail:1002"},
      {"new message inside a fragmented one", frame(0x01, "{") + frame(0x81, "{}"), "fail:1002"},
      {"binary inside a fragmented text", frame(0x01, "{") + frame(0x82, "{}"), "fail:1002"},
      {"close code 1005 on the wire", close_frame(std::string("\x03\xed", 2)), "fail:1002"},
      {"close code 1006 on the wire", close_frame(std::string("\x03\xee", 2)), "fail:1002"},
      {"close code 1015 on the wire", close_frame(std::string("\x03\xf7", 2)), "fail:1002"},
      {"close code 999", close_frame(std::string("\x03\xe7", 2)), "fail:1002"},
      {"close code 5000", close_frame(std::string("\x13\x88", 2)), "fail:1002"},
      {"close payload of one byte", close_frame("\x03"), "fail:1002"},
      {"close reason not UTF-8", close_frame(std::string("\x03\xe8\xc3\x28", 4)), "fail:1002"},
      {"text not UTF-8", frame(0x81, "\xc3\x28"), "fail:1007"},
      {"text with a UTF-16 surrogate", frame(0x81, "\xed\xa0\x80"), "fail:1007"},
      {"text with an overlong", frame(0x81, "\xc0\xaf"), "fail:1007"},
      {"text over U+10FFFF", frame(0x81, "\xf4\x90\x80\x80"), "fail:1007"},
      {"text ending inside a character", frame(0x81, "a\xe2\x82"), "fail:1007"},
      {"fragments ending inside a character", frame(0x01, "a") + frame(0x80, "\xe2"), "fail:1007"},
      {"bad UTF-8 in a first fragment fails at once", frame(0x01, "\xff"), "fail:1007"},
      {"message over the size limit", text(std::string(limit + 1, ' ')), "fail:1009"},
      {"length field of 2^63", frame(0x81, "", true, std::uint64_t{1} << 63), "fail:1009"},
      {"fragments over the size limit", frame(0x01, std::string(600, ' ')) + frame(0x80, std::string(401, ' ')),
       "fail:1009"},
  };
  for (auto& row : rows) {
    auto got = feed_whole(row.bytes);
    ASSERT_FALSE(got.empty()) << row.name;
    EXPECT_EQ(got.back(), row.event) << row.name;
    EXPECT_EQ(got.size(), 1u) << row.name;
  }
}

TEST(WsFrameReader, ExactlyTheLimitPasses) {
  std::string m(limit, 'a');
  EXPECT_EQ(feed_whole(text(m)), events{"text:" + m});
  EXPECT_EQ(feed_whole(frame(0x01, m.substr(0, 600)) + frame(0x80, m.substr(600))), events{"text:" + m});
}

TEST(WsFrameReader, TooBigIsDecidedFromTheHeader) {
  // Only the header of the oversized frame arrives: the answer comes without its payload.
  std::string f = text(std::string(limit + 1, ' '));
  ws_frame_reader r(limit);
  std::string_view in(f.data(), 8);   // 2 + 2 length bytes + 4 mask bytes
  EXPECT_EQ(show(r.read(in)), "fail:1009");
  EXPECT_EQ(r.buffered_capacity(), 0u);
}

TEST(WsFrameReader, NothingBufferedBetweenMessages) {
  ws_frame_reader r(100000);
  std::string f = text(std::string(5000, 'a')) + frame(0x89, std::string(100, 'p'));
  std::string_view in(f);
  EXPECT_EQ(r.read(in).kind, ws_event_kind::message);
  EXPECT_EQ(r.read(in).kind, ws_event_kind::ping);
  EXPECT_EQ(r.read(in).kind, ws_event_kind::need_more);
  EXPECT_EQ(r.buffered_capacity(), 0u);
  EXPECT_FALSE(r.mid_message());
  std::string part = frame(0x01, "abc");
  std::string_view p(part);
  EXPECT_EQ(r.read(p).kind, ws_event_kind::need_more);
  EXPECT_TRUE(r.mid_message());
}

TEST(WsFrameReader, AnySplitGivesTheSameEvents) {
  std::string stream = text("hello") + frame(0x89, "p") + frame(0x01, "fr\xc3") + frame(0x8a, "q") +
                       frame(0x00, "\xa9g") + frame(0x80, "ment") + text(std::string(300, 'x')) +
                       frame(0x82, "bin") + text(std::string(70, 'y')) + close_frame("\x03\xe9" "away");
  auto whole = feed_whole(stream);
  ASSERT_EQ(whole.size(), 8u);
  EXPECT_EQ(whole.back(), "close:1001:away");
  EXPECT_EQ(feed(stream, std::vector<std::size_t>(stream.size(), 1)), whole);   // byte by byte
  std::mt19937 rng(19);
  for (int round = 0; round < 300; ++round) {
    std::vector<std::size_t> cuts;
    for (std::size_t at = 0; at < stream.size();) {
      std::size_t n = 1 + rng() % 40;
      cuts.push_back(n);
      at += n;
    }
    ASSERT_EQ(feed(stream, cuts), whole) << "round " << round;
  }
  // The violations too, split byte by byte.
  std::string bad = text("ok") + frame(0x01, "a\xe2") + frame(0x80, "\x28");
  EXPECT_EQ(feed(bad, std::vector<std::size_t>(bad.size(), 1)), feed_whole(bad));
  EXPECT_EQ(feed_whole(bad), (events{"text:ok", "fail:1007"}));
}

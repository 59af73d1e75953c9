// The client's frame decoder against frame_codec's decode_frame: the same verdict, code, reason and
// fields for every frame of every kind, each of them with every field missing or of every JSON kind,
// cut at every length, and the codec tests' malformed inputs.
#include "protocol/client_frame_decoder.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "protocol/json_scan.hpp"

using namespace pushwire::protocol;

namespace {

const frame valid_frames[] = {
    {.kind = frame_kind::connected, .id = 1, .client = "c12", .user = "alice", .ping_ms = 25000},
    {.kind = frame_kind::subscribed, .id = 2, .channel = "scores", .pos = {"k3j9x2ab", 44}, .recovered = true},
    {.kind = frame_kind::subscribed, .channel = "s", .pos = {"e", 0}},
    {.kind = frame_kind::unsubscribed, .id = 3, .channel = "scores"},
    {.kind = frame_kind::published, .id = 4, .channel = "c", .pos = {"b7", 9}},
    {.kind = frame_kind::message, .channel = "scores", .pos = {"k3", 42}, .data = "{\"home\":1}"},
    {.kind = frame_kind::history, .id = 5, .channel = "c", .pos = {"b7", 9}, .data = "[{\"offset\":9}]"},
    {.kind = frame_kind::presence, .id = 6, .channel = "c", .data = "[{\"user\":\"alice\"}]"},
    {.kind = frame_kind::join, .channel = "c", .data = "{\"user\":\"bob\"}"},
    {.kind = frame_kind::leave, .channel = "c", .data = "{\"user\":\"bob\"}"},
    {.kind = frame_kind::ping},
    {.kind = frame_kind::error, .id = 4, .error_code = code::permission_denied, .reason = "no \"publish\" \xc3\xa9"},
    {.kind = frame_kind::disconnect, .error_code = code::shutting_down, .reason = "bye", .reconnect = true, .after_ms = 1830},
};

// A value of every JSON kind, and the edge cases of the fields' checks.
const std::string_view values[] = {"5", "0", "-1", "1.5", "70000", "9007199254740992", "\"x\"", "\"\"", "\"BAD!\"",
                                   "\"e\\u0031\"", "true", "false", "null", "[]", "[1]", "{}", "{\"a\":1}"};

// Every field of a frame, for comparing two.
auto fields(const frame& f) {
  return std::tie(f.kind, f.id, f.channel, f.pos, f.recovered, f.data, f.client, f.user, f.ping_ms, f.error_code,
                  f.reason, f.reconnect, f.after_ms);
}

void expect_same(std::string_view text) {
  frame a, b;
  decode_error ea, eb;
  bool ok_a = decode_frame(text, a, ea);
  bool ok_b = decode_server_frame(text, b, eb);
  ASSERT_EQ(ok_a, ok_b) << text << " -> " << ea.reason << " / " << eb.reason;
  if (!ok_a) {
    EXPECT_EQ(ea.error_code, eb.error_code) << text;
    EXPECT_EQ(ea.reason, eb.reason) << text;
    return;
  }
  EXPECT_TRUE(fields(a) == fields(b)) << text << " -> " << encode(a) << " / " << encode(b);
}

// The frame's members, with member `at`'s value replaced by `value` and member `also`'s by
// `also_value` ("": the member left out).
std::string rebuild(const std::vector<json_member>& members, std::size_t at, std::string_view value,
                    std::size_t also = SIZE_MAX, std::string_view also_value = {}) {
  std::string out = "{";
  for (std::size_t i = 0; i < members.size(); ++i) {
    std::string_view v = i == at ? value : i == also ? also_value : members[i].raw;
    if (v.empty()) continue;
    if (out.size() > 1) out += ',';
    append_json_string(out, members[i].key);
    out += ':';
    out += v;
  }
  return out + "}";
}

}  // namespace

TEST(ClientFrameDecoder, AgreesWithTheCodecOnEveryFrameKind) {
  for (const frame& f : valid_frames) {
    std::string text = encode(f);
    frame back;
    decode_error err;
    ASSERT_TRUE(decode_server_frame(text, back, err)) << text << " -> " << err.reason;
    EXPECT_EQ(encode(back), text);
    expect_same(text);
  }
}

TEST(ClientFrameDecoder, AgreesWithTheCodecOnEveryFieldMissingOrOfAnotherKind) {
  for (const frame& f : valid_frames) {
    std::string text = encode(f);
    // Every field the codec may read, also those the frame's kind does not use.
    text.pop_back();
    text.pop_back();
    text += ",\"extra\":1}";
    std::vector<json_member> members;
    scan_error serr;
    ASSERT_TRUE(scan_object(text, members, serr)) << text;
    for (std::string_view key : {"id", "client", "user", "ping", "channel", "epoch", "offset", "recovered", "data",
                                 "publications", "members", "member", "code", "reason", "reconnect", "after"}) {
      bool present = false;
      for (auto& m : members) present = present || m.key == key;
      if (!present) members.push_back({std::string(key), json_kind::number, "1"});
    }
    for (std::size_t at = 0; at < members.size(); ++at) {
      expect_same(rebuild(members, at, {}));
      for (std::string_view v : values) expect_same(rebuild(members, at, v));
      // Two faults at once: the first one the codec checks is the one reported.
      for (std::size_t also = 0; also < members.size(); ++also)
        for (std::string_view v : {"", "null", "\"\"", "70000"})
          for (std::string_view w : {"", "null"})
            if (also != at) expect_same(rebuild(members, at, v, also, w));
    }
    for (std::string_view type : {"\"nope\"", "1", "\"Ping\"", "\"p\\u0069ng\""}) {
      std::string typed = "{\"type\":" + std::string(type) + "}";
      expect_same(typed);
    }
  }
}

TEST(ClientFrameDecoder, AgreesWithTheCodecOnCutAndMalformedInput) {
  for (const frame& f : valid_frames) {
    std::string text = encode(f);
    for (std::size_t n = 0; n < text.size(); ++n) expect_same(std::string_view(text).substr(0, n));
  }
  for (std::string_view bad : {"", "   ", "{", "}", "[]", "null", "{}", "{\"type\":\"ping\"} x", "{\"type\":\"ping\",}",
                               "{\"type\":\"ping\",\"type\":\"ping\"}", "{\"type\":\"error\",\"code\":70000}",
                               "{\"type\":\"connected\"}", "{\"type\":\"message\",\"channel\":\"a\",\"epoch\":\"e\",\"offset\":1}",
                               "{\"type\":\"ping\",\"x\":\"\xff\"}"}) {
    expect_same(bad);
  }
  expect_same(std::string(1 << 20, ' ') + "{\"type\":\"ping\"}");   // over the size limit
}

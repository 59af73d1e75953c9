// Round trips for every command and frame of docs/protocol.md, and the decoder's refusals.
#include "protocol/frame_codec.hpp"
#include "protocol/json_scan.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace pushwire::protocol;

namespace {

command round_trip(const command& c) {
  std::string text = encode(c);
  EXPECT_EQ(text.back(), '\n');
  command back;
  decode_error err;
  EXPECT_TRUE(decode_command(text, back, err)) << text << " -> " << err.reason;
  EXPECT_EQ(encode(back), text);
  return back;
}

frame round_trip(const frame& f) {
  std::string text = encode(f);
  EXPECT_EQ(text.back(), '\n');
  frame back;
  decode_error err;
  EXPECT_TRUE(decode_frame(text, back, err)) << text << " -> " << err.reason;
  EXPECT_EQ(encode(back), text);
  return back;
}

decode_error command_error(std::string_view text) {
  command c;
  decode_error err;
  EXPECT_FALSE(decode_command(text, c, err)) << text;
  return err;
}

decode_error frame_error(std::string_view text) {
  frame f;
  decode_error err;
  EXPECT_FALSE(decode_frame(text, f, err)) << text;
  return err;
}

}  // namespace

TEST(FrameCodec, EveryCommandRoundTrips) {
  auto c = round_trip(command{.kind = command_kind::connect, .id = 1, .token = "a.b.c"});
  EXPECT_EQ(c.token, "a.b.c");
  EXPECT_EQ(encode(command{.kind = command_kind::connect}), "{\"cmd\":\"connect\"}\n");

  c = round_trip(command{.kind = command_kind::subscribe, .id = 2, .channel = "scores",
                         .since = position{"k3j9x2ab", 41}});
  ASSERT_TRUE(c.since);
  EXPECT_EQ(c.since->epoch, "k3j9x2ab");
  EXPECT_EQ(c.since->offset, 41u);
  EXPECT_FALSE(round_trip(command{.kind = command_kind::subscribe, .id = 2, .channel = "s"}).since);

  c = round_trip(command{.kind = command_kind::unsubscribe, .id = 3, .channel = "scores"});
  EXPECT_EQ(c.channel, "scores");

  c = round_trip(command{.kind = command_kind::publish, .id = 4, .channel = "demo:chat",
                         .data = "{\"text\":\"hi \\u00e9\",\"n\":[1,2.5e3,null,true]}"});
  EXPECT_EQ(c.data, "{\"text\":\"hi \\u00e9\",\"n\":[1,2.5e3,null,true]}");
  EXPECT_EQ(round_trip(command{.kind = command_kind::publish, .channel = "x", .data = "\"s\""}).data, "\"s\"");

  c = round_trip(command{.kind = command_kind::history, .id = 5, .channel = "demo:chat", .since = position{"e1", 3},
                         .limit = 50});
  EXPECT_EQ(c.limit, 50u);
  ASSERT_TRUE(c.since);

  c = round_trip(command{.kind = command_kind::presence, .id = 6, .channel = "demo:chat"});
  EXPECT_EQ(c.kind, command_kind::presence);
  c = round_trip(command{.kind = command_kind::drop, .id = 7});
  EXPECT_EQ(c.kind, command_kind::drop);
  EXPECT_EQ(c.id, 7u);
}

TEST(FrameCodec, EveryFrameRoundTrips) {
  auto f = round_trip(frame{.kind = frame_kind::connected, .id = 1, .client = "c12", .user = "alice", .ping_ms = 25000});
  EXPECT_EQ(f.client, "c12");
  EXPECT_EQ(f.user, "alice");
  EXPECT_EQ(f.ping_ms, 25000u);

  f = round_trip(frame{.kind = frame_kind::subscribed, .id = 2, .channel = "scores", .pos = {"k3j9x2ab", 44},
                       .recovered = true});
  ASSERT_TRUE(f.recovered);
  EXPECT_TRUE(*f.recovered);
  EXPECT_EQ(f.pos, (position{"k3j9x2ab", 44}));
  EXPECT_FALSE(round_trip(frame{.kind = frame_kind::subscribed, .channel = "s", .pos = {"e", 0}}).recovered);
  f = round_trip(frame{.kind = frame_kind::subscribed, .channel = "s", .pos = {"e", 0}, .recovered = false});
  ASSERT_TRUE(f.recovered);
  EXPECT_FALSE(*f.recovered);

  EXPECT_EQ(round_trip(frame{.kind = frame_kind::unsubscribed, .id = 3, .channel = "scores"}).channel, "scores");
  EXPECT_EQ(round_trip(frame{.kind = frame_kind::published, .id = 4, .channel = "c", .pos = {"b7", 9}}).pos.offset, 9u);

  f = round_trip(frame{.kind = frame_kind::message, .channel = "scores", .pos = {"k3", 42}, .data = "{\"home\":1}"});
  EXPECT_EQ(f.data, "{\"home\":1}");
  EXPECT_EQ(encode(f), "{\"type\":\"message\",\"channel\":\"scores\",\"epoch\":\"k3\",\"offset\":42,\"data\":{\"home\":1}}\n");

  f = round_trip(frame{.kind = frame_kind::history, .id = 5, .channel = "c", .pos = {"b7", 9},
                       .data = "[{\"offset\":9,\"data\":{\"text\":\"hi\"}}]"});
  EXPECT_EQ(f.data, "[{\"offset\":9,\"data\":{\"text\":\"hi\"}}]");
  f = round_trip(frame{.kind = frame_kind::presence, .id = 6, .channel = "c",
                       .data = "[{\"user\":\"alice\",\"client\":\"c12\"}]"});
  EXPECT_EQ(f.data, "[{\"user\":\"alice\",\"client\":\"c12\"}]");
  EXPECT_EQ(round_trip(frame{.kind = frame_kind::join, .channel = "c", .data = "{\"user\":\"bob\"}"}).kind, frame_kind::join);
  EXPECT_EQ(round_trip(frame{.kind = frame_kind::leave, .channel = "c", .data = "{\"user\":\"bob\"}"}).kind, frame_kind::leave);
  EXPECT_EQ(encode(frame{.kind = frame_kind::ping}), "{\"type\":\"ping\"}\n");
  round_trip(frame{.kind = frame_kind::ping});

  f = round_trip(frame{.kind = frame_kind::error, .id = 4, .error_code = code::permission_denied, .reason = "no \"publish\""});
  EXPECT_EQ(f.error_code, code::permission_denied);
  EXPECT_EQ(f.reason, "no \"publish\"");
  f = round_trip(frame{.kind = frame_kind::disconnect, .error_code = code::shutting_down, .reason = "bye",
                       .reconnect = true, .after_ms = 1830});
  EXPECT_TRUE(f.reconnect);
  EXPECT_EQ(f.after_ms, 1830u);
}

TEST(FrameCodec, StringsWithEscapesAndUnicodeRoundTrip) {
  std::string odd = "tab\t nl\n quote\" back\\ ctl\x01 \xc3\xa9 \xf0\x9f\x98\x80";
  auto f = round_trip(frame{.kind = frame_kind::error, .error_code = code::bad_frame, .reason = odd});
  EXPECT_EQ(f.reason, odd);
  frame g;
  decode_error err;
  ASSERT_TRUE(decode_frame(R"({"type":"error","code":4000,"reason":"\u00e9\ud83d\ude00\/"})", g, err)) << err.reason;
  EXPECT_EQ(g.reason, "\xc3\xa9\xf0\x9f\x98\x80/");
}

TEST(FrameCodec, IgnoresUnknownFieldsAndWhitespace) {
  command c;
  decode_error err;
  ASSERT_TRUE(decode_command(" \r\n{ \"cmd\" : \"subscribe\" , \"channel\":\"a\", \"future\":{\"x\":[1]} }\n", c, err))
      << err.reason;
  EXPECT_EQ(c.channel, "a");
}

TEST(FrameCodec, RefusesMalformedJson) {
  for (std::string_view bad : {"", "   ", "{", "}", "[]", "null", "\"cmd\"", "{\"cmd\":\"connect\"",
                               "{\"cmd\":\"connect\",}", "{\"cmd\" \"connect\"}", "{cmd:\"connect\"}",
                               "{\"cmd\":'connect'}", "{\"cmd\":\"connect\"} x", "{\"cmd\":\"connect\"}{}",
                               "{\"cmd\":\"publish\",\"channel\":\"a\",\"data\":01}",
                               "{\"cmd\":\"publish\",\"channel\":\"a\",\"data\":1.}",
                               "{\"cmd\":\"publish\",\"channel\":\"a\",\"data\":-}",
                               "{\"cmd\":\"publish\",\"channel\":\"a\",\"data\":tru}",
                               "{\"cmd\":\"publish\",\"channel\":\"a\",\"data\":[1,]}",
                               "{\"cmd\":\"publish\",\"channel\":\"a\",\"data\":\"\\x\"}",
                               "{\"cmd\":\"publish\",\"channel\":\"a\",\"data\":\"\\u12\"}",
                               "{\"cmd\":\"publish\",\"channel\":\"a\",\"data\":\"\\ud800\"}",
                               "{\"cmd\":\"publish\",\"channel\":\"a\",\"data\":\"\\udc00\"}",
                               "{\"cmd\":\"publish\",\"channel\":\"a\",\"data\":\"a\tb\"}"}) {
    EXPECT_EQ(command_error(bad).error_code, code::bad_frame) << bad;
  }
}

TEST(FrameCodec, RefusesTruncatedInputAtEveryLength) {
  std::string full = encode(command{.kind = command_kind::publish, .id = 9, .channel = "demo:chat",
                                    .data = "{\"t\":\"h\\u00e9\",\"a\":[1,{\"b\":null}]}"});
  full.pop_back();  // the newline
  for (std::size_t n = 0; n < full.size(); ++n) {
    command c;
    decode_error err;
    EXPECT_FALSE(decode_command(full.substr(0, n), c, err)) << full.substr(0, n);
  }
}

TEST(FrameCodec, RefusesInvalidUtf8) {
  for (std::string_view bad : {"\xff", "\xc3", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                               "\x80", "\xf0\x9f\x98"}) {
    std::string text = "{\"cmd\":\"publish\",\"channel\":\"a\",\"data\":\"" + std::string(bad) + "\"}";
    EXPECT_EQ(command_error(text).error_code, code::bad_frame);
  }
  EXPECT_FALSE(valid_utf8("\xc3"));
  EXPECT_TRUE(valid_utf8("\xc3\xa9"));
}

TEST(FrameCodec, RefusesWrongTypesAndMissingFields) {
  EXPECT_EQ(command_error("{}").reason, "field 'cmd' is required");
  EXPECT_EQ(command_error("{\"cmd\":1}").reason, "field 'cmd' must be a string");
  EXPECT_EQ(command_error("{\"cmd\":\"fly\"}").error_code, code::unknown_command);
  EXPECT_EQ(command_error("{\"cmd\":\"subscribe\"}").reason, "field 'channel' is required");
  EXPECT_EQ(command_error("{\"cmd\":\"subscribe\",\"channel\":7}").reason, "field 'channel' must be a string");
  EXPECT_EQ(command_error("{\"cmd\":\"subscribe\",\"channel\":\"\"}").reason, "field 'channel' must not be empty");
  command_error("{\"cmd\":\"subscribe\",\"channel\":\"a\",\"id\":-1}");
  command_error("{\"cmd\":\"subscribe\",\"channel\":\"a\",\"id\":1.5}");
  command_error("{\"cmd\":\"subscribe\",\"channel\":\"a\",\"id\":1e3}");
  command_error("{\"cmd\":\"subscribe\",\"channel\":\"a\",\"id\":\"1\"}");
  command_error("{\"cmd\":\"subscribe\",\"channel\":\"a\",\"id\":9007199254740992}");  // 2^53
  command_error("{\"cmd\":\"subscribe\",\"channel\":\"a\",\"since\":5}");
  command_error("{\"cmd\":\"subscribe\",\"channel\":\"a\",\"since\":{\"epoch\":\"e\"}}");
  command_error("{\"cmd\":\"subscribe\",\"channel\":\"a\",\"since\":{\"epoch\":\"BAD!\",\"offset\":1}}");
  command_error("{\"cmd\":\"publish\",\"channel\":\"a\"}");
  command_error("{\"cmd\":\"connect\",\"token\":5}");
  command_error("{\"cmd\":\"connect\",\"cmd\":\"connect\"}");  // duplicate key
  frame_error("{\"type\":\"nope\"}");
  frame_error("{\"type\":\"message\",\"channel\":\"a\",\"epoch\":\"e\",\"offset\":1}");
  frame_error("{\"type\":\"subscribed\",\"channel\":\"a\",\"epoch\":\"e\",\"offset\":1,\"recovered\":1}");
  frame_error("{\"type\":\"history\",\"channel\":\"a\",\"epoch\":\"e\",\"offset\":1,\"publications\":{}}");
  frame_error("{\"type\":\"join\",\"channel\":\"a\",\"member\":[]}");
  frame_error("{\"type\":\"error\",\"code\":70000}");
  frame_error("{\"type\":\"connected\"}");
  command ok;
  decode_error err;
  EXPECT_TRUE(decode_command("{\"cmd\":\"drop\",\"id\":9007199254740991}", ok, err));
  EXPECT_EQ(ok.id, 9007199254740991ull);
}

TEST(FrameCodec, RefusesOverLongAndTooDeepInput) {
  codec_limits limits{.max_frame_bytes = 64};
  std::string text = "{\"cmd\":\"publish\",\"channel\":\"a\",\"data\":\"" + std::string(40, 'x') + "\"}";
  command c;
  decode_error err;
  EXPECT_FALSE(decode_command(text, c, err, limits));
  EXPECT_EQ(err.error_code, code::message_too_large);
  EXPECT_TRUE(decode_command(text, c, err));

  std::string deep = "{\"cmd\":\"publish\",\"channel\":\"a\",\"data\":" + std::string(31, '[') + std::string(31, ']') + "}";
  EXPECT_TRUE(decode_command(deep, c, err)) << err.reason;
  std::string too_deep = "{\"cmd\":\"publish\",\"channel\":\"a\",\"data\":" + std::string(32, '[') + std::string(32, ']') + "}";
  EXPECT_FALSE(decode_command(too_deep, c, err));
  std::string very_deep(100000, '[');
  EXPECT_FALSE(decode_command(very_deep, c, err));  // bounded: no stack overflow
}

TEST(FrameCodec, SplitsBatches) {
  std::vector<std::string> lines;
  split_batch("{\"type\":\"ping\"}\n\n{\"type\":\"ping\",\"id\":2}\r\n{\"type\":\"ping\"}", [&](std::string_view l) {
    lines.emplace_back(l);
  });
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[1], "{\"type\":\"ping\",\"id\":2}");
  std::string batch = encode(frame{.kind = frame_kind::ping}) + encode(frame{.kind = frame_kind::message, .channel = "a",
                                                                            .pos = {"e", 1}, .data = "1"});
  int frames = 0;
  split_batch(batch, [&](std::string_view l) {
    frame f;
    decode_error err;
    EXPECT_TRUE(decode_frame(l, f, err));
    ++frames;
  });
  EXPECT_EQ(frames, 2);
}

TEST(FrameCodec, RawPayloadsStayOnOneLine) {
  std::string text = encode(frame{.kind = frame_kind::message, .channel = "a", .pos = {"e", 1},
                                  .data = "{\r\n  \"a\": [1,\n 2]\n}"});
  EXPECT_EQ(text.find('\n'), text.size() - 1);
  EXPECT_EQ(text.find('\r'), std::string::npos);
  frame f;
  decode_error err;
  ASSERT_TRUE(decode_frame(text, f, err)) << err.reason;
  EXPECT_EQ(f.data, "{    \"a\": [1,  2] }");
  std::string cmd = encode(command{.kind = command_kind::publish, .channel = "a", .data = "[1,\n2]"});
  EXPECT_EQ(cmd.find('\n'), cmd.size() - 1);
}

TEST(FrameCodec, EncodeMessageMatchesTheMessageFrame) {
  for (std::string data : {"{\"a\":[1,2]}", "\"line\\nbreak\"", "", "7", "{\"x\":\n1}"}) {
    frame f{.kind = frame_kind::message};
    f.channel = "news:\xc3\xa9t\xc3\xa9";
    f.pos = position{"k3j9x", 42};
    f.data = data;
    std::string direct;
    encode_message(f.channel, f.pos, data, direct);
    EXPECT_EQ(direct, encode(f)) << data;
  }
}

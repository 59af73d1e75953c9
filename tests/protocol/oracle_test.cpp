// The envelope scanner against Boost.JSON (DECISIONS.md §16): for every input both must reach the
// same verdict, and for accepted objects the same members with the same values. Native only.
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "protocol/frame_codec.hpp"
#include "protocol/json_scan.hpp"

namespace json = boost::json;
using namespace pushwire::protocol;

namespace {

// Boost.JSON's verdict on "is this one JSON object".
bool boost_accepts_object(std::string_view text, json::value& out) {
  json::error_code ec;
  out = json::parse(text, ec);
  return !ec && out.is_object();
}

void check_agreement(const std::string& text) {
  std::vector<json_member> members;
  scan_error err;
  bool ours = scan_object(text, members, err);
  json::value theirs;
  bool boost_ok = boost_accepts_object(text, theirs);
  if (!ours && std::string_view(err.what) == "duplicate key") {
    // Boost.JSON keeps the last duplicate instead of refusing: our stricter verdict is intended.
    EXPECT_TRUE(boost_ok) << text;
    return;
  }
  ASSERT_EQ(ours, boost_ok) << "input: " << text << "\nscanner says: " << (ours ? "ok" : err.what);
  if (!ours) return;
  const json::object& obj = theirs.as_object();
  ASSERT_EQ(members.size(), obj.size()) << text;
  for (auto& m : members) {
    auto it = obj.find(m.key);
    ASSERT_NE(it, obj.end()) << "key " << m.key << " in " << text;
    json::error_code ec;
    json::value v = json::parse(m.raw, ec);
    ASSERT_FALSE(ec) << m.raw;
    // Boost.JSON reads some numbers (e.g. 0e839) as NaN, which never equals itself.
    bool both_nan = v.is_double() && it->value().is_double() && std::isnan(v.get_double()) &&
                    std::isnan(it->value().get_double());
    if (!both_nan) {
      EXPECT_EQ(v, it->value()) << m.raw;
    }
    if (m.kind == json_kind::string) {
      EXPECT_EQ(decode_string(m.raw), std::string(it->value().as_string()));
    }
  }
}

struct rng {
  std::uint64_t s;
  std::uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
};

std::vector<std::string> seeds() {
  std::vector<std::string> out{
      R"({"cmd":"subscribe","id":2,"channel":"scores","since":{"epoch":"k3j9x2ab","offset":41}})",
      R"({"type":"message","channel":"s","epoch":"e","offset":42,"data":{"a":[1,-2.5e-3,0,true,false,null],"b":"\u00e9\ud83d\ude00"}})",
      R"({"type":"history","id":5,"channel":"c","epoch":"b7","offset":9,"publications":[{"offset":9,"data":"x\n\"y\""}]})",
      R"( { "k" : [ ] , "o" : { } , "s" : "" , "n" : -0 , "e" : 1E+2 } )",
      "{\"utf8\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}",
      R"({"big":123456789012345678901234567890,"exp":1e400,"neg":-1e-400})",
      R"({"esc":"\"\\\/\b\f\n\r\t\u0000\u001f"})",
  };
  for (auto& f : {frame{.kind = frame_kind::connected, .id = 1, .client = "c1", .ping_ms = 25000},
                  frame{.kind = frame_kind::disconnect, .error_code = code::shutting_down, .reason = "r", .reconnect = true,
                        .after_ms = 5}}) {
    out.push_back(encode(f));
  }
  return out;
}

}  // namespace

TEST(ScannerOracle, AgreesOnHandPickedInputs) {
  for (auto& s : seeds()) check_agreement(s);
  for (std::string s : {"{}", "{\"a\":1}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":+1}", "{\"a\":1e}",
                        "{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00\\ud800\"}", "{\"a\":\"\\ud800\\u0041\"}",
                        "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xc0\x80\"}", "{\"a\":\"\xf4\x90\x80\x80\"}",
                        "{\"a\":nul}", "{\"a\":[1,2,]}", "{,}", "{\"a\":1,}", "[1]", "\"s\"", "1", "{\"a\":1} ",
                        "{\"a\":1}\n", "\t{\"a\":1}", "{\"a\":1e2147483647}", "{\"a\":1e2147483648}",
                        "{\"a\":1e-2147483648}", "{\"a\":123456789012345678901234e2147483647}", "{\"a\":1e0000000000000002}", "{\"a\":0e839}",
                        "{\"a\":12345678901234567890123.5e-2147483640}", "{\"a\":0.000000000000000000000000001e-2147483630}",
                        "{\"a\":18446744073709551615e2147483647}", "{\"a\":18446744073709551616e2147483647}", "{\"a\":1}x", "{\"a\":\"\x7f\"}", "{\"a\":\"\x1f\"}"}) {
    check_agreement(s);
  }
}

TEST(ScannerOracle, AgreesOnNestingDepthLimit) {
  for (int depth = 28; depth <= 36; ++depth) {
    check_agreement("{\"a\":" + std::string(depth, '[') + std::string(depth, ']') + "}");
    std::string objs;
    for (int i = 0; i < depth; ++i) objs += "{\"a\":";
    objs += "1";
    objs += std::string(depth, '}');
    check_agreement(objs);
  }
}

TEST(ScannerOracle, AgreesOnMutatedFrames) {
  rng r{0x9E3779B97F4A7C15ull};
  static constexpr char alphabet[] = "{}[]\",:\\u0123456789abcdefnrtlse.-+E \t\n\x80\xbf\xc3\xe2\xf0\xff";
  int checked = 0;
  for (auto& seed : seeds()) {
    for (int round = 0; round < 3000; ++round) {
      std::string s = seed;
      int edits = 1 + static_cast<int>(r.below(3));
      for (int e = 0; e < edits && !s.empty(); ++e) {
        std::size_t at = r.below(s.size());
        char c = alphabet[r.below(sizeof alphabet - 1)];
        switch (r.below(4)) {
          case 0: s[at] = c; break;
          case 1: s.insert(s.begin() + static_cast<std::ptrdiff_t>(at), c); break;
          case 2: s.erase(at, 1); break;
          case 3: s.resize(at); break;
        }
      }
      check_agreement(s);
      if (HasFatalFailure()) return;
      ++checked;
    }
  }
  EXPECT_EQ(checked, static_cast<int>(seeds().size()) * 3000);
}

TEST(ScannerOracle, DecodedCommandsMatchBoostFields) {
  std::string text = R"({"cmd":"publish","id":77,"channel":"demo:chat","data":{"text":"h\u00e9"},"extra":[1]})";
  command c;
  decode_error err;
  ASSERT_TRUE(decode_command(text, c, err));
  json::value v = json::parse(text);
  EXPECT_EQ(c.id, v.at("id").as_int64());
  EXPECT_EQ(c.channel, std::string(v.at("channel").as_string()));
  EXPECT_EQ(json::parse(c.data), v.at("data"));
}

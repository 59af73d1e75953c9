// Differential fuzz target (DECISIONS.md §16): the envelope scanner and Boost.JSON must reach the same
// verdict on every input, and the same members for accepted objects; the frame decoders must never
// crash. Built with clang's libFuzzer by scripts/fuzz.sh; the test command runs a fixed, seeded number
// of inputs, and `bash scripts/fuzz.sh 600` fuzzes for ten minutes.
#include <boost/json.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "protocol/frame_codec.hpp"
#include "protocol/json_scan.hpp"

using namespace pushwire::protocol;
namespace json = boost::json;

namespace {

[[noreturn]] void disagree(std::string_view input, const char* what) {
  std::fprintf(stderr, "scanner and Boost.JSON disagree (%s) on: %.*s\n", what, static_cast<int>(input.size()),
               input.data());
  std::abort();
}

// Within a couple of units in the last place. Boost 1.81 reads decimals fast rather than correctly
// rounded, and the same digits can land one double apart alone and inside an object (the long run of
// issue 18: 85555555556.5555008); the scanner hands the raw text on, so that is not a disagreement.
bool near_double(double a, double b) {
  for (int step = 0; step < 3; ++step, a = std::nextafter(a, b))
    if (a == b) return true;
  return false;
}

// Boost.JSON reads some numbers (e.g. 0e839) as NaN, which never equals itself.
bool same_value(const json::value& a, const json::value& b) {
  if (a.is_double() && b.is_double()) {
    if (std::isnan(a.get_double()) && std::isnan(b.get_double())) return true;
    return near_double(a.get_double(), b.get_double());
  }
  if (a.is_array() && b.is_array()) {
    const auto &x = a.get_array(), &y = b.get_array();
    if (x.size() != y.size()) return false;
    for (std::size_t i = 0; i < x.size(); ++i)
      if (!same_value(x[i], y[i])) return false;
    return true;
  }
  if (a.is_object() && b.is_object()) {
    const auto &x = a.get_object(), &y = b.get_object();
    if (x.size() != y.size()) return false;
    for (const auto& [key, value] : x) {
      auto it = y.find(key);
      if (it == y.end() || !same_value(value, it->value())) return false;
    }
    return true;
  }
  return a == b;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<json_member> members;
  scan_error err;
  bool ours = scan_object(text, members, err);
  json::error_code ec;
  json::value theirs = json::parse(text, ec);
  bool boost_ok = !ec && theirs.is_object();
  bool duplicate = !ours && std::string_view(err.what) == "duplicate key";
  bool too_many = !ours && std::string_view(err.what) == "too many members";
  if (!duplicate && !too_many && ours != boost_ok) disagree(text, "verdict");
  if (ours) {
    const auto& obj = theirs.as_object();
    if (obj.size() != members.size()) disagree(text, "member count");
    for (auto& m : members) {
      auto it = obj.find(m.key);
      if (it == obj.end()) disagree(text, "member key");
      json::value v = json::parse(m.raw, ec);
      if (ec || !same_value(v, it->value())) disagree(text, "member value");
    }
  }
  command c;
  frame f;
  decode_error derr;
  if (decode_command(text, c, derr)) {
    command back;
    if (!decode_command(encode(c), back, derr)) disagree(text, "command re-encode");
  }
  if (decode_frame(text, f, derr)) {
    frame back;
    if (!decode_frame(encode(f), back, derr)) disagree(text, "frame re-encode");
  }
  return 0;
}

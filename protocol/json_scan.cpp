#include "protocol/json_scan.hpp"


namespace pushwire::protocol {
namespace {

// Length of the UTF-8 sequence starting at s[i], or 0 when it is invalid.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  if (c < 0x80) return 1;
  std::size_t n;
  std::uint32_t cp;
  if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; }
  else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; }
  else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; }
  else return 0;
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  static constexpr std::uint32_t min_for_length[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min_for_length[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class scanner {
 public:
  scanner(std::string_view text, const json_limits& limits, scan_error& err)
      : s_(text), limits_(limits), err_(err) {}

  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool at_end() const { return i_ >= s_.size(); }
  std::size_t pos() const { return i_; }

  bool fail(std::string_view what) {
    err_.at = i_;
    err_.what = what;
    return false;
  }

  // Scans any value starting at the current position; `kind` receives its kind.
  bool value(std::size_t depth, json_kind& kind) {
    if (at_end()) return fail("unexpected end of input");
    switch (s_[i_]) {
      case '{': kind = json_kind::object; return container(depth, '}');
      case '[': kind = json_kind::array; return container(depth, ']');
      case '"': kind = json_kind::string; return string();
      case 't': kind = json_kind::boolean; return literal("true");
      case 'f': kind = json_kind::boolean; return literal("false");
      case 'n': kind = json_kind::null; return literal("null");
      default: kind = json_kind::number; return number();
    }
  }

  // Scans an object or array; for the top-level object the members are recorded.
  bool container(std::size_t depth, char close, std::vector<json_member>* members = nullptr) {
    if (depth + 1 > limits_.max_depth) return fail("nesting too deep");
    bool is_object = close == '}';
    ++i_;
    skip_ws();
    if (!at_end() && s_[i_] == close) { ++i_; return true; }
    for (;;) {
      std::string key;
      if (is_object) {
        skip_ws();
        if (at_end() || s_[i_] != '"') return fail("expected a string key");
        std::size_t key_start = i_;
        if (!string()) return false;
        if (members) key = decode_string(s_.substr(key_start, i_ - key_start));
        skip_ws();
        if (at_end() || s_[i_] != ':') return fail("expected ':'");
        ++i_;
      }
      skip_ws();
      std::size_t value_start = i_;
      json_kind kind;
      if (!value(depth + 1, kind)) return false;
      if (members) {
        for (auto& m : *members)
          if (m.key == key) return fail("duplicate key");
        if (members->size() >= limits_.max_members) return fail("too many members");
        members->push_back({std::move(key), kind, s_.substr(value_start, i_ - value_start)});
      }
      skip_ws();
      if (at_end()) return fail("unexpected end of input");
      if (s_[i_] == ',') { ++i_; continue; }
      if (s_[i_] == close) { ++i_; return true; }
      return fail(is_object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
  }

  bool string() {
    ++i_;  // opening quote
    while (i_ < s_.size()) {
      unsigned char c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') { ++i_; return true; }
      if (c < 0x20) return fail("control character in string");
      if (c == '\\') {
        if (++i_ >= s_.size()) break;
        char e = s_[i_];
        if (e == 'u') {
          unsigned cp;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned low;
            if (i_ + 1 >= s_.size() || s_[i_] != '\\' || s_[i_ + 1] != 'u') return fail("lone surrogate");
            ++i_;
            if (!hex4(low)) return false;
            if (low < 0xDC00 || low > 0xDFFF) return fail("bad surrogate pair");
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return fail("lone surrogate");
          }
          continue;
        }
        if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' && e != 't')
          return fail("bad escape");
        ++i_;
        continue;
      }
      std::size_t n = utf8_sequence(s_, i_);
      if (n == 0) return fail("invalid UTF-8");
      i_ += n;
    }
    return fail("unterminated string");
  }

  // At 'u' of an escape: reads four hex digits and leaves i_ after them.
  bool hex4(unsigned& cp) {
    ++i_;
    if (i_ + 4 > s_.size()) return fail("truncated \\u escape");
    cp = 0;
    for (int k = 0; k < 4; ++k) {
      int h = hex_value(s_[i_ + k]);
      if (h < 0) return fail("bad \\u escape");
      cp = cp * 16 + static_cast<unsigned>(h);
    }
    i_ += 4;
    return true;
  }

  bool literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return fail("bad literal");
    i_ += word.size();
    return true;
  }

  // RFC 8259 number. Beyond the grammar, it refuses exactly the exponents Boost.JSON (the oracle)
  // refuses: the exponent must fit an int, and so must exponent + "bias", where bias counts the
  // integer digits past a 64-bit mantissa minus the fraction digits folded into it (below 2^53).
  bool number() {
    auto digit = [&] { return i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9'; };
    constexpr std::int64_t int_max = 2147483647, int_min = -int_max - 1;
    std::uint64_t mant = 0;
    std::int64_t bias = 0;
    bool mant_full = false;
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    if (!digit()) return fail("bad number");
    if (s_[i_] == '0') {
      ++i_;
    } else {
      for (; digit(); ++i_) {
        unsigned d = static_cast<unsigned>(s_[i_] - '0');
        if (!mant_full && (mant > 1844674407370955161u || (mant == 1844674407370955161u && d > 5))) mant_full = true;
        if (mant_full) ++bias;
        else mant = mant * 10 + d;
      }
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (!digit()) return fail("bad number");
      bool frac_full = false;
      for (; digit(); ++i_) {
        if (!frac_full && mant <= 9007199254740991u) {
          --bias;
          mant = mant * 10 + static_cast<unsigned>(s_[i_] - '0');
        } else {
          frac_full = true;
        }
      }
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      bool negative = false;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) negative = s_[i_++] == '-';
      if (!digit()) return fail("bad number");
      std::int64_t exponent = 0;
      for (; digit(); ++i_) {
        exponent = exponent * 10 + (s_[i_] - '0');
        if (exponent > int_max) return fail("exponent overflow");
      }
      if (negative ? bias < int_min + exponent : bias > int_max - exponent) return fail("exponent overflow");
    }
    return true;
  }

 private:
  std::string_view s_;
  const json_limits& limits_;
  scan_error& err_;
  std::size_t i_ = 0;
};

void append_utf8(std::string& out, unsigned cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace

bool scan_object(std::string_view text, std::vector<json_member>& members, scan_error& err,
                 const json_limits& limits) {
  members.clear();
  scanner sc(text, limits, err);
  sc.skip_ws();
  if (sc.at_end() || text[sc.pos()] != '{') return sc.fail("expected a JSON object");
  if (!sc.container(0, '}', &members)) return false;
  sc.skip_ws();
  if (!sc.at_end()) return sc.fail("trailing characters");
  return true;
}

bool validate_json(std::string_view text, scan_error& err, const json_limits& limits) {
  scanner sc(text, limits, err);
  sc.skip_ws();
  json_kind kind;
  if (!sc.value(0, kind)) return false;
  sc.skip_ws();
  if (!sc.at_end()) return sc.fail("trailing characters");
  return true;
}

std::string decode_string(std::string_view raw) {
  std::string out;
  if (raw.size() < 2) return out;
  std::string_view s = raw.substr(1, raw.size() - 2);
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c != '\\') { out += c; continue; }
    char e = s[++i];
    switch (e) {
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        auto hex = [&](std::size_t at) {
          unsigned v = 0;
          for (int k = 0; k < 4; ++k) v = v * 16 + static_cast<unsigned>(hex_value(s[at + k]));
          return v;
        };
        unsigned cp = hex(i + 1);
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          unsigned low = hex(i + 3);
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          i += 6;
        }
        append_utf8(out, cp);
        break;
      }
      default: out += e; break;  // '"', '\\', '/'
    }
  }
  return out;
}

std::optional<std::uint64_t> parse_uint(std::string_view raw) {
  constexpr std::uint64_t max_safe = (std::uint64_t{1} << 53) - 1;
  if (raw.empty() || raw.size() > 16) return std::nullopt;
  for (char c : raw)
    if (c < '0' || c > '9') return std::nullopt;
  if (raw.size() > 1 && raw[0] == '0') return std::nullopt;
  // At most 16 digits, checked above: cannot overflow 64 bits. (A loop rather than std::from_chars,
  // whose generic code is most of this function's size in the wasm client.)
  std::uint64_t v = 0;
  for (char c : raw) v = v * 10 + static_cast<std::uint64_t>(c - '0');
  if (v > max_safe) return std::nullopt;
  return v;
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

void append_uint(std::string& out, std::uint64_t v) {
  // Digits from the right; a loop rather than std::to_chars, whose tables cost more in the wasm client.
  char buf[20];
  char* p = buf + sizeof buf;
  do {
    *--p = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  // (pointer, length): the iterator-pair overload is a second, larger append in the wasm client.
  out.append(p, static_cast<std::size_t>(buf + sizeof buf - p));
}

bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    std::size_t n = utf8_sequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string_view utf8_prefix(std::string_view s, std::size_t max) {
  if (s.size() <= max) return s;
  std::size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xc0) == 0x80) --end;  // inside a character
  return s.substr(0, end);
}

}  // namespace pushwire::protocol

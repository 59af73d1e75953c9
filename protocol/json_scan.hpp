// A small, strict JSON scanner for protocol envelopes (DECISIONS.md §16: the client ships in wasm,
// where Boost.JSON would cost ~50 KB gzip on every page load).
//
// It validates the whole text against RFC 8259 (UTF-8 included, depth bounded) and returns the
// members of the top-level object as raw spans; nested values are not decoded, so application
// payloads stay JSON text for the browser's JSON.parse. Boost.JSON is its oracle in the tests: both
// must give the same verdict and the same members for every input.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pushwire::protocol {

enum class json_kind : std::uint8_t { null, boolean, number, string, array, object };

struct json_member {
  std::string key;          // decoded
  json_kind kind;
  std::string_view raw;     // the value's exact text (strings include their quotes)
};

struct json_limits {
  std::size_t max_depth = 32;     // same as Boost.JSON's default, so the oracle agrees
  std::size_t max_members = 64;   // top-level members of one envelope
};

struct scan_error {
  std::size_t at = 0;             // byte offset where scanning stopped
  std::string_view what;          // static text
};

// Scans `text`, which must be exactly one JSON object (surrounding whitespace allowed).
// Duplicate top-level keys are an error: an envelope field must mean one thing.
bool scan_object(std::string_view text, std::vector<json_member>& members, scan_error& err,
                 const json_limits& limits = {});

// Validates that `text` is exactly one JSON value of any kind.
bool validate_json(std::string_view text, scan_error& err, const json_limits& limits = {});

// Decodes a raw JSON string token (with quotes) that the scanner already validated.
std::string decode_string(std::string_view raw);

// Parses a raw number token as an unsigned integer no larger than 2^53 - 1 (exact in JavaScript).
std::optional<std::uint64_t> parse_uint(std::string_view raw);

// Appends `s` as a JSON string literal (with quotes). `s` must be valid UTF-8.
void append_json_string(std::string& out, std::string_view s);
void append_uint(std::string& out, std::uint64_t v);

// Whether `s` is valid UTF-8 (no overlongs, no surrogates, at most U+10FFFF).
bool valid_utf8(std::string_view s);

// The longest prefix of `s` of at most `max` bytes that ends on a character boundary, for quoting a
// bounded piece of client input back in a message (cutting inside a character makes the message
// invalid UTF-8, which a browser refuses as a whole).
std::string_view utf8_prefix(std::string_view s, std::size_t max);

}  // namespace pushwire::protocol

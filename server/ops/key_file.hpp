// The key file (--key-file): the API key and the token secret kept across restarts, so an operator
// reads them from one file (never from the log). Format: one JSON object,
//   {"api_key": "<text>", "token_secret": "<text>"}
// both non-empty strings, nothing else. A missing file is created once with random keys (32 random
// bytes each, hex), mode 0600, atomically: written to a temporary file, fsynced, then linked into
// place, so a reader never sees half a file and two servers starting together agree on one.
#pragma once
#include <string>

namespace pushwire::server {

struct key_set {
  std::string api_key;
  std::string token_secret;
};

// Reads `path`, or creates it when it does not exist (`created` says which). False with `error`
// (naming the path, never a key) when the file cannot be read or created or is not as above.
bool load_or_create_key_file(const std::string& path, key_set& out, bool& created, std::string& error);

// `bytes` random bytes from the kernel as lowercase hex.
std::string random_hex(std::size_t bytes);

}  // namespace pushwire::server

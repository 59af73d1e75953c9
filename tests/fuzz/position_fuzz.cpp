// Resume tokens (the SSE `id:` / Last-Event-ID and `since=`) and poll cursors (`cursor=`), as the
// server reads them from a URL: protocol/position.* and server/http/query.* (docs/fuzzing.md).
//
// Input: a URL query string (`channels=a,b&cursor=TOKEN&...`). The whole input is also decoded as
// a token on its own. Checked beyond "no crash":
//   - a token that decodes re-encodes to exactly the same text (one spelling per token), has at
//     most max_token_channels entries, and only valid epochs and safe-integer offsets;
//   - parse_stream_params accepts a cursor only with one entry per channel, and never more
//     channels than the limit.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "protocol/position.hpp"
#include "server/http/query.hpp"

using namespace pushwire;

namespace {

[[noreturn]] void fail(const char* what, std::string_view input) {
  std::fprintf(stderr, "position_fuzz: %s on: %.*s\n", what, static_cast<int>(input.size()), input.data());
  std::abort();
}

void check_token(std::string_view text) {
  auto t = protocol::decode_resume_token(text);
  if (!t) return;
  if (t->empty() || t->size() > protocol::max_token_channels) fail("entry count out of range", text);
  for (auto& p : *t) {
    if (!p) continue;
    if (!protocol::valid_epoch(p->epoch)) fail("invalid epoch accepted", text);
    if (p->offset > (std::uint64_t{1} << 53) - 1) fail("offset beyond 2^53-1 accepted", text);
  }
  std::string back = protocol::encode_resume_token(*t);
  if (back != text) fail("token does not re-encode to itself", text);
  auto again = protocol::decode_resume_token(back);
  if (!again || *again != *t) fail("re-encoded token decodes differently", text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  check_token(input);

  auto q = server::parse_query(input);
  for (const char* key : {"cursor", "since"}) {
    auto it = q.find(key);
    if (it == q.end()) continue;
    check_token(it->second);
    constexpr std::size_t max_channels = 64;   // the server's default --max-stream-channels
    server::stream_params p;
    protocol::code c = protocol::code::ok;
    std::string reason;
    bool ok = server::parse_stream_params(max_channels, q["channels"], it->second, q["token"], p, c, reason);
    if (ok) {
      if (p.channels.size() > max_channels) fail("too many channels accepted", input);
      if (p.since.size() != p.channels.size()) fail("cursor entries differ from channels", input);
      if (!it->second.empty() && protocol::encode_resume_token(p.since) != it->second)
        fail("accepted cursor does not re-encode to itself", input);
    } else if (c == protocol::code::ok || reason.empty()) {
      fail("refusal without a code and reason", input);
    }
  }
  return 0;
}

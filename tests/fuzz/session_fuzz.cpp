// WebSocket command batches through the server side of a connection: protocol/server_session.*
// (docs/fuzzing.md).
//
// Input: WebSocket messages separated by the byte 0xff. A message's first byte steers the harness
// (the rest is the message text, newline-delimited commands):
//   bits 0-1  0, 1: handle_text(rest); 2: handle_timeout after rest's length x 1 s;
//             3: the server disconnects (API/shutdown), then handle_text(rest)
//   bit 2     answer the engine requests still pending with an error instead of success
//   bit 3     leave pending requests unanswered until a later message (completions that come late)
// The harness plays the shell: it drains poll_action() after every input, answers engine requests
// (subscribe/publish/history/presence) with handle_result, and calls shell_closed() after a close.
// Checked beyond "no crash": every `send` is one or more "\n"-terminated frames that decode_frame
// accepts; at most one `close`; nothing but sends already queued comes out after it.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/frame_codec.hpp"
#include "protocol/server_session.hpp"

using namespace pushwire::protocol;

namespace {

[[noreturn]] void fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "session_fuzz: %s: %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

session_policy make_policy() {
  session_policy p;
  p.namespaces = {namespace_policy{},
                  namespace_policy{"chat", true, true, false, false},
                  namespace_policy{"anon", true, true, true, false},
                  namespace_policy{"priv", true, true, false, true},
                  namespace_policy{"demo", true, true, true, false}};
  p.allow_drop = true;
  p.max_subscriptions = 8;     // small limits, so inputs reach them
  p.max_message_bytes = 256;
  p.max_batch = 16;
  p.max_token_bytes = 128;
  p.ping_ms = 25000;
  p.handshake_timeout_ms = 10000;
  p.token_refresh_warning_ms = 30000;
  return p;
}

// Tokens for the fuzzer to write: "u:USER:EXPIRES_IN_S:GRANT,GRANT" is accepted (the real HMAC
// verifier has a target of its own, jwt_fuzz), "expired" is 4005, anything else 4004.
verified_token verify(std::string_view token, std::uint64_t) {
  verified_token v;
  if (token == "expired") return verified_token{code::token_expired, "token expired", {}, {}, false, {}};
  if (!token.starts_with("u:")) return verified_token{code::unauthorized, "bad token", {}, {}, false, {}};
  token.remove_prefix(2);
  auto c1 = token.find(':');
  v.user = std::string(token.substr(0, c1));
  if (c1 == std::string_view::npos) return v;
  token.remove_prefix(c1 + 1);
  auto c2 = token.find(':');
  std::uint64_t s = 0;
  for (char ch : token.substr(0, c2)) {
    if (ch < '0' || ch > '9' || s > 1'000'000) break;
    s = s * 10 + static_cast<std::uint64_t>(ch - '0');
  }
  v.expires_in_ms = s * 1000;
  if (c2 == std::string_view::npos) return v;
  token.remove_prefix(c2 + 1);
  v.restricts_channels = true;
  while (!token.empty()) {
    auto comma = token.find(',');
    v.channels.emplace_back(token.substr(0, comma));
    if (comma == std::string_view::npos) break;
    token.remove_prefix(comma + 1);
  }
  return v;
}

struct harness {
  server_session s{make_policy(), verify, session_info{"c1", true}, 1000};
  std::uint64_t now = 1000;
  std::deque<session_action> requests;
  bool closed = false;
  std::uint64_t offset = 0;

  void drain() {
    while (auto a = s.poll_action()) {
      switch (a->kind) {
        case session_action_kind::send: check_send(a->text); break;
        case session_action_kind::close:
          if (closed) fail("a second close", a->reason);
          closed = true;
          break;
        case session_action_kind::unsubscribe: break;
        default:
          if (closed) fail("an engine request after close", a->channel);
          requests.push_back(std::move(*a));
      }
    }
  }

  static void check_send(std::string_view text) {
    if (text.empty() || text.back() != '\n') fail("send without a final newline", text);
    while (!text.empty()) {
      auto nl = text.find('\n');
      frame f;
      decode_error err;
      if (!decode_frame(text.substr(0, nl), f, err)) fail("the session sent an undecodable frame", text.substr(0, nl));
      text.remove_prefix(nl + 1);
    }
  }

  void answer(bool with_error) {
    while (!requests.empty()) {
      auto a = std::move(requests.front());
      requests.pop_front();
      engine_reply r;
      r.request = a.request;
      if (with_error) {
        r.error = code::internal_error;
        r.reason = "store failed";
      } else {
        r.pos = position{"e1", a.kind == session_action_kind::publish ? ++offset : offset};
        if (a.kind == session_action_kind::subscribe && a.since) r.recovered = a.since->offset <= offset;
        if (a.kind == session_action_kind::history) r.data = R"([{"offset":1,"data":{"a":1}}])";
        if (a.kind == session_action_kind::presence) r.data = R"([{"user":"u","client":"c1"}])";
      }
      s.handle_result(r, now);
      drain();
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  harness h;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  h.drain();
  while (!input.empty()) {
    auto end = input.find('\xff');
    std::string_view msg = input.substr(0, end);
    input = end == std::string_view::npos ? std::string_view{} : input.substr(end + 1);
    if (msg.empty()) continue;
    unsigned op = static_cast<unsigned char>(msg[0]);
    msg.remove_prefix(1);
    h.now += 1;
    switch (op & 3) {
      case 2:
        h.now += msg.size() * 1000;
        h.s.handle_timeout(h.now);
        // A deadline handled is gone: the next one lies ahead (or there is none).
        if (auto d = h.s.next_deadline(); d && *d <= h.now && !h.closed) fail("a deadline handled stays due", "");
        break;
      case 3: h.s.disconnect(code::going_away, "server shutting down", true, 1500); [[fallthrough]];
      default: h.s.handle_text(msg, h.now);
    }
    h.drain();
    if (!(op & 8)) h.answer(op & 4);
  }
  h.answer(false);
  if (h.closed) {
    h.s.shell_closed();
    h.drain();
  }
  return 0;
}

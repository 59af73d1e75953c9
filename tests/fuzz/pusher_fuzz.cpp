// Pusher-protocol messages through the server side of a Pusher connection:
// protocol/pusher/pusher_session.* (docs/fuzzing.md).
//
// Input: WebSocket messages separated by the byte 0xff. A message's first byte steers the harness
// (the rest is the message text):
//   bits 0-1  0, 1: handle_text(rest); 2: a presence join or leave event for the channel and user
//             named by rest ("channel user"); 3: the server disconnects, then handle_text(rest)
//   bit 2     answer the engine requests still pending with an error instead of success
//   bit 3     leave pending requests unanswered until a later message (completions that come late)
// The harness plays the shell: it drains poll_action() after every input and answers engine
// requests with handle_result (a subscribe with presence gets a member list that includes rest's
// user ids). Checked beyond "no crash": every `send` is one JSON object with a string "event" and a
// string "data" (what pusher-js parses); at most one `close`, with a code in Pusher's ranges;
// nothing comes out after it.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/json_scan.hpp"
#include "protocol/pusher/pusher_session.hpp"

using namespace pushwire::protocol;
using namespace pushwire::protocol::pusher;

namespace {

[[noreturn]] void fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "pusher_fuzz: %s: %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

// A cheap stand-in signature: inputs can forge it (the fuzzer reaches the authorized paths), which
// is what a harness wants; the real HMAC is OpenSSL's.
std::string sign(std::string_view text) { return std::to_string(text.size()); }

struct harness {
  pusher_session s;
  std::deque<session_action> pending;
  bool closed = false;

  explicit harness(session_config c) : s(std::move(c), 0) { s.start(); }

  void drain() {
    while (auto a = s.poll_action()) {
      if (closed) fail("action after close", a->text);
      switch (a->kind) {
        case session_action_kind::send: {
          std::vector<json_member> m;
          scan_error err;
          if (!scan_object(a->text, m, err)) fail("send is not a JSON object", a->text);
          bool event = false, data = false;
          for (auto& x : m) {
            if (x.key == "event" && x.kind == json_kind::string) event = true;
            if (x.key == "data" && x.kind == json_kind::string) data = true;
          }
          if (!event || !data) fail("send lacks a string event or data", a->text);
          break;
        }
        case session_action_kind::close: {
          auto c = static_cast<int>(a->close_code);
          if (c < 4000 || c > 4299) fail("close code outside Pusher's ranges", std::to_string(c));
          closed = true;
          break;
        }
        default:
          if (a->channel.empty()) fail("engine request without a channel", a->text);
          pending.push_back(std::move(*a));
      }
    }
    while (s.poll_note()) {
    }
  }

  void answer(bool with_error, std::string_view users) {
    while (!pending.empty()) {
      auto a = std::move(pending.front());
      pending.pop_front();
      engine_reply r{.request = a.request};
      if (with_error) {
        r.error = code::presence_full;
        r.reason = "full";
      } else {
        r.pos = position{"e", users.size()};
        r.recovered = !users.empty();
        if (a.with_members) {
          r.members.push_back(member_entry{a.member_user, "1.1", a.member_info});
          std::size_t i = 0;
          for (char c : users) r.members.push_back(member_entry{std::string(1, c), std::to_string(i++), ""});
        }
      }
      s.handle_result(r, 0);
      drain();
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  session_config c;
  c.socket_id = "1.1";
  c.app_key = "key";
  c.ns = "app";
  c.client_events_per_s = 3;
  c.max_subscriptions = 8;     // small limits, so inputs reach them
  c.max_message_bytes = 256;
  c.sign = sign;
  harness h(std::move(c));
  h.drain();
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::uint64_t now = 0;
  while (!in.empty()) {
    auto cut = in.find('\xff');
    auto msg = in.substr(0, cut);
    in = cut == std::string_view::npos ? std::string_view{} : in.substr(cut + 1);
    if (msg.empty()) continue;
    auto steer = static_cast<std::uint8_t>(msg[0]);
    auto rest = msg.substr(1);
    now += 100;
    switch (steer & 3) {
      case 0:
      case 1:
        h.s.handle_text(rest, now);
        break;
      case 2: {
        auto sp = rest.find(' ');
        std::string channel = "app:" + std::string(rest.substr(0, sp));
        std::string user(sp == std::string_view::npos ? "" : rest.substr(sp + 1));
        h.s.handle_member_event(member_event{(steer & 16) == 0, channel, user, user + ".c", "{}"});
        break;
      }
      case 3:
        h.s.disconnect((steer & 16) ? code::slow_consumer : code::shutting_down, "bye", (steer & 32) != 0);
        h.s.handle_text(rest, now);
        break;
    }
    h.drain();
    if (!(steer & 8)) h.answer((steer & 4) != 0, rest.substr(0, 8));
    if (h.closed) {
      h.s.shell_closed();
      h.s.handle_text(rest, now);
      h.drain();
      break;
    }
  }
  return 0;
}

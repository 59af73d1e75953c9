// Server frames through the client machine: protocol/client_machine.* (docs/fuzzing.md). The
// fuzzer plays the server and the world around the client (transports opening and closing, time,
// the application's calls).
//
// Input: steps separated by the byte 0xff; a step's first byte picks what happens, the rest is its
// argument:
//   0x0-0x7  transport data: the rest is a batch of frames on the current transport
//   0x8      the current transport opens          0x9  it closes (code from the rest's length)
//   0xa      time passes to the next deadline (or the rest's length in seconds)
//   0xb      subscribe(rest) (bit 4 of the op: with a since position)
//   0xc      unsubscribe(rest)                     0xd  publish (rest, when it is JSON) / history /
//                                                       presence on "chat:a"
//   0xe      the application answers a token fetch (rest = token, when it is UTF-8, as every string
//            from JS is; bit 4: it fails instead)
//   0xf      network check; bit 4: close(); bit 5: connect()
// The machine is connected over WebSocket, SSE or long-poll (first input byte) and starts with
// two subscriptions. Checked beyond "no crash": every command the client sends decodes; per
// channel, delivered messages of one epoch have increasing offsets between (re)subscriptions; the
// client's frame decoder (client_frame_decoder.hpp) agrees with the codec's on every frame.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <tuple>

#include "protocol/client_frame_decoder.hpp"
#include "protocol/client_machine.hpp"
#include "protocol/frame_codec.hpp"
#include "protocol/json_scan.hpp"

using namespace pushwire::protocol;

namespace {

[[noreturn]] void fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "client_fuzz: %s: %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

struct harness {
  client_machine m;
  std::uint64_t now = 1000;
  std::uint32_t generation = 0;
  std::uint32_t token_request = 0;
  std::map<std::string, position> delivered;   // per channel: the last message delivered

  explicit harness(client_options o) : m(std::move(o)) {}

  void drain() {
    while (auto a = m.poll_action()) {
      switch (a->kind) {
        case client_action_kind::open_transport: generation = a->generation; break;
        case client_action_kind::fetch_token: token_request = a->generation; break;
        case client_action_kind::send: check_commands(a->text); break;
        default: break;
      }
    }
    while (auto e = m.poll_event()) {
      switch (e->kind) {
        case client_event_kind::message: {
          auto it = delivered.find(e->channel);
          if (it != delivered.end() && it->second.epoch == e->pos.epoch && e->pos.offset <= it->second.offset)
            fail("a message at or below the last delivered offset", e->channel);
          delivered[e->channel] = e->pos;
          break;
        }
        case client_event_kind::subscribed:
        case client_event_kind::unsubscribed:
        case client_event_kind::gap: delivered.erase(e->channel); break;
        default: break;
      }
    }
  }

  static void check_commands(std::string_view text) {
    if (text.empty()) fail("an empty send", text);
    while (!text.empty()) {
      auto nl = text.find('\n');
      std::string_view line = text.substr(0, nl);
      command c;
      decode_error err;
      if (!line.empty() && !decode_command(line, c, err)) fail("the client sent an undecodable command", line);
      if (nl == std::string_view::npos) break;
      text.remove_prefix(nl + 1);
    }
  }
};

// The client's own frame decoder must agree with the codec's on everything the server could send.
void same_decoding(std::string_view line) {
  frame a, b;
  decode_error ea, eb;
  bool ok = decode_frame(line, a, ea);
  if (ok != decode_server_frame(line, b, eb)) fail("the client frame decoder disagrees on the verdict", line);
  if (!ok && (ea.error_code != eb.error_code || ea.reason != eb.reason))
    fail("the client frame decoder gives another error", line);
  auto fields = [](const frame& f) {
    return std::tie(f.kind, f.id, f.channel, f.pos, f.recovered, f.data, f.client, f.user, f.ping_ms,
                    f.error_code, f.reason, f.reconnect, f.after_ms);
  };
  if (ok && fields(a) != fields(b)) fail("the client frame decoder gives other fields", line);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  client_options o;
  o.transports = {transport_kind::websocket, transport_kind::sse, transport_kind::polling};
  if (data[0] % 3 == 1) o.transports = {transport_kind::sse, transport_kind::polling};
  if (data[0] % 3 == 2) o.transports = {transport_kind::polling};
  o.token_refresh = data[0] & 4;
  o.seed = data[0];
  harness h(std::move(o));
  h.m.subscribe("chat:a", std::nullopt, h.now);
  h.m.subscribe("news", position{"e1", 5}, h.now);
  h.m.connect(h.now);
  h.drain();

  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  while (!input.empty()) {
    auto end = input.find('\xff');
    std::string_view step = input.substr(0, end);
    input = end == std::string_view::npos ? std::string_view{} : input.substr(end + 1);
    if (step.empty()) continue;
    unsigned op = static_cast<unsigned char>(step[0]);
    std::string_view rest = step.substr(1);
    h.now += 1;
    switch (op & 15) {
      case 8: h.m.handle_transport_open(h.generation, h.now); break;
      case 9: {
        static constexpr code closes[] = {code::transport_failed, code::transport_closed, code::going_away,
                                          code::bad_frame, code::unauthorized, code::token_expired};
        h.m.handle_transport_closed(h.generation, closes[rest.size() % std::size(closes)], rest, h.now);
        break;
      }
      case 10: {
        auto d = h.m.next_deadline();
        h.now = d && *d > h.now ? *d : h.now + rest.size() * 1000;
        h.m.handle_timeout(h.now);
        break;
      }
      case 11:
        h.m.subscribe(rest, op & 16 ? std::optional<position>(position{"e1", rest.size()}) : std::nullopt, h.now);
        h.delivered.erase(std::string(rest));
        break;
      case 12: h.m.unsubscribe(rest, h.now); break;
      case 13:
        if (op & 16) h.m.history("chat:a", rest.size(), h.now);
        else if (op & 32) h.m.presence("chat:a", h.now);
        else if (scan_error err; validate_json(rest, err)) h.m.publish("chat:a", rest, h.now);   // its contract: JSON
        break;
      case 14:
        if (op & 16) h.m.handle_token_failed(h.token_request, rest, h.now);
        else if (valid_utf8(rest)) h.m.handle_token(h.token_request, std::string(rest), h.now);   // JS strings are
        break;
      case 15:
        if (op & 16) h.m.close(h.now);
        else if (op & 32) h.m.connect(h.now);
        else h.m.handle_network_check(h.now);
        break;
      default:
        split_batch(rest, same_decoding);
        h.m.handle_transport_data(h.generation, rest, h.now);
    }
    h.drain();
  }
  return 0;
}

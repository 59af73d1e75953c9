// The C boundary between the JS driver and the client machine (protocol/client_machine.hpp).
//
// Kept deliberately narrow (STYLE.md, "Client"): a handful of extern "C" functions that take numbers
// and UTF-8 byte spans (pointer + length into the wasm heap), and one way out: pw_drain() serializes
// every pending action and event, the state, the transport and the next deadline as ONE small JSON
// text that the JS decodes with a single JSON.parse. Application payloads (`data`, join/leave
// members, reply frames) are raw JSON already validated by the codec, so they are embedded as they
// are and that one parse decodes them too.
//
// Numbers cross as doubles (exact up to 2^53, like every integer in the protocol) so the JS side
// needs no BigInt and no i64 legalisation. Nothing here throws: the core is built -fno-exceptions and
// errors are values (0 / false returns, request_failed events).
//
// Ownership: pw_create() returns an opaque handle (0 on bad options) that pw_destroy() frees. The
// text that pw_drain() returns lives in the handle until the next pw_drain() on it.
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/client_machine.hpp"
#include "protocol/frame_codec.hpp"
#include "protocol/json_scan.hpp"

using namespace pushwire::protocol;

namespace {

struct instance {
  explicit instance(client_options o) : machine(std::move(o)) {}
  client_machine machine;
  std::string out;
};

std::uint64_t to_u64(double v) { return v > 0 ? static_cast<std::uint64_t>(v) : 0; }
std::string_view span(const char* p, int n) { return {p, n > 0 ? static_cast<std::size_t>(n) : 0}; }
instance* as_instance(std::uintptr_t h) { return reinterpret_cast<instance*>(h); }

std::optional<transport_kind> parse_transport(std::string_view s) {
  if (s == "websocket") return transport_kind::websocket;
  if (s == "sse") return transport_kind::sse;
  if (s == "polling") return transport_kind::polling;
  return std::nullopt;
}

// Options arrive as arguments of pw_create (see client-wasm/src/core.mjs): the transports as a
// comma-separated list of names, the token, and each timing a whole number of milliseconds, or NaN
// (JS `undefined`) for client_options' default. Anything else is an error, so a wrong value cannot be
// silently ignored. (Arguments rather than a JSON object: parsing one cost 0.6 KB gzip of wasm.)
bool parse_transports(std::string_view rest, client_options& o) {
  o.transports.clear();
  for (;;) {
    std::size_t comma = rest.find(',');
    auto t = parse_transport(rest.substr(0, comma));
    if (!t) return false;
    o.transports.push_back(*t);
    if (comma == std::string_view::npos) return true;
    rest.remove_prefix(comma + 1);
  }
}

bool set_ms(double v, std::uint64_t& field) {
  if (v != v) return true;   // NaN: the default
  if (!(v >= 0 && v <= 9007199254740991.0)) return false;
  auto u = static_cast<std::uint64_t>(v);
  if (static_cast<double>(u) != v) return false;
  field = u;
  return true;
}

// A tiny writer for the drain text. Keys are static ASCII; every string value goes through
// append_json_string (the core only holds valid UTF-8: the codec validated what came off the wire,
// and the JS encoder never produces invalid UTF-8).
struct out_writer {
  std::string& o;
  bool first = true;
  void key(std::string_view k) {
    if (!first) o += ',';
    first = false;
    o += '"';
    o += k;
    o += "\":";
  }
  void str(std::string_view k, std::string_view v) { key(k); append_json_string(o, v); }
  void num(std::string_view k, std::uint64_t v) { key(k); append_uint(o, v); }
  void boolean(std::string_view k, bool v) { key(k); o += v ? "true" : "false"; }
  void raw(std::string_view k, std::string_view v, std::string_view fallback) {
    key(k);
    o += v.empty() ? fallback : v;
  }
  void pos(const position& p) { str("epoch", p.epoch); num("offset", p.offset); }
};

std::string_view action_name(client_action_kind k) {
  switch (k) {
    case client_action_kind::open_transport: return "open";
    case client_action_kind::send: return "send";
    case client_action_kind::poll: return "poll";
    case client_action_kind::close_transport: return "close";
    case client_action_kind::fetch_token: return "token";
  }
  return "?";
}

std::string_view event_name(client_event_kind k) {
  switch (k) {
    case client_event_kind::state_changed: return "state";
    case client_event_kind::fallback: return "fallback";
    case client_event_kind::subscribed: return "subscribed";
    case client_event_kind::message: return "message";
    case client_event_kind::gap: return "gap";
    case client_event_kind::unsubscribed: return "unsubscribed";
    case client_event_kind::join: return "join";
    case client_event_kind::leave: return "leave";
    case client_event_kind::reply: return "reply";
    case client_event_kind::request_failed: return "request_failed";
    case client_event_kind::error: return "error";
  }
  return "?";
}

void write_action(std::string& o, const client_action& a) {
  o += '{';
  out_writer w{o};
  w.str("k", action_name(a.kind));
  w.num("gen", a.generation);
  switch (a.kind) {
    case client_action_kind::open_transport:
      w.str("transport", transport_name(a.transport));
      w.str("channels", a.channels);
      w.str("cursor", a.cursor);
      w.str("token", a.token);
      break;
    case client_action_kind::send:
      w.str("transport", transport_name(a.transport));
      w.str("text", a.text);
      break;
    case client_action_kind::poll:
      w.str("channels", a.channels);
      w.str("cursor", a.cursor);
      w.str("token", a.token);
      w.boolean("opening", a.opening);
      w.str("client", a.client);
      break;
    case client_action_kind::close_transport:
      break;
    case client_action_kind::fetch_token:
      w.num("code", static_cast<std::uint64_t>(a.reason));
      break;
  }
  o += '}';
}

void write_event(std::string& o, const client_event& e) {
  o += '{';
  out_writer w{o};
  w.str("k", event_name(e.kind));
  switch (e.kind) {
    case client_event_kind::state_changed:
      w.str("from", state_name(e.from));
      w.str("to", state_name(e.to));
      w.num("code", static_cast<std::uint64_t>(e.error_code));
      w.str("reason", e.reason);
      break;
    case client_event_kind::fallback:
      w.str("from", transport_name(e.from_transport));
      w.str("to", transport_name(e.to_transport));
      w.num("code", static_cast<std::uint64_t>(e.error_code));
      w.str("reason", e.reason);
      break;
    case client_event_kind::subscribed:
      w.str("channel", e.channel);
      w.pos(e.pos);
      if (e.recovered) w.boolean("recovered", *e.recovered);
      break;
    case client_event_kind::message:
      w.str("channel", e.channel);
      w.pos(e.pos);
      w.raw("data", e.data, "null");
      break;
    case client_event_kind::gap:
      w.str("channel", e.channel);
      w.pos(e.pos);
      w.str("reason", e.reason);
      break;
    case client_event_kind::unsubscribed:
      w.str("channel", e.channel);
      w.num("code", static_cast<std::uint64_t>(e.error_code));
      w.str("reason", e.reason);
      break;
    case client_event_kind::join:
    case client_event_kind::leave:
      w.str("channel", e.channel);
      w.raw("member", e.data, "{}");
      break;
    case client_event_kind::reply: {
      w.num("id", e.request_id);
      std::string frame_text;
      encode_frame(e.reply, frame_text);
      while (!frame_text.empty() && frame_text.back() == '\n') frame_text.pop_back();
      w.raw("frame", frame_text, "{}");
      break;
    }
    case client_event_kind::request_failed:
      w.num("id", e.request_id);
      w.num("code", static_cast<std::uint64_t>(e.error_code));
      w.str("reason", e.reason);
      break;
    case client_event_kind::error:
      w.str("channel", e.channel);
      w.num("code", static_cast<std::uint64_t>(e.error_code));
      w.str("reason", e.reason);
      break;
  }
  o += '}';
}

}  // namespace

extern "C" {

// The options above, in client_options' order. Returns 0 when one is malformed.
std::uintptr_t pw_create(const char* transports, int transports_len, const char* token, int token_len,
                         int token_refresh, double backoff_min_ms, double backoff_max_ms, double stable_after_ms,
                         double handshake_timeout_ms, double sse_first_event_ms, double heartbeat_grace_ms,
                         double poll_hold_ms, double request_timeout_ms, double seed) {
  client_options o;
  o.token = std::string(span(token, token_len));
  o.token_refresh = token_refresh != 0;
  if (!parse_transports(span(transports, transports_len), o) || !set_ms(backoff_min_ms, o.backoff_min_ms) ||
      !set_ms(backoff_max_ms, o.backoff_max_ms) || !set_ms(stable_after_ms, o.stable_after_ms) ||
      !set_ms(handshake_timeout_ms, o.handshake_timeout_ms) || !set_ms(sse_first_event_ms, o.sse_first_event_ms) ||
      !set_ms(heartbeat_grace_ms, o.heartbeat_grace_ms) || !set_ms(poll_hold_ms, o.poll_hold_ms) ||
      !set_ms(request_timeout_ms, o.request_timeout_ms) || !set_ms(seed, o.seed))
    return 0;
  return reinterpret_cast<std::uintptr_t>(new instance(std::move(o)));
}

void pw_destroy(std::uintptr_t h) { delete as_instance(h); }

void pw_connect(std::uintptr_t h, double now) { as_instance(h)->machine.connect(to_u64(now)); }
void pw_close(std::uintptr_t h, double now) { as_instance(h)->machine.close(to_u64(now)); }

void pw_set_token(std::uintptr_t h, const char* p, int n) {
  as_instance(h)->machine.set_token(std::string(span(p, n)));
}

// `epoch_len` 0: no resume position. Returns 1 when the channel was added.
int pw_subscribe(std::uintptr_t h, const char* ch, int ch_len, const char* epoch, int epoch_len,
                 double offset, double now) {
  std::optional<position> since;
  if (epoch_len > 0) since = position{std::string(span(epoch, epoch_len)), to_u64(offset)};
  return as_instance(h)->machine.subscribe(span(ch, ch_len), since, to_u64(now)) ? 1 : 0;
}

int pw_unsubscribe(std::uintptr_t h, const char* ch, int ch_len, double now) {
  return as_instance(h)->machine.unsubscribe(span(ch, ch_len), to_u64(now)) ? 1 : 0;
}

// Request functions return the request id (0: refused before sending, e.g. a bad channel).
double pw_publish(std::uintptr_t h, const char* ch, int ch_len, const char* data, int data_len,
                  double now) {
  return static_cast<double>(
      as_instance(h)->machine.publish(span(ch, ch_len), span(data, data_len), to_u64(now)));
}

double pw_history(std::uintptr_t h, const char* ch, int ch_len, double limit, double now) {
  return static_cast<double>(as_instance(h)->machine.history(span(ch, ch_len), to_u64(limit), to_u64(now)));
}

double pw_presence(std::uintptr_t h, const char* ch, int ch_len, double now) {
  return static_cast<double>(as_instance(h)->machine.presence(span(ch, ch_len), to_u64(now)));
}

double pw_drop(std::uintptr_t h, double now) {
  return static_cast<double>(as_instance(h)->machine.drop(to_u64(now)));
}

void pw_transport_open(std::uintptr_t h, double gen, double now) {
  as_instance(h)->machine.handle_transport_open(static_cast<std::uint32_t>(gen), to_u64(now));
}

void pw_transport_data(std::uintptr_t h, double gen, const char* p, int n, double now) {
  as_instance(h)->machine.handle_transport_data(static_cast<std::uint32_t>(gen), span(p, n), to_u64(now));
}

void pw_transport_closed(std::uintptr_t h, double gen, int close_code, const char* reason, int reason_len,
                         double now) {
  as_instance(h)->machine.handle_transport_closed(static_cast<std::uint32_t>(gen),
                                                  static_cast<code>(close_code), span(reason, reason_len),
                                                  to_u64(now));
}

void pw_timeout(std::uintptr_t h, double now) { as_instance(h)->machine.handle_timeout(to_u64(now)); }
void pw_network_check(std::uintptr_t h, double now) {
  as_instance(h)->machine.handle_network_check(to_u64(now));
}

// The answer to a `token` action (its `gen` is the request id).
void pw_token(std::uintptr_t h, double request, const char* p, int n, double now) {
  as_instance(h)->machine.handle_token(static_cast<std::uint32_t>(request), std::string(span(p, n)), to_u64(now));
}
void pw_token_failed(std::uintptr_t h, double request, const char* reason, int reason_len, double now) {
  as_instance(h)->machine.handle_token_failed(static_cast<std::uint32_t>(request), span(reason, reason_len),
                                              to_u64(now));
}

// Serializes everything pending into the handle's text and returns its length; pw_out() gives the
// pointer. Shape: {"s":state,"t":transport,"c":client id,"d":deadline|null,"a":[actions],"e":[events]}.
int pw_drain(std::uintptr_t h) {
  instance& in = *as_instance(h);
  client_machine& m = in.machine;
  std::string& o = in.out;
  o.clear();
  o += "{\"s\":\"";
  o += state_name(m.state());
  o += "\",\"t\":\"";
  o += transport_name(m.transport());
  o += "\",\"c\":";
  append_json_string(o, m.client_id());
  o += ",\"a\":[";
  bool first = true;
  while (auto a = m.poll_action()) {
    if (!first) o += ',';
    first = false;
    write_action(o, *a);
  }
  o += "],\"e\":[";
  first = true;
  while (auto e = m.poll_event()) {
    if (!first) o += ',';
    first = false;
    write_event(o, *e);
  }
  // After the drains: next_deadline() may depend on what they consumed.
  o += "],\"d\":";
  if (auto d = m.next_deadline()) append_uint(o, *d);
  else o += "null";
  o += '}';
  return static_cast<int>(o.size());
}

const char* pw_out(std::uintptr_t h) { return as_instance(h)->out.data(); }

}  // extern "C"

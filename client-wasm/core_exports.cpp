// The C boundary between the JS driver and the client machine (protocol/client_machine.hpp).
//
// Kept deliberately narrow (STYLE.md, "Client"): a handful of extern "C" functions that take numbers
// and UTF-8 byte spans (pointer + length into the wasm heap), and one way out: pw_drain() writes
// every pending action and event, the state, the transport and the next deadline as ONE small JSON
// array that the JS decodes with a single JSON.parse. Application payloads (`data`, join/leave
// members, replies' publications and members) are raw JSON already validated by the codec, so they
// are embedded as they are and that one parse decodes them too.
//
// Numbers cross as doubles (exact up to 2^53, like every integer in the protocol) so the JS side
// needs no BigInt and no i64 legalisation. Nothing here throws: the core is built -fno-exceptions and
// errors are values (0 / false returns, request_failed events).
//
// Ownership: pw_create() returns an opaque handle (0 on bad options) that pw_destroy() frees. The
// text that pw_drain() writes lives in the handle until the next pw_drain() on it.
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/client_machine.hpp"
#include "protocol/json_scan.hpp"

using namespace pushwire::protocol;

namespace {

struct instance {
  explicit instance(client_options o) : machine(std::move(o)) {}
  client_machine machine;
  std::string out;   // the drain text
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

// The drain text (read by client-wasm/src/core.mjs): one flat JSON array of values. Every action,
// and every event, writes the same fields in the same order whatever its kind (unused ones empty or
// 0), so the order here and the field lists in core.mjs are all the two sides share: no keys, no
// switch per kind. Each value is followed by a comma; pw_drain() turns the last one into the `]`.
struct drain_writer {
  std::string& o;
  void num(std::uint64_t v) {
    append_uint(o, v);
    o += ',';
  }
  void str(std::string_view s) {
    append_json_string(o, s);
    o += ',';
  }
  void flag(bool v) { raw(v ? "true" : "false"); }
  // Raw JSON already validated by the codec; `null` when absent (the JS then leaves the field out).
  void raw(std::string_view v) {
    o += v.empty() ? "null" : v;
    o += ',';
  }
};

// Fields: gen, transport, channels, cursor, token, opening, client, text, code.
void write_action(drain_writer& w, const client_action& a) {
  w.num(static_cast<std::uint64_t>(a.kind));
  w.num(a.generation);
  w.str(transport_name(a.transport));
  w.str(a.channels);
  w.str(a.cursor);
  w.str(a.token);
  w.flag(a.opening);
  w.str(a.client);
  w.str(a.text);
  w.num(static_cast<std::uint64_t>(a.reason));
}

// Fields: from, to, code, reason, channel, epoch, offset, recovered (null when absent), data (raw
// JSON: the payload, the member, or a reply's publications or members), id.
void write_event(drain_writer& w, const client_event& e) {
  const bool fallback = e.kind == client_event_kind::fallback;
  w.num(static_cast<std::uint64_t>(e.kind) + 5);   // after the five action kinds
  w.str(fallback ? transport_name(e.from_transport) : state_name(e.from));
  w.str(fallback ? transport_name(e.to_transport) : state_name(e.to));
  w.num(static_cast<std::uint64_t>(e.error_code));
  w.str(e.reason);
  w.str(e.channel);
  w.str(e.pos.epoch);
  w.num(e.pos.offset);
  if (e.recovered) w.flag(*e.recovered);
  else w.raw({});
  w.raw(e.data);
  w.num(e.request_id);
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

// Writes everything pending into the handle's drain text (above) and returns its length; pw_out()
// gives the pointer. Values: state, transport, client id, then one record per action (its kind 0-4
// first) and per event (its kind + 5 first), and last the next deadline (null: none). Valid until
// the next pw_drain() on the handle.
int pw_drain(std::uintptr_t h) {
  instance& in = *as_instance(h);
  client_machine& m = in.machine;
  std::string& o = in.out;
  o.assign(1, '[');
  drain_writer w{o};
  w.str(state_name(m.state()));
  w.str(transport_name(m.transport()));
  w.str(m.client_id());
  m.drain_actions([&](const client_action& a) { write_action(w, a); });
  m.drain_events([&](const client_event& e) { write_event(w, e); });
  // Last, after the drains: next_deadline() may depend on what they consumed.
  if (auto d = m.next_deadline()) w.num(*d);
  else w.raw({});
  o.back() = ']';
  return static_cast<int>(o.size());
}

const char* pw_out(std::uintptr_t h) { return as_instance(h)->out.data(); }

}  // extern "C"

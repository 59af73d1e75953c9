#include "protocol/frame_codec.hpp"

#include <vector>

#include "protocol/json_scan.hpp"

namespace pushwire::protocol {
namespace {

constexpr std::string_view command_names[] = {"connect", "subscribe", "unsubscribe", "publish",
                                              "history", "presence", "drop"};
constexpr std::string_view frame_names[] = {"connected", "subscribed", "unsubscribed", "published",
                                            "history",   "presence",   "message",      "join",
                                            "leave",     "ping",       "error",        "disconnect"};

// Typed access to the scanned members of one envelope; every getter reports a precise reason.
class fields {
 public:
  fields(const std::vector<json_member>& m, decode_error& err) : m_(m), err_(err) {}

  const json_member* find(std::string_view key) const { return find_member(m_, key); }
  bool fail(std::string_view key, std::string_view what) { return field_error(err_, key, what); }
  bool require(std::string_view key) { return find(key) ? true : fail(key, "is required"); }

  bool str(std::string_view key, std::string& out) {
    auto* m = find(key);
    if (!m) return true;
    if (m->kind != json_kind::string) return fail(key, "must be a string");
    out = decode_string(m->raw);
    return true;
  }
  bool uint(std::string_view key, std::uint64_t& out) {
    auto* m = find(key);
    if (!m) return true;
    auto v = m->kind == json_kind::number ? parse_uint(m->raw) : std::nullopt;
    if (!v) return fail(key, "must be an integer from 0 to 2^53-1");
    out = *v;
    return true;
  }
  bool boolean(std::string_view key, bool& out) {
    auto* m = find(key);
    if (!m) return true;
    if (m->kind != json_kind::boolean) return fail(key, "must be true or false");
    out = m->raw == "true";
    return true;
  }
  bool raw(std::string_view key, std::string& out, json_kind want) {
    auto* m = find(key);
    if (!m) return true;
    if (m->kind != want) return fail(key, want == json_kind::array ? "must be an array" : "must be an object");
    out.assign(m->raw);
    return true;
  }
  bool channel(std::string& out) {
    if (!require("channel") || !str("channel", out)) return false;
    if (out.empty()) return fail("channel", "must not be empty");
    return true;
  }
  // `epoch` + `offset` members of this envelope.
  bool flat_position(position& out) {
    if (!require("epoch") || !require("offset") || !str("epoch", out.epoch) || !uint("offset", out.offset))
      return false;
    return valid_epoch(out.epoch) ? true : fail("epoch", "must be 1-16 of [a-z0-9]");
  }
  // A nested {"epoch": ..., "offset": ...} object.
  bool nested_position(std::string_view key, std::optional<position>& out) {
    auto* m = find(key);
    if (!m) return true;
    if (m->kind != json_kind::object) return fail(key, "must be an object with epoch and offset");
    std::vector<json_member> inner;
    scan_error serr;
    scan_object(m->raw, inner, serr);  // already validated as part of the whole text
    decode_error inner_err;
    fields f(inner, inner_err);
    position p;
    if (!f.flat_position(p)) return fail(key, inner_err.reason);
    out = std::move(p);
    return true;
  }

 private:
  const std::vector<json_member>& m_;
  decode_error& err_;
};

template <std::size_t N>
bool kind_from_name(const fields& f, std::string_view key, const std::string_view (&names)[N], std::size_t& out) {
  auto* m = f.find(key);
  if (!m || m->kind != json_kind::string) return false;
  std::string name = decode_string(m->raw);
  for (std::size_t i = 0; i < N; ++i)
    if (names[i] == name) { out = i; return true; }
  return false;
}

// Small writer for one envelope: {"k":v,...}\n
class writer {
 public:
  explicit writer(std::string& out) : out_(out) { out_ += '{'; }
  void key(std::string_view k) {
    if (!first_) out_ += ',';
    first_ = false;
    out_ += '"';
    out_ += k;
    out_ += "\":";
  }
  void str(std::string_view k, std::string_view v) { key(k); append_json_string(out_, v); }
  void str_if(std::string_view k, std::string_view v) { if (!v.empty()) str(k, v); }
  void uint(std::string_view k, std::uint64_t v) { key(k); append_uint(out_, v); }
  void uint_if(std::string_view k, std::uint64_t v) { if (v) uint(k, v); }
  void boolean(std::string_view k, bool v) { key(k); out_ += v ? "true" : "false"; }
  // Raw JSON may hold CR/LF only as whitespace (never inside a string), and a raw newline would
  // split a newline-delimited batch, so both become spaces.
  void raw(std::string_view k, std::string_view v, std::string_view empty_value) {
    key(k);
    std::size_t start = out_.size();
    out_ += v.empty() ? empty_value : v;
    for (std::size_t i = start; i < out_.size(); ++i)
      if (out_[i] == '\n' || out_[i] == '\r') out_[i] = ' ';
  }
  void flat_position(const position& p) { str("epoch", p.epoch); uint("offset", p.offset); }
  void nested_position(std::string_view k, const position& p) {
    key(k);
    writer w(out_);
    w.flat_position(p);
    out_ += '}';
  }
  void finish() { out_ += "}\n"; }

 private:
  std::string& out_;
  bool first_ = true;
};

}  // namespace

bool scan_envelope(std::string_view text, std::vector<json_member>& members, decode_error& err,
                   const codec_limits& limits) {
  if (text.size() > limits.max_frame_bytes) {
    err.error_code = code::message_too_large;
    err.reason = "frame is larger than ";
    append_uint(err.reason, limits.max_frame_bytes);
    err.reason += " bytes";
    return false;
  }
  scan_error serr;
  if (!scan_object(text, members, serr)) {
    err.error_code = code::bad_frame;
    err.reason = "malformed JSON at byte ";
    append_uint(err.reason, serr.at);
    err.reason += ": ";
    err.reason += serr.what;
    return false;
  }
  return true;
}

const json_member* find_member(const std::vector<json_member>& members, std::string_view key) {
  for (auto& m : members)
    if (m.key == key) return &m;
  return nullptr;
}

bool field_error(decode_error& err, std::string_view key, std::string_view what) {
  err.error_code = code::bad_frame;
  err.reason = "field '";
  err.reason += key;
  err.reason += "' ";
  err.reason += what;
  return false;
}

std::string_view command_name(command_kind k) { return command_names[static_cast<std::size_t>(k)]; }
std::string_view frame_name(frame_kind k) { return frame_names[static_cast<std::size_t>(k)]; }

bool decode_command(std::string_view text, command& out, decode_error& err, const codec_limits& limits) {
  std::vector<json_member> members;
  if (!scan_envelope(text, members, err, limits)) return false;
  fields f(members, err);
  out = command{};
  std::size_t kind;
  if (!f.require("cmd")) return false;
  if (!kind_from_name(f, "cmd", command_names, kind)) {
    if (f.find("cmd")->kind != json_kind::string) return f.fail("cmd", "must be a string");
    err.error_code = code::unknown_command;
    err.reason = "unknown command " + std::string(f.find("cmd")->raw);
    return false;
  }
  out.kind = static_cast<command_kind>(kind);
  if (!f.uint("id", out.id)) return false;
  switch (out.kind) {
    case command_kind::connect:
      return f.str("token", out.token);
    case command_kind::subscribe:
      return f.channel(out.channel) && f.nested_position("since", out.since);
    case command_kind::unsubscribe:
    case command_kind::presence:
      return f.channel(out.channel);
    case command_kind::publish: {
      if (!f.channel(out.channel) || !f.require("data")) return false;
      out.data.assign(f.find("data")->raw);
      return true;
    }
    case command_kind::history:
      return f.channel(out.channel) && f.uint("limit", out.limit) && f.nested_position("since", out.since);
    case command_kind::drop:
      return true;
  }
  return false;
}

void encode_command(const command& c, std::string& out) {
  writer w(out);
  w.str("cmd", command_name(c.kind));
  w.uint_if("id", c.id);
  switch (c.kind) {
    case command_kind::connect:
      w.str_if("token", c.token);
      break;
    case command_kind::subscribe:
      w.str("channel", c.channel);
      if (c.since) w.nested_position("since", *c.since);
      break;
    case command_kind::unsubscribe:
    case command_kind::presence:
      w.str("channel", c.channel);
      break;
    case command_kind::publish:
      w.str("channel", c.channel);
      w.raw("data", c.data, "null");
      break;
    case command_kind::history:
      w.str("channel", c.channel);
      w.uint_if("limit", c.limit);
      if (c.since) w.nested_position("since", *c.since);
      break;
    case command_kind::drop:
      break;
  }
  w.finish();
}

bool decode_frame(std::string_view text, frame& out, decode_error& err, const codec_limits& limits) {
  std::vector<json_member> members;
  if (!scan_envelope(text, members, err, limits)) return false;
  fields f(members, err);
  out = frame{};
  std::size_t kind;
  if (!f.require("type")) return false;
  if (!kind_from_name(f, "type", frame_names, kind)) return f.fail("type", "is not a known frame type");
  out.kind = static_cast<frame_kind>(kind);
  if (!f.uint("id", out.id)) return false;
  switch (out.kind) {
    case frame_kind::connected:
      return f.require("client") && f.str("client", out.client) && f.str("user", out.user) &&
             f.uint("ping", out.ping_ms);
    case frame_kind::subscribed: {
      bool recovered = false;
      if (!f.channel(out.channel) || !f.flat_position(out.pos) || !f.boolean("recovered", recovered)) return false;
      if (f.find("recovered")) out.recovered = recovered;
      return true;
    }
    case frame_kind::unsubscribed:
      return f.channel(out.channel);
    case frame_kind::published:
      return f.channel(out.channel) && f.flat_position(out.pos);
    case frame_kind::message:
      if (!f.channel(out.channel) || !f.flat_position(out.pos) || !f.require("data")) return false;
      out.data.assign(f.find("data")->raw);
      return true;
    case frame_kind::history:
      return f.channel(out.channel) && f.flat_position(out.pos) && f.require("publications") &&
             f.raw("publications", out.data, json_kind::array);
    case frame_kind::presence:
      return f.channel(out.channel) && f.require("members") && f.raw("members", out.data, json_kind::array);
    case frame_kind::join:
    case frame_kind::leave:
      return f.channel(out.channel) && f.require("member") && f.raw("member", out.data, json_kind::object);
    case frame_kind::ping:
      return true;
    case frame_kind::error:
    case frame_kind::disconnect: {
      std::uint64_t c = 0;
      if (!f.require("code") || !f.uint("code", c) || !f.str("reason", out.reason)) return false;
      if (c > 0xFFFF) return f.fail("code", "is out of range");
      out.error_code = static_cast<code>(c);
      return f.boolean("reconnect", out.reconnect) && f.uint("after", out.after_ms);
    }
  }
  return false;
}

void encode_frame(const frame& fr, std::string& out) {
  writer w(out);
  w.str("type", frame_name(fr.kind));
  w.uint_if("id", fr.id);
  switch (fr.kind) {
    case frame_kind::connected:
      w.str("client", fr.client);
      w.str_if("user", fr.user);
      w.uint("ping", fr.ping_ms);
      w.uint("v", protocol_version);
      break;
    case frame_kind::subscribed:
      w.str("channel", fr.channel);
      w.flat_position(fr.pos);
      if (fr.recovered) w.boolean("recovered", *fr.recovered);
      break;
    case frame_kind::unsubscribed:
      w.str("channel", fr.channel);
      break;
    case frame_kind::published:
      w.str("channel", fr.channel);
      w.flat_position(fr.pos);
      break;
    case frame_kind::message:
      w.str("channel", fr.channel);
      w.flat_position(fr.pos);
      w.raw("data", fr.data, "null");
      break;
    case frame_kind::history:
      w.str("channel", fr.channel);
      w.flat_position(fr.pos);
      w.raw("publications", fr.data, "[]");
      break;
    case frame_kind::presence:
      w.str("channel", fr.channel);
      w.raw("members", fr.data, "[]");
      break;
    case frame_kind::join:
    case frame_kind::leave:
      w.str("channel", fr.channel);
      w.raw("member", fr.data, "{}");
      break;
    case frame_kind::ping:
      break;
    case frame_kind::error:
      w.uint("code", static_cast<std::uint64_t>(fr.error_code));
      w.str("reason", fr.reason);
      break;
    case frame_kind::disconnect:
      w.uint("code", static_cast<std::uint64_t>(fr.error_code));
      w.str("reason", fr.reason);
      w.boolean("reconnect", fr.reconnect);
      w.uint_if("after", fr.after_ms);
      break;
  }
  w.finish();
}

void encode_message(std::string_view channel, const position& pos, std::string_view data, std::string& out) {
  out.reserve(out.size() + data.size() + channel.size() + pos.epoch.size() + 64);
  writer w(out);
  w.str("type", frame_name(frame_kind::message));
  w.str("channel", channel);
  w.flat_position(pos);
  w.raw("data", data, "null");
  w.finish();
}

}  // namespace pushwire::protocol

#include "protocol/client_frame_decoder.hpp"

#include <iterator>
#include <vector>

#include "protocol/json_scan.hpp"

namespace pushwire::protocol {
namespace {

// The envelope fields a server frame may carry; a step names one by its index here.
enum field : std::uint8_t {
  f_id, f_client, f_user, f_ping, f_channel, f_epoch, f_offset, f_recovered,
  f_data, f_publications, f_members, f_member, f_code, f_reason, f_reconnect, f_after
};
constexpr std::string_view field_names[] = {"id",   "client",       "user",    "ping",   "channel", "epoch",
                                            "offset", "recovered",  "data",    "publications", "members",
                                            "member", "code",       "reason",  "reconnect", "after"};

// A step is check << 4 | field.
enum check : std::uint8_t {
  required,   // the field must be present
  string,     // a string, if present (decoded)
  uint,       // an integer 0..2^53-1, if present
  boolean,    // true or false, if present
  any,        // raw JSON of any kind into `data` (required before)
  array,      // a raw array into `data`, if present
  object,     // a raw object into `data`, if present
  non_empty,  // the string field decoded before is not empty
  epoch_ok,   // the epoch decoded before is valid
  code_ok,    // the code decoded before fits 16 bits
};
constexpr char step(check c, field f) { return static_cast<char>(c << 4 | f); }

// decode_frame's checks per kind, in its order (it reads `id` first for every kind).
#define PW_CHANNEL step(required, f_channel), step(string, f_channel), step(non_empty, f_channel)
#define PW_POSITION step(required, f_epoch), step(required, f_offset), step(string, f_epoch), \
                    step(uint, f_offset), step(epoch_ok, f_epoch)
constexpr char connected_steps[] = {step(required, f_client), step(string, f_client), step(string, f_user),
                                    step(uint, f_ping), 0};
constexpr char subscribed_steps[] = {PW_CHANNEL, PW_POSITION, step(boolean, f_recovered), 0};
constexpr char unsubscribed_steps[] = {PW_CHANNEL, 0};
constexpr char published_steps[] = {PW_CHANNEL, PW_POSITION, 0};
constexpr char message_steps[] = {PW_CHANNEL, PW_POSITION, step(required, f_data), step(any, f_data), 0};
constexpr char history_steps[] = {PW_CHANNEL, PW_POSITION, step(required, f_publications),
                                  step(array, f_publications), 0};
constexpr char presence_steps[] = {PW_CHANNEL, step(required, f_members), step(array, f_members), 0};
constexpr char member_steps[] = {PW_CHANNEL, step(required, f_member), step(object, f_member), 0};
constexpr char ping_steps[] = {0};
constexpr char error_steps[] = {step(required, f_code), step(uint, f_code), step(string, f_reason),
                                step(code_ok, f_code), step(boolean, f_reconnect), step(uint, f_after), 0};
#undef PW_CHANNEL
#undef PW_POSITION
// Indexed by frame_kind. Step 0 (required id) never occurs in a program, so it ends one.
constexpr const char* programs[] = {connected_steps, subscribed_steps, unsubscribed_steps, published_steps,
                                    history_steps,   presence_steps,   message_steps,      member_steps,
                                    member_steps,    ping_steps,       error_steps,        error_steps};

std::string* string_field(frame& out, field f) {
  switch (f) {
    case f_client: return &out.client;
    case f_user: return &out.user;
    case f_channel: return &out.channel;
    case f_epoch: return &out.pos.epoch;
    default: return &out.reason;
  }
}

std::uint64_t* uint_field(frame& out, field f, std::uint64_t& code_value) {
  switch (f) {
    case f_id: return &out.id;
    case f_ping: return &out.ping_ms;
    case f_offset: return &out.pos.offset;
    case f_code: return &code_value;
    default: return &out.after_ms;
  }
}

// One step; false (with err set) when the frame fails it.
bool run(char s, const std::vector<json_member>& members, frame& out, std::uint64_t& code_value,
         decode_error& err) {
  auto c = static_cast<check>(static_cast<unsigned char>(s) >> 4);
  auto f = static_cast<field>(s & 15);
  std::string_view key = field_names[f];
  const json_member* m = find_member(members, key);
  switch (c) {
    case non_empty: return !out.channel.empty() || field_error(err, key, "must not be empty");
    case epoch_ok: return valid_epoch(out.pos.epoch) || field_error(err, key, "must be 1-16 of [a-z0-9]");
    case code_ok:
      if (code_value > 0xFFFF) return field_error(err, key, "is out of range");
      out.error_code = static_cast<code>(code_value);
      return true;
    case required: return m || field_error(err, key, "is required");
    default: break;
  }
  if (!m) return true;
  switch (c) {
    case string:
      if (m->kind != json_kind::string) return field_error(err, key, "must be a string");
      *string_field(out, f) = decode_string(m->raw);
      return true;
    case uint: {
      auto v = m->kind == json_kind::number ? parse_uint(m->raw) : std::nullopt;
      if (!v) return field_error(err, key, "must be an integer from 0 to 2^53-1");
      *uint_field(out, f, code_value) = *v;
      return true;
    }
    case boolean:
      if (m->kind != json_kind::boolean) return field_error(err, key, "must be true or false");
      if (f == f_recovered) out.recovered = m->raw == "true";
      else out.reconnect = m->raw == "true";
      return true;
    case array:
      if (m->kind != json_kind::array) return field_error(err, key, "must be an array");
      break;
    case object:
      if (m->kind != json_kind::object) return field_error(err, key, "must be an object");
      break;
    default: break;   // any
  }
  out.data.assign(m->raw);
  return true;
}

}  // namespace

bool decode_server_frame(std::string_view text, frame& out, decode_error& err) {
  std::vector<json_member> members;
  if (!scan_envelope(text, members, err, {})) return false;
  out = frame{};
  const json_member* type = find_member(members, "type");
  if (!type) return field_error(err, "type", "is required");
  std::size_t kind = std::size(programs);
  if (type->kind == json_kind::string) {
    std::string name = decode_string(type->raw);
    for (kind = 0; kind < std::size(programs) && frame_name(static_cast<frame_kind>(kind)) != name; ++kind) {
    }
  }
  if (kind == std::size(programs)) return field_error(err, "type", "is not a known frame type");
  out.kind = static_cast<frame_kind>(kind);
  std::uint64_t code_value = 0;
  if (!run(step(uint, f_id), members, out, code_value, err)) return false;
  for (const char* s = programs[kind]; *s; ++s)
    if (!run(*s, members, out, code_value, err)) return false;
  return true;
}

}  // namespace pushwire::protocol

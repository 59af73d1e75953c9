// What the server writes of RFC 6455's framing (the read side is protocol/ws_frame_reader.hpp): the
// header of a data message, and whole control frames (ping, pong, close). Server frames are never
// masked (§5.1). Every byte goes out through stream_conn's single write path.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pushwire::server {

// The header of one unmasked, unfragmented text message of `payload` bytes (RFC 6455 §5.2), written
// to `out` (room for 10 bytes); returns its length. The write paths frame their messages themselves
// and send them with the shared payload buffers in one gather write.
inline std::size_t ws_text_header(unsigned char* out, std::size_t payload) {
  std::size_t h = 0;
  out[h++] = 0x81;   // FIN + text
  if (payload < 126) {
    out[h++] = static_cast<unsigned char>(payload);
  } else if (payload < 65536) {
    out[h++] = 126;
    for (int shift = 8; shift >= 0; shift -= 8) out[h++] = static_cast<unsigned char>(payload >> shift);
  } else {
    out[h++] = 127;
    for (int shift = 56; shift >= 0; shift -= 8) out[h++] = static_cast<unsigned char>(payload >> shift);
  }
  return h;
}

inline constexpr std::uint8_t ws_op_close = 0x8, ws_op_ping = 0x9, ws_op_pong = 0xa;

// Appends a control frame; `payload` is at most 125 bytes (the caller's precondition).
inline void append_ws_control(std::string& out, std::uint8_t op, std::string_view payload) {
  out += static_cast<char>(0x80 | op);
  out += static_cast<char>(payload.size());
  out += payload;
}

// Appends a close frame with `code` and `reason` (at most 123 bytes, whole UTF-8 characters).
inline void append_ws_close(std::string& out, std::uint16_t code, std::string_view reason) {
  char c[2] = {static_cast<char>(code >> 8), static_cast<char>(code & 0xff)};
  std::string payload(c, 2);
  payload += reason;
  append_ws_control(out, ws_op_close, payload);
}

}  // namespace pushwire::server

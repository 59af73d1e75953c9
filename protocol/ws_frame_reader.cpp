#include "protocol/ws_frame_reader.hpp"

#include <algorithm>
#include <cstring>

namespace pushwire::protocol {

namespace {

constexpr std::uint8_t op_continuation = 0x0, op_text = 0x1, op_binary = 0x2, op_close = 0x8, op_ping = 0x9,
                       op_pong = 0xa;

// One byte of a UTF-8 stream (see utf8_need_ in the header). False: the stream can no longer be
// valid, whatever follows.
inline bool utf8_step(unsigned char c, std::uint8_t& need, std::uint8_t& lo, std::uint8_t& hi) {
  if (need) {
    if (c < lo || c > hi) return false;
    --need;
    lo = 0x80;
    hi = 0xbf;
    return true;
  }
  if (c < 0x80) return true;
  if (c >= 0xc2 && c <= 0xdf) {
    need = 1;
  } else if (c >= 0xe0 && c <= 0xef) {
    need = 2;
    if (c == 0xe0) lo = 0xa0;   // no overlong 3-byte forms
    if (c == 0xed) hi = 0x9f;   // no UTF-16 surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    need = 3;
    if (c == 0xf0) lo = 0x90;   // no overlong 4-byte forms
    if (c == 0xf4) hi = 0x8f;   // nothing above U+10FFFF
  } else {
    return false;
  }
  return true;
}

bool utf8_valid(std::string_view s) {
  std::uint8_t need = 0, lo = 0x80, hi = 0xbf;
  for (char c : s)
    if (!utf8_step(static_cast<unsigned char>(c), need, lo, hi)) return false;
  return need == 0;
}

}  // namespace

bool ws_close_code_valid(std::uint16_t code) {
  if (code < 1000 || code >= 5000) return false;
  if (code >= 3000) return true;   // registered (3000-3999) and private (4000-4999)
  switch (code) {
    case 1000: case 1001: case 1002: case 1003:
    case 1007: case 1008: case 1009: case 1010: case 1011: case 1012: case 1013:
      return true;
    default:   // 1004-1006 and 1015 are reserved, never sent; 1014 and 1016-2999 unassigned
      return false;
  }
}

ws_event ws_frame_reader::fail(std::uint16_t code) {
  state_ = state::done;
  msg_size_ = 0;
  trim_ = true;
  ws_event e;
  e.kind = ws_event_kind::fail;
  e.code = code;
  return e;
}

std::size_t ws_frame_reader::header_size() const {
  std::uint8_t len7 = hdr_[1] & 0x7f;
  return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;   // every client frame is masked (checked)
}

ws_event ws_frame_reader::check_first_two() {
  bool fin = hdr_[0] & 0x80, rsv = hdr_[0] & 0x70, masked = hdr_[1] & 0x80;
  std::uint8_t op = hdr_[0] & 0x0f, len7 = hdr_[1] & 0x7f;
  switch (op) {
    case op_text:
    case op_binary:
      if (in_message_) return fail(ws_protocol_error);   // a new message inside a fragmented one
      break;
    case op_continuation:
      if (!in_message_) return fail(ws_protocol_error);  // nothing to continue
      break;
    case op_close:
    case op_ping:
    case op_pong:
      if (!fin || len7 > 125) return fail(ws_protocol_error);   // control frames: whole and short
      break;
    default:
      return fail(ws_protocol_error);   // reserved opcodes 3-7, 11-15
  }
  if (rsv) return fail(ws_protocol_error);      // no extension is negotiated
  if (!masked) return fail(ws_protocol_error);  // RFC 6455 §5.1: a client masks every frame
  return {};
}

ws_event ws_frame_reader::start_frame() {
  std::uint8_t len7 = hdr_[1] & 0x7f;
  std::uint64_t len = len7;
  std::size_t p = 2;
  if (len7 == 126) {
    len = (std::uint64_t{hdr_[2]} << 8) | hdr_[3];
    if (len < 126) return fail(ws_protocol_error);   // not the shortest encoding
    p = 4;
  } else if (len7 == 127) {
    len = 0;
    for (std::size_t i = 2; i < 10; ++i) len = (len << 8) | hdr_[i];
    if (len < 65536) return fail(ws_protocol_error);
    p = 10;
  }
  std::memcpy(mask_, hdr_ + p, 4);
  mask_pos_ = 0;
  hdr_len_ = 0;
  fin_ = hdr_[0] & 0x80;
  op_ = hdr_[0] & 0x0f;
  if (op_ < op_close) {
    if (op_ != op_continuation) {
      msg_op_ = op_;
      msg_size_ = 0;
      utf8_need_ = 0;
      utf8_lo_ = 0x80;
      utf8_hi_ = 0xbf;
    }
    // From the header, before any of the payload is kept (msg_size_ <= max_message_ holds).
    if (len > max_message_ - msg_size_) return fail(ws_message_too_big);
    in_message_ = !fin_;
  } else {
    ctl_start_ = static_cast<std::uint32_t>(buf_.size());
  }
  remaining_ = static_cast<std::uint32_t>(len);   // <= max_message_ or 125: checked above
  state_ = state::payload;
  if (remaining_ == 0) return end_frame();
  return {};
}

ws_event ws_frame_reader::end_frame() {
  state_ = state::header;
  ws_event e;
  if (op_ < op_close) {
    if (!fin_) return e;
    if (msg_op_ == op_text && utf8_need_) return fail(ws_invalid_payload);   // ends inside a character
    e.kind = ws_event_kind::message;
    e.binary = msg_op_ == op_binary;
    e.data = buf_;
    msg_size_ = 0;
    trim_ = true;
    return e;
  }
  trim_ = true;
  std::string_view payload = std::string_view(buf_).substr(ctl_start_);
  if (op_ == op_ping || op_ == op_pong) {
    e.kind = op_ == op_ping ? ws_event_kind::ping : ws_event_kind::pong;
    e.data = payload;
    return e;
  }
  // close: empty, or a 2-byte code and a UTF-8 reason
  if (payload.size() == 1) return fail(ws_protocol_error);
  if (payload.size() >= 2) {
    e.code = static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]));
    if (!ws_close_code_valid(e.code)) return fail(ws_protocol_error);
    e.data = payload.substr(2);
    if (!utf8_valid(e.data)) return fail(ws_protocol_error);   // Beast's answer too (not 1007)
  }
  e.kind = ws_event_kind::close;
  state_ = state::done;
  msg_size_ = 0;
  return e;
}

ws_event ws_frame_reader::read(std::string_view& in) {
  if (trim_) {
    // The last event's view is no longer needed: keep only the message in progress, and no heap
    // buffer at all between messages.
    trim_ = false;
    if (msg_size_ == 0) std::string().swap(buf_);
    else buf_.resize(msg_size_);
  }
  while (!in.empty()) {
    if (state_ == state::done) {
      in = {};
      break;
    }
    if (state_ == state::header) {
      if (hdr_len_ < 2) {
        std::size_t k = std::min<std::size_t>(2 - hdr_len_, in.size());
        std::memcpy(hdr_ + hdr_len_, in.data(), k);
        hdr_len_ = static_cast<std::uint8_t>(hdr_len_ + k);
        in.remove_prefix(k);
        if (hdr_len_ < 2) break;
        if (auto e = check_first_two(); e.kind != ws_event_kind::need_more) return e;
      }
      std::size_t need = header_size();
      std::size_t k = std::min<std::size_t>(need - hdr_len_, in.size());
      std::memcpy(hdr_ + hdr_len_, in.data(), k);
      hdr_len_ = static_cast<std::uint8_t>(hdr_len_ + k);
      in.remove_prefix(k);
      if (hdr_len_ < need) break;
      if (auto e = start_frame(); e.kind != ws_event_kind::need_more) return e;
      continue;
    }
    // payload
    std::size_t k = std::min<std::size_t>(remaining_, in.size());
    std::size_t at = buf_.size();
    buf_.append(in.data(), k);
    in.remove_prefix(k);
    remaining_ -= static_cast<std::uint32_t>(k);
    auto* p = reinterpret_cast<unsigned char*>(buf_.data() + at);
    for (std::size_t i = 0; i < k; ++i) p[i] ^= mask_[(mask_pos_ + i) & 3];
    mask_pos_ = static_cast<std::uint8_t>((mask_pos_ + k) & 3);
    if (op_ < op_close) {
      msg_size_ += static_cast<std::uint32_t>(k);
      if (msg_op_ == op_text)
        for (std::size_t i = 0; i < k; ++i)
          if (!utf8_step(p[i], utf8_need_, utf8_lo_, utf8_hi_)) return fail(ws_invalid_payload);
    }
    if (remaining_ == 0)
      if (auto e = end_frame(); e.kind != ws_event_kind::need_more) return e;
  }
  return {};
}

}  // namespace pushwire::protocol

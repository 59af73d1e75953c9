// The server side of RFC 6455's framing, read direction: bytes from a client in, events out (a
// complete message; a ping and the pong it asks for; a pong; the peer's close; a protocol violation
// and the close code to answer it with). No socket, no clock: the server feeds what it read.
//
// Why our own and not Beast's websocket::stream: Beast's stream state is ~2.7 KB per connection and
// its pending composed read another ~0.6 KB, and an idle connection must cost < 2 KB in total
// (docs/performance.md, "Where the idle bytes go"). This reader is ~100 bytes while idle and holds
// no buffer between messages.
//
// Theory of operation. The reader is a switch on `state`:
//   header   collecting the 2-14 header bytes of the next frame into hdr_. The first two bytes are
//            checked as soon as they are in (opcode, reserved bits, fragmented or long control
//            frames, the mask bit), the extended length once it is complete (canonical encoding,
//            the message size limit: checked from the header, before a byte of payload is kept).
//   payload  copying the frame's remaining payload, unmasked, to the end of buf_. Text is checked
//            for UTF-8 byte by byte as it arrives (a message that can no longer be valid fails at
//            its first bad byte), control payloads (at most 125 bytes) are kept after the bytes of a
//            message in progress, so a ping between two fragments costs no second buffer.
//   done     after the peer's close or a violation: the rest of the input is ignored (the closing
//            handshake is the server's business, and RFC 6455 §5.5.1 says nothing follows a close).
// Each check happens at a fixed byte of the stream, so any split of the input gives the same events
// (tests/protocol/ws_frame_reader_test.cpp feeds byte by byte and in random splits).
//
// Bounded: buf_ holds at most one message (max_message bytes) plus one control payload, and it is
// released once the message has been delivered, so an idle reader owns no heap memory.
//
// Close codes follow what Boost.Beast's server stream answered before this reader replaced it
// (tests/server/hostile_test.cpp pins them): 1002 for every framing error and for a close frame with
// a bad code, a one-byte payload or a reason that is not UTF-8; 1007 for text that is not UTF-8;
// 1009 for a message over the limit. Binary messages are delivered as they are (flagged), as Beast
// did; the session decides what they mean. One deliberate difference: close codes 5000 and above
// (undefined by RFC 6455 §7.4.2) are refused with 1002; Beast accepted them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pushwire::protocol {

enum class ws_event_kind : std::uint8_t {
  need_more,   // the input is used up; feed more
  message,     // a complete text (or binary) message: data
  ping,        // send a pong with `data` as its payload
  pong,        // a pong (the answer to our probe, or unsolicited)
  close,       // the peer's close frame: code (0 when it gave none) and reason in data; done
  fail,        // the peer broke the protocol: close with `code`; done
};

struct ws_event {
  ws_event_kind kind = ws_event_kind::need_more;
  bool binary = false;         // message: a binary (opcode 2) message
  std::uint16_t code = 0;      // close: the peer's code; fail: the code to send
  std::string_view data;       // valid until the next read()
};

// The close codes this reader answers violations with.
inline constexpr std::uint16_t ws_protocol_error = 1002;
inline constexpr std::uint16_t ws_invalid_payload = 1007;
inline constexpr std::uint16_t ws_message_too_big = 1009;

// Whether `code` may appear in a close frame on the wire (RFC 6455 §7.4).
bool ws_close_code_valid(std::uint16_t code);

class ws_frame_reader {
 public:
  // `max_message`: the largest message (the sum of its fragments' payloads) accepted; one more byte
  // is answered with 1009. Held as 32 bits (4 GiB), which keeps the reader small.
  explicit ws_frame_reader(std::size_t max_message)
      : max_message_(static_cast<std::uint32_t>(max_message < 0xffffffffu ? max_message : 0xffffffffu)) {}

  // Consumes bytes from the front of `in` up to the next event and returns it, or consumes all of
  // `in` and returns need_more. Call again with what is left until need_more.
  ws_event read(std::string_view& in);

  // Whether a message (or a frame) is partly read: the server reads with a larger buffer then.
  bool mid_message() const { return state_ == state::payload || hdr_len_ || in_message_; }
  bool done() const { return state_ == state::done; }
  // Heap bytes held now (0 between messages).
  std::size_t buffered_capacity() const { return buf_.capacity() > 15 ? buf_.capacity() : 0; }

 private:
  enum class state : std::uint8_t { header, payload, done };

  ws_event fail(std::uint16_t code);
  ws_event check_first_two();     // hdr_[0..1]: everything they alone decide
  ws_event start_frame();         // the whole header is in
  ws_event end_frame();           // the frame's payload is in
  std::size_t header_size() const;

  // Every size below is at most max_message_ (a frame's length is checked against it before it is
  // kept), or 125 for a control frame.
  std::uint32_t max_message_;
  std::uint32_t remaining_ = 0;    // payload bytes of the current frame still to come
  std::uint32_t msg_size_ = 0;     // payload bytes of the message so far
  std::uint32_t ctl_start_ = 0;    // control frame: where its payload starts in buf_
  std::string buf_;                // the message so far, then (while a control frame is read) its payload
  std::uint8_t hdr_[14];
  std::uint8_t hdr_len_ = 0;
  std::uint8_t mask_[4] = {};
  std::uint8_t mask_pos_ = 0;
  std::uint8_t op_ = 0;            // the current frame's opcode
  std::uint8_t msg_op_ = 0;        // the message's opcode (text or binary)
  // UTF-8 of the text message in progress: continuation bytes still needed and the range the next
  // one must fall in (narrower after E0, ED, F0, F4: no overlongs, surrogates, or > U+10FFFF).
  std::uint8_t utf8_need_ = 0, utf8_lo_ = 0x80, utf8_hi_ = 0xbf;
  bool fin_ = false;
  bool in_message_ = false;        // a fragmented message awaits its continuation frames
  bool trim_ = false;              // the last event handed out a view into buf_: tidy up first
  state state_ = state::header;
};

}  // namespace pushwire::protocol

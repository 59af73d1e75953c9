// An immutable, shared, encoded-once frame: what every subscriber's send queue points at.
//
// A publication is encoded once into `frame` (the `message` frame, "\n"-terminated, DECISIONS §2)
// and once into `sse` (the same frame as an SSE event without its `id:` line, DECISIONS §4). Every
// queue holds a shared_ptr to it; nothing is copied or re-encoded per subscriber.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "protocol/frame.hpp"
#include "protocol/frame_codec.hpp"

namespace pushwire::server {

enum class message_kind : std::uint8_t {
  publication,   // has a position; SSE: plain event with an id line
  control,       // replies, join/leave: SSE `event: control`
  ping,          // SSE `event: ping`
};

struct message {
  message_kind kind = message_kind::control;
  std::string channel;
  protocol::position pos;          // publication only
  std::string frame;               // wire text, ends in "\n"
  std::string sse;                 // "event: …\n" "data: " frame "\n" (no id line)
  std::size_t data_size = 0;       // publication: payload length (the tail of `frame`)
  std::uint64_t published_ns = 0;  // steady clock at publish, for the publish->write histogram
  bool sse_id = false;             // SSE: precede with the stream's id line

  std::string_view data() const {  // publication payload, raw JSON
    return std::string_view(frame).substr(frame.size() - 2 - data_size, data_size);
  }
  std::size_t bytes() const { return frame.size() + sse.size() + channel.size() + sizeof(message); }
};
using message_ptr = std::shared_ptr<const message>;

inline message_ptr make_publication(std::string_view channel, const protocol::position& pos,
                                    std::string_view data, std::uint64_t now_ns) {
  auto m = std::make_shared<message>();
  m->kind = message_kind::publication;
  m->channel = std::string(channel);
  m->pos = pos;
  protocol::frame f{.kind = protocol::frame_kind::message};
  f.channel = m->channel;
  f.pos = pos;
  f.data = std::string(data);
  protocol::encode_frame(f, m->frame);
  m->data_size = data.size();
  m->sse.reserve(m->frame.size() + 8);
  m->sse = "data: ";
  m->sse += m->frame;
  m->sse += '\n';
  m->published_ns = now_ns;
  m->sse_id = true;
  return m;
}

// Any other frame (already encoded, "\n"-terminated, possibly several lines).
inline message_ptr make_control(std::string text, std::string_view channel = {}, bool sse_id = false) {
  auto m = std::make_shared<message>();
  m->kind = message_kind::control;
  m->channel = std::string(channel);
  protocol::split_batch(text, [&](std::string_view line) {
    m->sse += "event: control\ndata: ";
    m->sse += line;
    m->sse += "\n\n";
  });
  m->frame = std::move(text);
  m->sse_id = sse_id;
  return m;
}

inline message_ptr make_ping() {
  auto m = std::make_shared<message>();
  m->kind = message_kind::ping;
  m->frame = "{\"type\":\"ping\"}\n";
  m->sse = "event: ping\ndata: {\"type\":\"ping\"}\n\n";
  return m;
}

}  // namespace pushwire::server

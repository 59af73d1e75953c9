// What a connection's send queue holds: shared, immutable items, each encoded at most once per
// node per wire format (DECISIONS §1, §20). Publications and channel events come from the hub and
// are shared by every subscriber of the node; control frames (replies, notices, pings) are made by
// a connection's protocol session, or shared when they are the same for everyone (ping).
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "protocol/position.hpp"
#include "server/hub/channel_event.hpp"
#include "server/hub/publication.hpp"

namespace pushwire::server {

struct control_frame {
  std::string text;                              // Pushwire frame(s), "\n"-terminated
  std::string channel;                           // `subscribed`: the channel whose stream position it sets
  std::optional<protocol::position> stream_pos;  // `subscribed`: the resume point (SSE id line, poll cursor)
  bool ping = false;                             // SSE: `event: ping` rather than `event: control`
  bool gap = false;                              // SSE: a `subscribed` with recovered:false is also `event: gap`
  bool informational = false;                    // long-poll: no reason to answer a parked poll early
  std::string sse_only;                          // SSE's own lines (`retry:`), nothing elsewhere
  encoding_cache encodings;
};
using control_ptr = std::shared_ptr<const control_frame>;

using outgoing = std::variant<publication_ptr, channel_event_ptr, control_ptr>;

std::shared_ptr<control_frame> make_control(std::string text);
const control_ptr& ping_frame();   // the same shared frame for every connection

// The Pushwire frame text ("\n"-terminated): WebSocket message payloads and long-poll bodies.
const std::string& frame_text(const outgoing& o);
// The SSE event(s) without an `id:` line (each connection writes its own, DECISIONS §4).
const std::string& sse_text(const outgoing& o);

// The Pusher message (pusher_mapping.hpp): a publication's event on the channel's Pusher name;
// control frames are the Pusher session's own text.
const std::string& pusher_text(const outgoing& o);
// The socket id a publication must not reach (the sender of a client event, or the API's
// socket_id), or "".
const std::string& pusher_excluded(const publication& p);

// The channel and position an item moves in the stream's token (publications; `subscribed`
// replies), or null.
struct stream_mark {
  std::string_view channel;
  const protocol::position* pos = nullptr;
  bool publication = false;
};
stream_mark mark_of(const outgoing& o);
inline const publication* as_publication(const outgoing& o) {
  auto* p = std::get_if<publication_ptr>(&o);
  return p ? p->get() : nullptr;
}

}  // namespace pushwire::server

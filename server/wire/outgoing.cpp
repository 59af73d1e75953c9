// The encoders of the Pushwire frame, SSE and Pusher wire formats, run lazily through each item's
// encoding cache (slot numbers are private to this file).
#include "server/wire/outgoing.hpp"

#include "protocol/frame_codec.hpp"
#include "protocol/pusher/pusher_mapping.hpp"
#include "protocol/pusher/pusher_session.hpp"
#include "server/hub/hub.hpp"

namespace pushwire::server {

namespace {

enum slot : std::size_t { pushwire_slot = 0, sse_slot = 1, pusher_slot = 2, pusher_excluded_slot = 3 };

std::string sse_of_lines(std::string_view text, std::string_view event) {
  std::string out;
  protocol::split_batch(text, [&](std::string_view line) {
    out += "event: ";
    out += event;
    out += "\ndata: ";
    out += line;
    out += "\n\n";
  });
  return out;
}

// Join and leave (a gap never reaches the wire as an event: the shell turns it into `subscribed`).
std::string channel_event_frame(const channel_event& e) {
  protocol::frame f{.kind = e.what == channel_event::kind::join ? protocol::frame_kind::join : protocol::frame_kind::leave};
  f.channel = e.channel;
  std::string list = members_json({e.who});
  f.data = list.substr(1, list.size() - 2);
  return protocol::encode(f);
}

}  // namespace

std::shared_ptr<control_frame> make_control(std::string text) {
  auto c = std::make_shared<control_frame>();
  c->text = std::move(text);
  return c;
}

const control_ptr& ping_frame() {
  static const control_ptr ping = [] {
    auto c = make_control("{\"type\":\"ping\"}\n");
    c->ping = true;
    c->informational = true;
    return control_ptr(std::move(c));
  }();
  return ping;
}

const std::string& frame_text(const outgoing& o) {
  struct visitor {
    const std::string& operator()(const publication_ptr& p) const {
      return p->encodings.get(pushwire_slot, [&] {
        std::string out;
        protocol::encode_message(p->channel, p->pos, p->data, out);
        return out;
      });
    }
    const std::string& operator()(const channel_event_ptr& e) const {
      return e->encodings.get(pushwire_slot, [&] { return channel_event_frame(*e); });
    }
    const std::string& operator()(const control_ptr& c) const { return c->text; }
  };
  return std::visit(visitor{}, o);
}

const std::string& sse_text(const outgoing& o) {
  struct visitor {
    const std::string& operator()(const publication_ptr& p) const {
      // A plain EventSource user gets one `message` event per publication (DECISIONS §2).
      return p->encodings.get(sse_slot, [&] {
        std::string out = "data: ";
        protocol::encode_message(p->channel, p->pos, p->data, out);
        out += '\n';
        return out;
      });
    }
    const std::string& operator()(const channel_event_ptr& e) const {
      return e->encodings.get(sse_slot, [&] { return sse_of_lines(frame_text(e), "control"); });
    }
    const std::string& operator()(const control_ptr& c) const {
      if (!c->sse_only.empty()) return c->sse_only;
      return c->encodings.get(sse_slot, [&] {
        auto out = sse_of_lines(c->text, c->ping ? "ping" : "control");
        // A plain EventSource never sees `control` events unless it listens for them; a resume
        // that history could not cover also goes out as `event: gap` (same data), the one name
        // such a page needs to know (docs/protocol.md, "Server-Sent Events").
        if (c->gap) out += sse_of_lines(c->text, "gap");
        return out;
      });
    }
  };
  return std::visit(visitor{}, o);
}

const std::string& pusher_text(const outgoing& o) {
  struct visitor {
    const std::string& operator()(const publication_ptr& p) const {
      return p->encodings.get(pusher_slot, [&] {
        auto ev = protocol::pusher::from_hub_data(p->data);
        std::string out;
        out.reserve(ev.data.size() + ev.event.size() + p->channel.size() + 48);
        protocol::pusher::pusher_session::encode_message(out, ev.event, protocol::pusher::pusher_name(p->channel), ev.data, ev.user_id);
        return out;
      });
    }
    // Pusher connections turn presence events into their own member_added / member_removed.
    const std::string& operator()(const channel_event_ptr&) const {
      static const std::string none;
      return none;
    }
    const std::string& operator()(const control_ptr& c) const { return c->text; }
  };
  return std::visit(visitor{}, o);
}

const std::string& pusher_excluded(const publication& p) {
  return p.encodings.get(pusher_excluded_slot, [&] { return protocol::pusher::from_hub_data(p.data).socket_id; });
}

stream_mark mark_of(const outgoing& o) {
  if (auto* p = std::get_if<publication_ptr>(&o)) return {(*p)->channel, &(*p)->pos, true};
  if (auto* c = std::get_if<control_ptr>(&o); c && (*c)->stream_pos) return {(*c)->channel, &*(*c)->stream_pos, false};
  return {};
}

}  // namespace pushwire::server

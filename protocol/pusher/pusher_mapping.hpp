// The one mapping between Pusher's events (a name and a string of data) and Pushwire's
// publications (a JSON value), so a publication reaches Pushwire clients, SSE readers and pusher-js
// alike (docs/pusher.md, "One hub"). Pure functions, no I/O.
//
// Pusher -> hub: event E with data D (and the sender's socket id S, when it is excluded) becomes
//   {"event":E,"data":D'[,"socket_id":S][,"user_id":U]}
// where D' is D itself when D is exactly a JSON object or array (what the server SDKs send for
// objects, so Pushwire clients get the object), else D as a JSON string.
// Hub -> Pusher: a JSON object with a string "event" and a "data" member is that event, its data
// the string (when a string) or the member's exact JSON text; a string "socket_id" names the
// connection it is not sent to, and a string "user_id" the sender of a client event on a presence
// channel (Pusher puts it in the message, pusher-js passes it to callbacks as metadata). Any other publication is the event `message` with the whole
// publication as its data (pusher-js parses it back into the same value).
#pragma once
#include <string>
#include <string_view>

namespace pushwire::protocol::pusher {

inline constexpr std::string_view default_event = "message";

// Channel names: an app's channels live in its Pushwire namespace `ns` ("" = the default), so the
// hub channel is "ns:name"; a Pusher name never holds a ':', so the Pusher name of a hub channel is
// what follows its first ':' (or all of it).
std::string hub_channel(std::string_view ns, std::string_view pusher_name);
std::string_view pusher_name(std::string_view hub_channel);

std::string hub_data(std::string_view event, std::string_view data, std::string_view socket_id = {},
                     std::string_view user_id = {});

struct event_view {
  std::string event;
  std::string data;        // Pusher's data string
  std::string socket_id;   // excluded connection, or empty
  std::string user_id;     // a presence client event's sender, or empty
};
// `json` is a publication's data, which the hub validated as JSON.
event_view from_hub_data(std::string_view json);

}  // namespace pushwire::protocol::pusher

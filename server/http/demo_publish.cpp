// /demo/publish (--demo only): the demo pages publish into the `demo` namespace without the API
// key, rate limited per address (DECISIONS §9).
#include <boost/json.hpp>

#include "protocol/channel_name.hpp"
#include "server/http/handlers.hpp"

namespace pushwire::server {

namespace json = boost::json;
using protocol::code;

void publish_object(node& n, const json::object& o, std::function<void(code, std::string)> done);

void handle_demo_publish(node& n, const http_in& in, http_respond respond) {
  if (in.method != "POST") return respond(error_reply(code::bad_frame, "use POST"));
  if (!n.demo.allow(in.remote, n.clk.now_ms())) return respond(error_reply(code::rate_limited, "demo publish rate limit"));
  boost::system::error_code ec;
  auto v = json::parse(in.body, ec);
  if (ec || !v.is_object()) return respond(error_reply(code::bad_frame, "body must be a JSON object"));
  auto& body = v.as_object();
  auto* ch = body.if_contains("channel");
  if (!ch || !ch->is_string() || protocol::channel_namespace(std::string(ch->as_string())) != "demo" ||
      !protocol::valid_channel(std::string(ch->as_string())))
    return respond(error_reply(code::permission_denied, "/demo/publish only publishes into the demo namespace"));
  publish_object(n, body, [respond](code c, std::string out) {
    respond(c == code::ok ? json_reply(std::move(out)) : error_reply(c, out));
  });
}

}  // namespace pushwire::server

// The HTTP API (/api/*, docs/protocol.md "HTTP API"). Every endpoint needs the API key. Bodies are
// parsed with Boost.JSON (cheap here, and strict); replies are written by hand.
#include <boost/json.hpp>
#include <memory>
#include <unordered_map>

#include "protocol/channel_name.hpp"
#include "protocol/json_scan.hpp"
#include "server/http/disconnect_body.hpp"
#include "server/http/handlers.hpp"
#include "server/ops/version.hpp"

namespace pushwire::server {

namespace json = boost::json;
using protocol::code;

namespace {

// /api/channels lists at most this many (a reply of ~1 MB): enough to look at, bounded to build.
constexpr std::size_t api_channels_limit = 10000;

std::string position_json(std::string_view channel, const protocol::position& p) {
  std::string out = "{\"channel\":";
  protocol::append_json_string(out, channel);
  out += ",\"epoch\":";
  protocol::append_json_string(out, p.epoch);
  out += ",\"offset\":";
  protocol::append_uint(out, p.offset);
  out += '}';
  return out;
}

// Validates a channel for the API (no permission checks: the key may do anything).
bool api_channel(node& n, std::string_view ch, code& c, std::string& reason) {
  if (!protocol::valid_channel(ch)) { c = code::bad_channel; reason = "invalid channel name"; return false; }
  if (!n.policy().find(protocol::channel_namespace(ch))) { c = code::bad_channel; reason = "unknown namespace"; return false; }
  return true;
}

bool key_matches(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ b[i]);
  return d == 0;
}

bool parse_body(const http_in& in, json::object& out) {
  boost::system::error_code ec;
  auto v = json::parse(in.body, ec);
  if (ec || !v.is_object()) return false;
  out = std::move(v.as_object());
  return true;
}

// Collects the results of a batch's publishes (which may complete in any order) into one reply.
struct batch_results {
  std::vector<std::string> items;
  std::size_t pending = 0;
  http_respond respond;
  void done_one() {
    if (--pending) return;
    std::string out = "{\"results\":[";
    for (std::size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + items[i];
    out += "]}";
    respond(json_reply(std::move(out)));
  }
};

}  // namespace

// One publish from an API body object; `done` gets the result object or an error.
void publish_object(node& n, const json::object& o, std::function<void(code, std::string)> done) {
  auto* ch = o.if_contains("channel");
  auto* data = o.if_contains("data");
  if (!ch || !ch->is_string() || !data) return done(code::bad_frame, "channel and data are required");
  std::string channel(ch->as_string());
  code c;
  std::string reason;
  if (!api_channel(n, channel, c, reason)) return done(c, reason);
  std::string payload = json::serialize(*data);
  if (payload.size() > n.cfg.max_message_bytes)
    return done(code::message_too_large, "message is larger than " + std::to_string(n.cfg.max_message_bytes) + " bytes");
  std::string key;
  if (auto* k = o.if_contains("idempotency_key")) {
    if (!k->is_string()) return done(code::bad_frame, "idempotency_key must be a string");
    if (k->as_string().size() > n.cfg.max_idempotency_key_bytes)
      return done(code::bad_frame,
                  "idempotency_key is longer than " + std::to_string(n.cfg.max_idempotency_key_bytes) + " bytes");
    key = std::string(k->as_string());
  }
  n.the_hub().publish(channel, std::move(payload), key, [&n, channel, done](publish_result r) {
    if (r.error != code::ok) return done(r.error, r.reason);
    if (!r.duplicate) n.met.messages_published.fetch_add(1, std::memory_order_relaxed);
    done(code::ok, position_json(channel, r.pos));
  });
}

void handle_api(node& n, const http_in& in, http_respond respond) {
  n.met.api_requests.fetch_add(1, std::memory_order_relaxed);
  auto fail = [&n, &respond](code c, std::string_view reason) {
    n.met.api_errors.fetch_add(1, std::memory_order_relaxed);
    respond(error_reply(c, reason));
  };
  if (in.authorization.empty() || !key_matches(in.authorization, n.secrets()->api_key))
    return fail(code::unauthorized, "a valid API key is required (Authorization: Bearer <key>)");
  const std::string& p = in.path;
  if (p == "/api/publish" || p == "/api/publish_batch" || p == "/api/disconnect") {
    if (in.method != "POST") return fail(code::bad_frame, "use POST");
    json::object body;
    if (!parse_body(in, body)) return fail(code::bad_frame, "body must be a JSON object");
    if (p == "/api/publish") {
      return publish_object(n, body, [&n, respond](code c, std::string out) {
        if (c != code::ok) {
          n.met.api_errors.fetch_add(1, std::memory_order_relaxed);
          return respond(error_reply(c, out));
        }
        respond(json_reply(std::move(out)));
      });
    }
    if (p == "/api/publish_batch") {
      auto* msgs = body.if_contains("messages");
      if (!msgs || !msgs->is_array()) return fail(code::bad_frame, "messages must be an array");
      auto& arr = msgs->as_array();
      if (arr.size() > n.cfg.max_batch)
        return fail(code::bad_frame, "at most " + std::to_string(n.cfg.max_batch) + " messages per batch");
      if (arr.empty()) return respond(json_reply("{\"results\":[]}"));
      auto batch = std::make_shared<batch_results>();
      batch->items.resize(arr.size());
      batch->pending = arr.size();
      batch->respond = std::move(respond);
      for (std::size_t i = 0; i < arr.size(); ++i) {
        auto one = [batch, i](code c, std::string out) {
          batch->items[i] = c == code::ok ? std::move(out) : error_json(c, out);
          batch->done_one();
        };
        if (auto* o = arr[i].if_object()) publish_object(n, *o, one);
        else one(code::bad_frame, "each message must be an object");
      }
      return;
    }
    disconnect_order d;
    std::string why;
    if (!parse_disconnect_body(body, d, why)) return fail(code::bad_frame, why);
    return n.disconnect(d, [respond](std::size_t k) { respond(json_reply("{\"disconnected\":" + std::to_string(k) + "}")); });
  }
  if (in.method != "GET") return fail(code::bad_frame, "use GET");
  auto q = [&](const char* k) -> std::string {
    auto it = in.query.find(k);
    return it == in.query.end() ? std::string{} : it->second;
  };
  if (p == "/api/history" || p == "/api/presence") {
    std::string ch = q("channel");
    code c;
    std::string reason;
    if (!api_channel(n, ch, c, reason)) return fail(c, reason);
    if (p == "/api/presence") {
      return n.the_hub().presence(ch, [ch, respond](std::vector<member> m) {
        std::string out = "{\"channel\":";
        protocol::append_json_string(out, ch);
        out += ",\"members\":" + members_json(m) + "}";
        respond(json_reply(std::move(out)));
      });
    }
    std::optional<protocol::position> since;
    if (auto t = q("since"); !t.empty()) {
      auto tok = protocol::decode_resume_token(t);
      if (!tok || tok->size() != 1) return fail(code::bad_resume_token, "since must be one position");
      since = (*tok)[0];
    }
    std::uint64_t limit = 0;
    if (auto l = q("limit"); !l.empty()) {
      auto v = protocol::parse_uint(l);
      if (!v) return fail(code::bad_frame, "limit must be an integer");
      limit = *v;
    }
    return n.the_hub().history(ch, since, limit, [&n, ch, respond](history_result r) {
      if (r.error != code::ok) {
        n.met.api_errors.fetch_add(1, std::memory_order_relaxed);
        return respond(error_reply(r.error, r.reason));
      }
      std::string body = position_json(ch, r.top);
      body.pop_back();
      body += ",\"publications\":" + publications_json(r.publications) + "}";
      respond(json_reply(std::move(body)));
    });
  }
  if (p == "/api/info") {
    auto answer = [&n, respond](std::vector<node_info> nodes) {
      std::string out = "{\"version\":";
      protocol::append_json_string(out, version);
      out += ",\"engine\":";
      protocol::append_json_string(out, n.engine_name());
      out += ",\"node\":";
      protocol::append_json_string(out, n.cfg.node_id);
      out += ",\"nodes\":[";
      for (std::size_t i = 0; i < nodes.size(); ++i) {
        if (i) out += ',';
        out += "{\"id\":";
        protocol::append_json_string(out, nodes[i].id);
        out += ",\"started_ms\":";
        protocol::append_uint(out, nodes[i].started_ms);
        out += '}';
      }
      out += "]}";
      respond(json_reply(std::move(out)));
    };
    if (auto* c = n.cluster()) return c->nodes(std::move(answer));
    return answer({node_info{n.cfg.node_id, n.started_wall_ms}});
  }
  if (p == "/api/channels") {
    // Positions from the whole cluster (the engine's), subscriber counts from this node.
    auto answer = [&n, respond](std::vector<channel_info> all, bool complete) {
      auto local = n.the_hub().channels();
      std::unordered_map<std::string_view, std::size_t> subs;
      for (auto& c : local) subs[c.channel] = c.subscribers;
      std::string out = "{\"channels\":[";
      bool first = true;
      for (auto& c : all) {
        if (!first) out += ',';
        first = false;
        std::string one = position_json(c.channel, c.top);
        one.pop_back();
        auto it = subs.find(c.channel);   // (a cluster's sums come with its list; one node counts here)
        auto count = n.cluster() ? c.subscribers : it == subs.end() ? c.subscribers : it->second;
        out += one + ",\"subscribers\":" + std::to_string(count) + "}";
      }
      out += "],\"complete\":";
      out += complete ? "true}" : "false}";
      respond(json_reply(std::move(out)));
    };
    if (auto* c = n.cluster()) return c->channels(api_channels_limit, std::move(answer));
    return answer(n.the_hub().channels(), true);
  }
  if (p == "/api/stats") {
    auto hs = n.the_hub().stats();
    n.met.channels.store(hs.channels, std::memory_order_relaxed);
    n.met.history_bytes.store(hs.bytes, std::memory_order_relaxed);
    n.met.connections_polling.store(n.leases.size(), std::memory_order_relaxed);
    return respond(json_reply(n.met.render_json()));
  }
  fail(code::unknown_command, "no such API endpoint");
}

}  // namespace pushwire::server

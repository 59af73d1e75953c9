// HTTP requests through the server's router and handlers, in process (docs/fuzzing.md).
//
// The router (http_session::route in server/http/http_session.cpp) is a member of a session that
// owns a TCP socket, so it cannot run without one. This target parses the raw bytes with the same
// Beast request parser and limits as the session (several requests in one input: keep-alive
// pipelining), then routes each request the way route() does, calling the same pieces:
//   OPTIONS, /ws (upgrade)  origin_allowed
//   /sse, /poll             parse_query, Last-Event-ID / cursor, parse_stream_params, the JWT
//                           verifier, node::valid_client_id and the long-poll lease table — what
//                           run_sse_session / run_poll do before the stream starts
//   /cmd                    handle_cmd (a collect_shell running the protocol session over the hub)
//   /api/*                  handle_api (every endpoint: publish, publish_batch, disconnect, history,
//                           presence, channels, stats)
//   /apps/*                 handle_pusher_api (the Pusher HTTP API); under /apps/unsigned/ its
//                           endpoints without the signature check (serve_pusher_api)
//   /demo/publish           handle_demo_publish
//   /healthz, /metrics      the metrics renderers
//   anything else           serve_static over the repository's web/ and client-wasm/
// One node (memory stores, manual clock) lives across inputs, as in a server; its clock moves and
// its stores are swept as inputs go by, so channels, keys and leases come and go.
// Checked beyond "no crash": every handler answers exactly once; JSON answers are valid JSON
// (NDJSON line by line); every response serialises into HTTP that Beast parses back; a static file
// is never served for a path with a ".." segment.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/json.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "server/http/cors.hpp"
#include "server/http/handlers.hpp"
#include "server/http/query.hpp"
#include "server/http/static_files.hpp"
#include "server/node/node.hpp"
#include "server/pusher/pusher_api.hpp"

using namespace pushwire;
using namespace pushwire::server;
namespace http = boost::beast::http;
namespace json = boost::json;
using protocol::code;

namespace {

[[noreturn]] void fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "http_fuzz: %s: %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

config make_config() {
  config c;
  c.demo = true;
  c.api_key = "fuzz-key";
  c.token_secret = "fuzz-secret";
  c.threads = 1;
  c.allowed_origins = {"https://app.example"};
  c.web_root = PUSHWIRE_SOURCE_DIR "/web";
  c.client_root = PUSHWIRE_SOURCE_DIR "/client-wasm";
  // Small limits, so inputs reach them; the sweeps keep the tables from filling for good.
  c.max_channels = 1000;
  c.max_batch = 8;
  c.max_message_bytes = 1024;
  c.max_subscriptions = 16;
  c.max_stream_channels = 8;
  c.body_limit = 64 * 1024;
  c.header_limit = 4096;
  c.history_size = 16;
  c.history_total_bytes = 1 << 20;
  c.idempotency_keys = 256;
  c.max_poll_leases = 256;
  c.max_presence_members = 16;
  c.namespaces["chat"] = namespace_config{16, 60000, true, true, false, false};
  c.namespaces["priv"] = namespace_config{16, 60000, true, true, false, true};
  c.namespaces["demo"] = namespace_config{16, 60000, true, true, true, false};
  pusher_app app;   // the Pusher API (server/pusher/pusher_api.cpp) on the demo namespace
  app.id = "fuzz";
  app.key = "fuzz-key";
  app.secret = "fuzz-secret";
  app.ns = "demo";
  c.pusher_apps.push_back(std::move(app));
  return c;
}

// The I/O thread's fan-out sink: what the worker does, without the io_context.
struct sink final : fanout_sink {
  std::mutex mu;
  std::vector<outgoing> inbox;
  local_subscribers subs;
  void post(const publication_ptr& p) override { std::lock_guard l(mu); inbox.emplace_back(p); }
  void post(const channel_event_ptr& e) override { std::lock_guard l(mu); inbox.emplace_back(e); }
  bool dispatch() {
    std::vector<outgoing> batch;
    {
      std::lock_guard l(mu);
      batch.swap(inbox);
    }
    for (auto& o : batch) {
      if (auto* p = std::get_if<publication_ptr>(&o)) subs.dispatch((*p)->channel, o);
      else if (auto* e = std::get_if<channel_event_ptr>(&o)) subs.dispatch((*e)->channel, o);
    }
    return !batch.empty();
  }
};

struct fixture {
  manual_clock clk;
  node n{make_config(), clk};
  sink io;
  std::deque<std::function<void()>> posted;   // handle_cmd's `post`: runs on "this thread" later
  std::uint64_t inputs = 0;

  fixture() {
    n.the_hub().set_sinks({&io});
  }
  void settle() {
    for (int rounds = 0; rounds < 1000; ++rounds) {
      bool any = io.dispatch();
      while (!posted.empty()) {
        auto fn = std::move(posted.front());
        posted.pop_front();
        fn();
        any = true;
      }
      if (!any) return;
    }
    fail("completions keep coming", "");
  }
};

fixture& fx() {
  static fixture* f = new fixture;   // never destroyed: libFuzzer may exit from any input
  return *f;
}

using request = http::request<http::string_body>;

http_in to_http_in(request& req) {
  http_in in;
  in.method = std::string(req.method_string());
  std::string_view target = req.target();
  auto qpos = target.find('?');
  in.path = std::string(target.substr(0, qpos));
  if (qpos != std::string_view::npos) in.query = parse_query(target.substr(qpos + 1));
  in.body = std::move(req.body());
  auto auth = req[http::field::authorization];
  if (auth.size() > 7 && (auth.starts_with("Bearer ") || auth.starts_with("bearer ")))
    in.authorization = std::string(auth.substr(7));
  in.origin = std::string(req[http::field::origin]);
  in.remote = "127.0.0.1";
  in.content_type = std::string(req[http::field::content_type]);
  return in;
}

void check_json(std::string_view body, std::string_view what) {
  boost::system::error_code ec;
  json::parse(body, ec);
  if (ec) fail(what.data(), body);
}

// What http_session::reply writes (make_response + HEAD), serialised and parsed back.
void check_reply(node& n, const request& req, const http_reply& r) {
  if (r.status < 100 || r.status > 599) fail("status out of range", r.body);
  if (r.content_type == "application/json") check_json(r.body, "a JSON answer is not JSON");
  if (r.content_type == "application/x-ndjson") {
    std::string_view rest = r.body;
    while (!rest.empty()) {
      auto nl = rest.find('\n');
      if (nl == std::string_view::npos) fail("an NDJSON answer without its final newline", r.body);
      check_json(rest.substr(0, nl), "an NDJSON line is not JSON");
      rest.remove_prefix(nl + 1);
    }
  }
  http::response<http::string_body> res{static_cast<http::status>(r.status), req.version()};
  res.set(http::field::server, "pushwire");
  res.set(http::field::content_type, r.content_type);
  for (auto& [k, v] : r.headers) res.set(k, v);
  add_cors(n.cfg, req, res.base());
  res.body() = r.body;
  res.keep_alive(req.keep_alive());
  res.prepare_payload();
  if (req.method() == http::verb::head) res.body().clear();
  std::ostringstream os;
  os << res;
  std::string wire = os.str();
  http::response_parser<http::string_body> back;
  back.eager(true);
  back.skip(req.method() == http::verb::head);
  boost::beast::error_code ec;
  back.put(boost::asio::buffer(wire), ec);
  if (!ec && !back.is_done()) back.put_eof(ec);
  if (ec || back.get().result_int() != r.status) fail("the response does not parse back", wire);
}

// One request through what route() does.
void route(fixture& f, request req) {
  node& n = f.n;
  std::string_view target = req.target();
  std::string path(target.substr(0, target.find('?')));
  int answers = 0;
  http_reply answer;
  auto respond = [&answers, &answer](http_reply r) {
    ++answers;
    answer = std::move(r);
  };
  auto query = [&] {
    auto qpos = target.find('?');
    return parse_query(qpos == std::string_view::npos ? std::string_view{} : target.substr(qpos + 1));
  };

  if (req.method() == http::verb::options) {
    (void)origin_allowed(n.cfg, req[http::field::origin]);
    http_reply r;
    r.status = 204;
    r.content_type = "text/plain";
    return check_reply(n, req, r);
  }
  if (path == "/ws" && boost::beast::websocket::is_upgrade(req)) {
    (void)origin_allowed(n.cfg, req[http::field::origin]);
    return;   // the handshake itself (Sec-WebSocket-Key etc.) happens in ws_session, on a socket
  }
  if ((path == "/sse" || path == "/poll") && req.method() == http::verb::get) {
    if (path == "/sse" && !origin_allowed(n.cfg, req[http::field::origin])) return;
    auto q = query();
    std::string since = path == "/sse" ? q["since"] : q["cursor"];
    if (auto h = req["Last-Event-ID"]; path == "/sse" && !h.empty()) since = std::string(h);
    std::string token = q["token"];
    if (auto a = req[http::field::authorization]; token.empty() && a.starts_with("Bearer ")) token = std::string(a.substr(7));
    std::string client = q["client"];
    if (path == "/poll" && !client.empty() && !node::valid_client_id(client)) return;
    stream_params p;
    code c = code::ok;
    std::string reason;
    if (!parse_stream_params(n.cfg.max_stream_channels, q["channels"], since, token, p, c, reason))
      return check_reply(n, req, error_reply(c, reason));
    std::string user;
    if (!token.empty() && n.verifier()) {
      auto v = n.verifier()(token, n.clk.now_ms());
      if (v.error != code::ok) return check_reply(n, req, error_reply(v.error, v.reason));
      user = v.user;
    }
    if (path == "/poll") {
      disconnect_order advice;
      (void)n.leases.acquire(client, user, q["open"] == "1", n.clk.now_ms(), advice);
    }
    return;
  }
  bool handled = false;
  if (path == "/cmd") {
    auto in = to_http_in(req);
    handle_cmd(n, in, f.io.subs, 0, [&f](std::function<void()> fn) { f.posted.push_back(std::move(fn)); }, respond);
    handled = true;
  } else if (path.starts_with("/api/")) {
    auto in = to_http_in(req);
    handle_api(n, in, respond);
    handled = true;
  } else if (path.starts_with("/apps/")) {
    // "/apps/unsigned/..." skips the signature check, which a fuzzer cannot pass, to reach the
    // endpoints; any other /apps/ path takes the whole way (app look-up, signature).
    auto in = to_http_in(req);
    constexpr std::string_view unsigned_prefix = "/apps/unsigned";
    if (path.starts_with(unsigned_prefix) && path.size() > unsigned_prefix.size() && path[unsigned_prefix.size()] == '/')
      serve_pusher_api(n, n.cfg.pusher_apps.front(), path.substr(unsigned_prefix.size()), in, respond);
    else
      handle_pusher_api(n, in, respond);
    handled = true;
  } else if (path == "/demo/publish" && n.cfg.demo) {
    auto in = to_http_in(req);
    handle_demo_publish(n, in, respond);
    handled = true;
  }
  if (handled) {
    f.settle();
    if (answers != 1) fail("a handler did not answer exactly once", std::string(target));
    return check_reply(n, req, answer);
  }
  if (path == "/healthz") {
    http_reply r;
    r.content_type = "text/plain";
    r.body = "ok\n";
    return check_reply(n, req, r);
  }
  if (path == "/metrics") {
    http_reply r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = n.met.render_prometheus();
    return check_reply(n, req, r);
  }
  if (req.method() != http::verb::get && req.method() != http::verb::head) return;
  http_reply r = serve_static(n.cfg, static_request{.path = path,
                                                    .if_none_match = req[http::field::if_none_match],
                                                    .if_modified_since = req[http::field::if_modified_since],
                                                    .accept_encoding = req[http::field::accept_encoding]});
  if (r.status != 404) {
    std::string rel = percent_decode(path);
    if (rel.find("/../") != std::string::npos || rel.ends_with("/..") || rel.find("\\..") != std::string::npos)
      fail("a static file served for a path with ..", path);
  }
  check_reply(n, req, r);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fixture& f = fx();
  // Time moves 1 s per input; every 64 inputs the stores expire what is due, as the housekeeping
  // tick does.
  f.clk.advance(1000);
  if (++f.inputs % 64 == 0) {
    f.n.the_hub().sweep();
    f.n.leases.sweep(f.clk.now_ms());
  }
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  for (int requests = 0; !rest.empty() && requests < 8; ++requests) {
    http::request_parser<http::string_body> p;
    p.header_limit(static_cast<std::uint32_t>(f.n.cfg.header_limit));
    p.body_limit(f.n.cfg.body_limit);
    p.eager(true);
    boost::beast::error_code ec;
    std::size_t used = 0;
    while (!p.is_done()) {
      std::size_t got = p.put(boost::asio::buffer(rest.data() + used, rest.size() - used), ec);
      used += got;
      if (ec == http::error::need_more) ec = {};
      if (ec) break;
      if (used == rest.size() || got == 0) {
        if (!p.is_done()) p.put_eof(ec);   // the client half-closed: what came is all there is
        break;
      }
    }
    if (ec || !p.is_done()) return 0;   // answered 400/413/431 and closed by the session
    rest.remove_prefix(used);
    request req = p.release();
    bool keep = req.keep_alive();
    route(f, std::move(req));
    if (!keep) break;
  }
  return 0;
}

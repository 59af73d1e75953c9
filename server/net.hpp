// Networking internals shared by the transport files: Beast/Asio aliases, the per-thread worker
// (io_context + local hub + its connections) and the connection base the housekeeping tick and
// server-initiated disconnects talk to. Only the transport/server translation units include it.
#pragma once
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <memory>
#include <thread>
#include <unordered_set>

#include "server/local_hub.hpp"
#include "server/shared.hpp"

namespace pushwire::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using request = http::request<http::string_body>;

class conn_base {
 public:
  virtual ~conn_base() = default;
  virtual void tick(std::uint64_t now) = 0;
  virtual void server_disconnect(const disconnect_target& t, std::uint64_t after_ms) = 0;
  virtual const std::string& client_id() const = 0;
  virtual const std::string& user_id() const = 0;
};

struct worker final : fanout_sink {
  // Declaration order matters for destruction: the io_context (and with it every pending handler
  // and connection) goes before the hub and the connection set it refers to.
  unsigned index = 0;
  local_hub hub;
  std::unordered_set<conn_base*> conns;
  net::io_context ioc{1};
  net::steady_timer tick_timer{ioc};
  std::thread thread;

  void post(message_ptr m) override {
    net::post(ioc, [this, m = std::move(m)] { hub.dispatch(m); });
  }
};

// An HTTP connection after its request was read; transports take it over.
struct http_conn {
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
};

// Hands a keep-alive connection back to the HTTP reader (server.cpp).
void continue_http(shared_state& s, worker& w, beast::tcp_stream stream, beast::flat_buffer buffer,
                   std::shared_ptr<void> life);
// Adds CORS headers for an allowed Origin.
void add_cors(shared_state& s, const request& req, http::fields& out);
bool origin_allowed(shared_state& s, std::string_view origin);

// Transports (one file each). Each takes the stream over.
// `life` holds the connection-limit slot; keep it as long as the socket.
void run_ws_session(shared_state& s, worker& w, beast::tcp_stream stream, request req, std::shared_ptr<void> life);
void run_sse_session(shared_state& s, worker& w, beast::tcp_stream stream, request req, std::shared_ptr<void> life);
void run_poll(shared_state& s, worker& w, beast::tcp_stream stream, beast::flat_buffer buffer, request req,
              std::shared_ptr<void> life);

// Parses channels + a resume token from a one-way URL; on failure fills code/reason.
struct stream_params {
  std::vector<std::string> channels;
  std::vector<std::optional<protocol::position>> since;
  std::string token;
};
bool parse_stream_params(shared_state& s, std::string_view channels, std::string_view token_text,
                         std::string token, stream_params& out, protocol::code& c, std::string& reason);

// A small reply with CORS, for transports that refuse a request.
void write_error_and_close(shared_state& s, beast::tcp_stream stream, const request& req, protocol::code c,
                           std::string_view reason);

}  // namespace pushwire::server

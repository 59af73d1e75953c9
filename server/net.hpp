// Networking internals shared by the transport files: Beast/Asio aliases, the per-thread worker
// (io_context + local hub + its connections) and the connection base the housekeeping tick and
// server-initiated disconnects talk to. Only the transport/server translation units include it.
#pragma once
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

#include "server/local_hub.hpp"
#include "server/shared.hpp"
#include "server/shell.hpp"

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

// A streaming transport (WebSocket, SSE): a connection driven by its protocol session, which
// answers server disconnects and identity the same way for both.
class session_conn : public conn_base, public shell_base {
 public:
  using shell_base::shell_base;
  void server_disconnect(const disconnect_target& t, std::uint64_t after_ms) override {
    session_.disconnect(t.code, t.reason, t.reconnect, after_ms);
    drain(steady_ms());
  }
  const std::string& client_id() const override { return session_.client(); }
  const std::string& user_id() const override { return session_.user(); }
};

// A connection whose first write waits until the current fan-out batch is dispatched, so that
// everything the batch queued for it goes out in one gather write.
class flushable {
 public:
  virtual void flush() = 0;

 protected:
  ~flushable() = default;
};

// One I/O thread. Publications reach it through `inbox`, not one net::post each: the engine appends
// under the channel lock, so the inbox holds every channel's frames in offset order whichever thread
// published them. (Per-message posts were reordered: Asio keeps a post made from the io_context's own
// thread in a thread-private queue until the running handler returns, so a publication from another
// thread could overtake it, and the subscriber's duplicate filter then dropped the earlier one.)
//
// Write coalescing. The kernel's send path costs per call, so the lever is frames per write. One
// wake-up handler drains everything queued so far and dispatches it as one batch; connections
// defer their writes to a flush pass (`write_soon`). A pass writes the connections in `to_flush` in
// short slices (`flush_slice_ns`), one handler each, so publishes keep coming in between slices:
// they join the writes of connections still waiting in this pass, and a connection already written
// gets into the next pass (`next_flush`). A pass starts at most every `coalesce_ns`
// (--write-coalesce-us): while publishes stream in, a connection is written once per window with
// everything that arrived in it; after a quiet window the first publish is written at once, so
// sparse traffic waits for nothing.
struct worker final : fanout_sink {
  // Declaration order matters for destruction: the io_context (and with it every pending handler
  // and connection) goes before the hub and the connection set it refers to.
  unsigned index = 0;
  std::uint64_t coalesce_ns = 0;
  local_hub hub;
  std::unordered_set<conn_base*> conns;
  std::mutex inbox_mu;
  std::vector<message_ptr> inbox;        // guarded by inbox_mu
  // The rest: this thread only.
  std::vector<message_ptr> batch;        // capacity reused between batches
  std::vector<std::shared_ptr<flushable>> to_flush, next_flush;   // owning: a pass spans handlers
  std::size_t flushed = 0;               // to_flush[0, flushed) written; non-empty: a pass is on
  bool pass_timer_armed = false;
  bool dispatching = false;              // inside dispatch_inbox()
  std::uint64_t last_pass_ns = 0;        // start of the latest pass
  // A slice writes for about this long, then lets the thread take in publishes (the closed-loop
  // publisher waits for its reply meanwhile). Shorter slices coalesce more frames per write; measured
  // at 1k subscribers: 32 writes per slice (~400 us) gave 4 frames per write, 50 us gives 17-28.
  static constexpr std::uint64_t flush_slice_ns = 50'000;
  net::io_context ioc{1};
  net::steady_timer tick_timer{ioc};
  net::steady_timer pass_timer{ioc};
  std::thread thread;

  void post(message_ptr m) override {
    bool wake;
    {
      std::lock_guard lock(inbox_mu);
      wake = inbox.empty();
      inbox.push_back(std::move(m));
    }
    if (wake) net::post(ioc, [this] { dispatch_inbox(); });
  }

  void dispatch_inbox() {
    {
      std::lock_guard lock(inbox_mu);
      batch.swap(inbox);
    }
    dispatching = true;
    for (auto& m : batch) hub.dispatch(m);
    batch.clear();
    dispatching = false;
    maybe_start_pass();
  }

  void maybe_start_pass() {
    if (!to_flush.empty() || pass_timer_armed || next_flush.empty()) return;
    auto now = steady_ns();
    if (coalesce_ns && now < last_pass_ns + coalesce_ns) {
      pass_timer_armed = true;
      pass_timer.expires_after(std::chrono::nanoseconds(last_pass_ns + coalesce_ns - now));
      pass_timer.async_wait([this](beast::error_code) {
        pass_timer_armed = false;
        maybe_start_pass();
      });
      return;
    }
    last_pass_ns = now;
    to_flush.swap(next_flush);
    flush_some();
  }

  void flush_some() {
    auto until = steady_ns() + flush_slice_ns;
    do to_flush[flushed++]->flush();
    while (flushed < to_flush.size() && steady_ns() < until);
    if (flushed < to_flush.size()) return net::post(ioc, [this] { flush_some(); });
    to_flush.clear();
    flushed = 0;
    maybe_start_pass();
  }

  // Starts the connection's write now (a reply outside fan-out), or in the next flush pass. The
  // connection's `scheduled` flag stays set until the pass writes it, so it is listed once.
  void write_soon(std::shared_ptr<flushable> c, bool& scheduled) {
    if (!dispatching) return c->flush();
    if (scheduled) return;
    scheduled = true;
    next_flush.push_back(std::move(c));
  }
};

// One publish->write observation per completed write, for its oldest publication: the histogram
// shows how long the longest-waiting frame of each write waited, without three shared atomic
// updates per delivered frame on the fan-out path.
inline void observe_write_latency(metrics& met, const std::vector<message_ptr>& written) {
  std::uint64_t oldest = 0;
  for (auto& m : written)
    if (m->published_ns && (!oldest || m->published_ns < oldest)) oldest = m->published_ns;
  if (oldest) met.publish_to_write.observe((steady_ns() - oldest) / 1000);
}

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
// `ip_slot` (--max-connections-per-ip) is held until the poll is answered, `life` with the socket.
void run_poll(shared_state& s, worker& w, beast::tcp_stream stream, beast::flat_buffer buffer, request req,
              std::shared_ptr<void> life, std::shared_ptr<void> ip_slot);

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

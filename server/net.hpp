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
// One wake-up handler drains everything queued so far and dispatches it as one batch; connections
// defer their writes to the end of the batch (`to_flush`), which coalesces frames per write. The
// writes then go out in slices of `flush_slice` connections, one handler each: between slices the
// thread takes in new publishes, so a connection still waiting for its slice sends them in the same
// write. That is what lets even one publish in flight batch (the kernel's send path costs per call).
struct worker final : fanout_sink {
  // Declaration order matters for destruction: the io_context (and with it every pending handler
  // and connection) goes before the hub and the connection set it refers to.
  unsigned index = 0;
  local_hub hub;
  std::unordered_set<conn_base*> conns;
  std::mutex inbox_mu;
  std::vector<message_ptr> inbox;        // guarded by inbox_mu
  std::vector<message_ptr> batch;        // this thread only; capacity reused between batches
  std::vector<std::shared_ptr<flushable>> to_flush;   // this thread only (owning: slices span handlers)
  std::size_t flushed = 0;               // this thread only: to_flush[0, flushed) done
  bool flush_posted = false;             // this thread only: a flush_slice handler is queued
  bool dispatching = false;              // this thread only: inside dispatch_inbox()
  static constexpr std::size_t flush_slice = 32;
  net::io_context ioc{1};
  net::steady_timer tick_timer{ioc};
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
    if (!flush_posted) flush_some();
  }

  void flush_some() {
    flush_posted = false;
    std::size_t end = std::min(to_flush.size(), flushed + flush_slice);
    for (; flushed < end; ++flushed) to_flush[flushed]->flush();
    if (flushed < to_flush.size()) {
      flush_posted = true;
      net::post(ioc, [this] { flush_some(); });
    } else {
      to_flush.clear();
      flushed = 0;
    }
  }

  // Starts the connection's write now, or in a flush slice after the batch being dispatched.
  void write_soon(std::shared_ptr<flushable> c, bool& scheduled) {
    if (!dispatching) return c->flush();
    if (scheduled) return;
    scheduled = true;
    to_flush.push_back(std::move(c));
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

// One I/O thread and what only it touches: its io_context, its subscribers by channel, its
// connections (for the housekeeping tick and server disconnects) and the write-coalescing passes.
// Only the transport, HTTP and app translation units include it (it brings in Asio and Beast).
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

#include "server/hub/hub.hpp"
#include "server/node/node.hpp"
#include "server/transport/local_subscribers.hpp"
#include "server/transport/send_batch.hpp"
#include "server/transport/write_pacing.hpp"

namespace pushwire::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
// Sockets tied to their thread's io_context by type instead of Asio's type-erased any_io_executor:
// 8 bytes instead of ~48 in every socket and in the work guard of every pending operation, which
// an idle connection holds for its whole life (memory per idle connection, docs/performance.md).
using io_executor = net::io_context::executor_type;
using tcp_socket = net::basic_stream_socket<tcp, io_executor>;
using tcp_stream = beast::basic_stream<tcp, io_executor>;
using request = http::request<http::string_body>;

// A live connection as the housekeeping tick and server disconnects see it.
class conn_base {
 public:
  virtual ~conn_base() = default;
  virtual void tick(std::uint64_t now) = 0;
  virtual void server_disconnect(const disconnect_order& d, std::uint64_t after_ms) = 0;
  virtual const std::string& client_id() const = 0;
  virtual const std::string& user_id() const = 0;
  // A streaming connection (WebSocket, SSE, Pusher), counted by /api/disconnect; a parked long-poll
  // is not (its lease is).
  virtual bool is_stream() const { return true; }
};

// A connection whose first write waits until the current fan-out batch is dispatched, so that
// everything the batch queued for it goes out in one gather write.
// (A batch_sender too: the pass's batch hands it the result of its first send, send_batch.hpp.)
class flushable : public batch_sender {
 public:
  virtual void flush() = 0;

 protected:
  ~flushable() = default;
};

// Publications reach the thread through `inbox`, not one net::post each: the hub appends under the
// history's per-channel order, so the inbox holds every channel's items in offset order whichever
// thread published them. (Asio keeps a post made from the io_context's own thread in a
// thread-private queue until the running handler returns, so per-item posts could reorder a
// channel, and the stream's duplicate filter would then drop the overtaken publication.)
//
// Write coalescing. The kernel's send path costs per call, so the lever is items per write. One
// wake-up handler drains everything queued so far and dispatches it as one batch; connections
// defer their writes to a flush pass (`write_soon`). A pass writes the connections in `to_flush`
// in short slices (`flush_slice_ns`), one handler each, so publishes keep coming in between
// slices: they join the writes of connections still waiting in this pass, and a connection already
// written gets into the next pass (`next_flush`). When the next pass may start is `pacing`'s rule
// (write_pacing.hpp): a pause that grows with the length of the last pass under load, capped by
// --write-coalesce-us, and none after a quiet window, so sparse traffic waits for nothing.
struct worker final : fanout_sink {
  // Declaration order matters for destruction: the io_context (and with it every pending handler
  // and connection) goes before the subscriber table and connection set it refers to.
  unsigned index = 0;
  write_pacing pacing;
  const clock* clk = nullptr;
  local_subscribers subscribers;
  std::unordered_set<conn_base*> conns;
  std::mutex inbox_mu;
  std::vector<outgoing> inbox;           // guarded by inbox_mu
  // The rest: this thread only.
  std::vector<outgoing> batch;           // capacity reused between batches
  std::vector<std::shared_ptr<flushable>> to_flush, next_flush;   // owning: a pass spans handlers
  std::size_t flushed = 0;               // to_flush[0, flushed) written; non-empty: a pass is on
  bool pass_timer_armed = false;
  bool dispatching = false;              // inside dispatch_inbox()
  // A slice's first sends go to the kernel together (send_batch.hpp) when the ring is enabled:
  // `batching` is set while the slice's connections start their writes.
  send_batch sends;
  bool batching = false;
  // A slice writes for about this long, then lets the thread take in publishes (a closed-loop
  // publisher waits for its reply meanwhile); shorter slices coalesce more items per write.
  static constexpr std::uint64_t flush_slice_ns = 50'000;
  net::io_context ioc{1};
  net::steady_timer tick_timer{ioc};
  net::steady_timer pass_timer{ioc};
  std::thread thread;

  void post(const publication_ptr& p) override { take(p); }
  void post(const channel_event_ptr& e) override { take(e); }

  void take(outgoing o) {
    bool wake;
    {
      std::lock_guard lock(inbox_mu);
      wake = inbox.empty();
      inbox.push_back(std::move(o));
    }
    if (wake) net::post(ioc, [this] { dispatch_inbox(); });
  }

  void dispatch_inbox() {
    {
      std::lock_guard lock(inbox_mu);
      batch.swap(inbox);
    }
    dispatching = true;
    for (auto& o : batch) {
      if (auto* p = std::get_if<publication_ptr>(&o)) subscribers.dispatch((*p)->channel, o);
      else if (auto* e = std::get_if<channel_event_ptr>(&o)) subscribers.dispatch((*e)->channel, o);
    }
    batch.clear();
    dispatching = false;
    maybe_start_pass();
  }

  void maybe_start_pass() {
    if (!to_flush.empty() || pass_timer_armed || next_flush.empty()) return;
    auto now = clk->now_ns();
    if (auto start = pacing.next_start_ns(); now < start) {
      pass_timer_armed = true;
      pass_timer.expires_after(std::chrono::nanoseconds(start - now));
      pass_timer.async_wait([this](beast::error_code) {
        pass_timer_armed = false;
        maybe_start_pass();
      });
      return;
    }
    pacing.pass_started(now);
    to_flush.swap(next_flush);
    flush_some();
  }

  void flush_some() {
    auto until = clk->now_ns() + flush_slice_ns;
    batching = sends.enabled();
    do to_flush[flushed++]->flush();
    while (flushed < to_flush.size() && clk->now_ns() < until && !sends.full());
    batching = false;
    sends.run();
    if (flushed < to_flush.size()) return net::post(ioc, [this] { flush_some(); });
    to_flush.clear();
    flushed = 0;
    pacing.pass_ended(clk->now_ns());
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

}  // namespace pushwire::server

// What every transport shares, without a networking header: it owns the connection's two protocol
// machines — the session (commands in, replies out) and the stream (positions, duplicates, queue
// bound, deadlines) — carries out the session's hub requests, and hands admitted items to the
// transport, which only moves bytes.
//
// Subscribe, step by step (hub.hpp states the contract): the stream starts holding the channel's
// live publications, the hub registers this thread's interest and reads the history; on the
// result the `subscribed` reply goes out, then the replay, then what was held, each through the
// stream's duplicate filter. The hub may complete later on another thread: later() brings the
// completion back to this connection's thread, and nothing runs once the connection is gone.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <string>
#include <vector>

#include "protocol/server_session.hpp"
#include "protocol/server_stream.hpp"
#include "server/node/node.hpp"
#include "server/transport/local_subscribers.hpp"

namespace pushwire::server {

class shell : public subscriber {
 public:
  // one_way: an SSE stream (its URL names its channels; see protocol::session_info).
  shell(node& n, local_subscribers& subs, unsigned io_thread, std::string client, protocol::stream_policy sp,
        bool one_way = false);
  ~shell() override;
  void deliver(const outgoing& o) override;
  protocol::server_session& session() { return session_; }
  const protocol::server_session& session() const { return session_; }
  protocol::server_stream& stream() { return stream_; }

 protected:
  // Executes every queued session action and stream action (and those they cause), in order.
  void drain(std::uint64_t now);
  // Leaves every channel (and its presence unless `keep_presence`: leased one-way members stay).
  void release(bool keep_presence = false);
  std::vector<std::string> presence_channels() const;
  // The size an item takes in this transport's queue (its wire format).
  virtual std::size_t wire_size(const outgoing& o) const = 0;
  // Queue an item the stream accepted (or a notice); `size` is its wire_size().
  virtual void push(outgoing o, std::size_t size, bool replay) = 0;
  virtual void close_requested(protocol::code c, const std::string& reason) = 0;
  // A stream decision the transport carries out: ping frame, probe (WebSocket ping), slow-consumer
  // notice, cut. The default queues the ping and the notice and closes; probe and cut are the
  // transport's.
  virtual void on_stream_action(protocol::stream_action a);
  // Runs a hub completion that arrived after the request returned, on this connection's thread.
  // The default runs it at once (the synchronous /cmd handler, where every completion is inline).
  virtual void later(std::function<void()> fn) { fn(); }
  // What a later completion checks before it runs: the owner of a connection that can outlive a
  // request (null for a shell that lives on the stack of a synchronous handler).
  virtual std::weak_ptr<void> lifetime() { return {}; }
  // After a later completion ran (the shell may now have everything it waited for).
  virtual void settled() {}
  // A control frame from the session (a reply, an error, a disconnect).
  void send_control(std::shared_ptr<control_frame> c);

  // The protocol session the shell runs. The defaults are the Pushwire session's; the Pusher
  // endpoint (server/pusher/) speaks through the same actions and replies with its own session.
  virtual std::optional<protocol::session_action> next_session_action() { return session_.poll_action(); }
  virtual void session_result(const protocol::engine_reply& r, std::uint64_t now) { session_.handle_result(r, now); }
  virtual void session_tick(std::uint64_t now) {
    if (auto d = session_.next_deadline(); d && now >= *d) session_.handle_timeout(now);
  }
  // A presence join or leave of a subscribed channel: true when the protocol took it itself
  // (Pusher tells member_added/removed per user); false queues the shared encoding.
  virtual bool take_member_event(const channel_event&) { return false; }
  // A subscribed stream lost publications (gap, new epoch): the Pushwire protocol says so with a
  // `subscribed` frame, recovered:false; a protocol without resume has nothing to tell.
  virtual void announce_break(const std::string& channel, const protocol::position& at);

  // Deliveries count under this connection's transport (one relaxed add, as a single total did).
  void count_deliveries_as(transport_kind t) { delivered_ = &node_.met.messages_delivered_by[static_cast<std::size_t>(t)]; }

  node& node_;
  local_subscribers& subs_;
  protocol::server_session session_;
  protocol::server_stream stream_;
  std::uint64_t presence_lease_until_ = 0;   // 0: held while the connection lives
  // The member id in presence: the client id, unless the transport points this at an id of its own
  // that lives as long as the shell (Pusher's socket id).
  const std::string* presence_member_ = nullptr;
  const std::string& presence_member() const { return presence_member_ ? *presence_member_ : session_.client(); }

 private:
  // Live publications of a channel held while its subscribe's read is in flight.
  struct holding {
    std::string channel;
    std::vector<publication_ptr> held;
  };
  holding* holding_of(std::string_view channel);
  void stop_holding(std::string_view channel);
  void execute(protocol::session_action& a, std::uint64_t now);
  void on_resumed(protocol::session_action a, resume_result r, std::uint64_t now);
  void finish_subscribe(protocol::session_action a, resume_result r, std::uint64_t now,
                        std::vector<member> members = {});
  void leave_channel(const std::string& channel, bool leave_presence);
  void offer(const outgoing& o, bool replay);
  void announce_reset(const publication& p);   // a new epoch under a live subscription
  // Counts `size` bytes against the stream's queue bound; false (and the slow-consumer path) when
  // refused.
  bool take_bytes(std::size_t size, bool replay);
  // Wraps a hub completion: inline while the request is being made, else through later(); never
  // after this shell is gone.
  template <class Result>
  std::function<void(Result)> complete(std::function<void(Result)> fn);

  // Observes a hub command's time from request to completion (a clock read and a few relaxed adds).
  void observe_command(command_metric m, std::uint64_t started_ns);

  // Which channels this connection joined is the stream machine's record (stream_.joined()); beside
  // it only what few connections need, each empty (no memory) on an idle connection.
  struct rare_state {
    std::vector<holding> subscribing;    // subscribes in flight
    std::vector<std::string> presence;   // channels whose presence this connection joined
  };
  rare_state& rare();
  void release_rare_if_empty();
  std::unique_ptr<rare_state> rare_;   // null while both are empty
  std::atomic<std::uint64_t>* delivered_;   // the transport's delivery counter (long-poll by default)
  std::thread::id owner_;   // the connection's I/O thread
  unsigned io_thread_;
  std::uint16_t requesting_ = 0;   // > 0 while a hub request is being made (inline completions)
  bool released_ = false;
};

// A shell that collects frames (the /cmd handler and long-poll answers).
class collect_shell : public shell {
 public:
  using shell::shell;
  using shell::drain;
  using shell::release;
  using shell::presence_channels;
  std::vector<outgoing> frames;
  std::optional<protocol::code> closed;
  std::function<void()> on_frame;   // a frame arrived (long-poll: answer now)
  std::uint64_t& lease() { return presence_lease_until_; }
  // Completions that arrive after their request returned (on another thread, or from a store behind
  // the network) are posted to the owner's thread with `post`, run only while `owner` lives, and
  // are followed by `on_settled`. Both must be set by an owner that can outlive a request.
  std::function<void(std::function<void()>)> post;
  std::weak_ptr<void> owner;
  std::function<void()> on_settled;
  // Long-polls take join/leave from their lease's queue instead (poll_leases::watch), which holds
  // those between polls too and never the lease's own: the fanned-out copies are dropped.
  bool events_from_lease = false;

 protected:
  std::size_t wire_size(const outgoing& o) const override { return frame_text(o).size(); }
  void push(outgoing o, std::size_t, bool) override {
    if (events_from_lease && std::holds_alternative<channel_event_ptr>(o)) return;
    frames.push_back(std::move(o));
    if (on_frame) on_frame();
  }
  void close_requested(protocol::code c, const std::string&) override { closed = c; }
  void later(std::function<void()> fn) override { post(std::move(fn)); }
  std::weak_ptr<void> lifetime() override { return owner; }
  void settled() override {
    if (!on_settled) return;
    auto run = on_settled;   // a copy: the handler may clear on_settled (and what it captured)
    run();
  }
};

}  // namespace pushwire::server

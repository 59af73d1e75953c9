// The node's hub: publish, subscribe with exact resume, presence and disconnects, over the three
// seams (history — which also keeps the idempotency keys —, broker, presence). It includes no networking header (STYLE.md): it
// hands typed publications and events to one fanout_sink per I/O thread, and the I/O threads do
// the encoding and the writing.
//
// Publication path: publish() -> history append (checks the idempotency key and assigns the
// position in one step) -> broker -> on_publication() on every node with subscribers -> the sink of each I/O thread with
// subscribers of that channel.
//
// Exact resume — the contract a remote store can meet too:
//   1. subscribe() first registers the I/O thread's interest and has the broker confirm live
//      delivery of the channel (broker::subscribe completes);
//   2. only then reads the history (history_store::resume): the channel's newest position and,
//      with `since`, everything after it;
//   3. the subscriber merges by offset: the replay first, then live publications with a higher
//      offset; anything at or below the last offset it sent is a duplicate and dropped. Live
//      publications that arrive while the read is in flight wait in the subscription until the
//      read completes (the stream machine's `resuming` state).
// So a publication is in the replay, or arrives live after step 1, or both — never neither.
// tests/server/hub_contract_test.cpp states this against the interfaces.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "server/hub/broker.hpp"
#include "server/hub/clock.hpp"
#include "server/hub/history.hpp"
#include "server/hub/presence.hpp"

namespace pushwire::server {

// One per I/O thread. post() may be called with a store lock held and from any thread: it must only
// hand the item over (append to the thread's inbox), never call back into the hub.
class fanout_sink {
 public:
  virtual ~fanout_sink() = default;
  virtual void post(const publication_ptr& p) = 0;
  virtual void post(const channel_event_ptr& e) = 0;
};

struct publish_result {
  protocol::code error = protocol::code::ok;
  std::string reason;
  protocol::position pos;
  bool duplicate = false;   // the idempotency key was seen on this channel: nothing new was published
};

struct hub_stores {
  history_store& history;
  broker& brk;
  presence_store& presence;
};

class hub final : private broker_listener {
 public:
  hub(hub_stores stores, const clock& clk, unsigned io_threads);
  ~hub() override;

  void set_sinks(std::vector<fanout_sink*> sinks);   // one per I/O thread, before any other call
  // Every join/leave, whichever threads subscribe (the long-poll leases queue them between polls).
  // Called with a store lock held: it must only hand the event over.
  void set_event_listener(std::function<void(const channel_event_ptr&)> l) { event_listener_ = std::move(l); }
  // This node's interest in a channel going 0 -> 1 subscription (true) and 1 -> 0 (false): the
  // Pusher webhooks' channel_occupied / channel_vacated. Called under the interest lock, so the
  // calls for a channel come in the order the changes happened: it must only hand the change over
  // (never call back into the hub). Set before any subscribe.
  void set_occupancy_listener(std::function<void(std::string_view channel, bool occupied)> l) {
    occupancy_listener_ = std::move(l);
  }
  // Server disconnects arriving from the broker (from this node or another).
  void set_disconnect_listener(std::function<void(const disconnect_order&)> l) { disconnect_listener_ = std::move(l); }

  // Completions may run inline or later on another thread (see history.hpp).
  void publish(std::string_view channel, std::string data, std::string_view idempotency_key,
               std::function<void(publish_result)> done);
  // `io_thread`'s interest is registered before `done` runs, and stays until unsubscribe() — also
  // when the result is an error (call unsubscribe() then too).
  void subscribe(std::string_view channel, unsigned io_thread, const std::optional<protocol::position>& since,
                 std::function<void(resume_result)> done);
  void unsubscribe(std::string_view channel, unsigned io_thread);
  void history(std::string_view channel, const std::optional<protocol::position>& since, std::size_t limit,
               std::function<void(history_result)> done);
  void presence_join(std::string_view channel, const member& m, std::uint64_t lease_until_ms,
                     std::function<void(protocol::code)> done);
  void presence_leave(std::string_view channel, std::string_view client);
  void presence(std::string_view channel, std::function<void(std::vector<member>)> done);
  void disconnect(const disconnect_order& d);

  std::vector<channel_info> channels();   // with this node's subscriber counts
  std::vector<channel_info> subscriber_counts();   // every channel this node has subscribers of (no position)
  std::size_t subscribers(std::string_view channel);   // this node's subscriptions of one channel
  history_stats stats();
  // Expires history, idempotency keys, presence leases and idle channels.
  void sweep();
  const clock& time() const { return clock_; }

 private:
  void on_publication(const publication_ptr& p) override;
  void on_channel_event(const channel_event_ptr& e) override;
  void on_disconnect(const disconnect_order& d) override;
  bool in_use(std::string_view channel);

  struct interest {
    std::vector<std::uint32_t> per_thread;   // subscriptions per I/O thread
    std::uint32_t total = 0;
    bool asked = false;                      // broker::subscribe was called for this entry
    bool live = false;                       // the broker confirmed live delivery
    std::uint64_t generation = 0;            // tells a late confirmation from an old entry
    std::vector<std::function<void()>> waiting;   // resume reads waiting for that
  };

  hub_stores s_;
  const clock& clock_;
  unsigned threads_;
  std::vector<fanout_sink*> sinks_;
  std::function<void(const channel_event_ptr&)> event_listener_;
  std::function<void(const disconnect_order&)> disconnect_listener_;
  std::function<void(std::string_view, bool)> occupancy_listener_;
  std::mutex interest_mu_;
  std::unordered_map<std::string, interest> interest_;
  std::uint64_t generation_ = 0;   // guarded by interest_mu_
};

// Presence members as the JSON array of `presence` frames and /api/presence.
std::string members_json(const std::vector<member>& members);
// Publications as the `publications` array of history replies: [{"offset":n,"data":…}].
std::string publications_json(const std::vector<publication_ptr>& pubs);

}  // namespace pushwire::server

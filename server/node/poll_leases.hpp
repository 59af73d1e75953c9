// Long-poll leases (docs/protocol.md "Long-polling"), keyed by the client id the opening poll's
// `connected` frame assigned. A lease holds what a polling client has between its polls: its
// presence memberships, a server disconnect waiting to be delivered, and the join/leave events of
// the channels it polls. Positions stay in the client's cursor, so any node can answer a poll.
#pragma once
#include <atomic>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/hub/broker.hpp"
#include "server/hub/channel_event.hpp"

namespace pushwire::server {

class hub;

class poll_leases {
 public:
  struct limits {
    std::size_t max_leases = 100000;        // live long-poll clients (~200 bytes each)
    std::uint64_t lease_ms = 35000;         // a poll must come back within this
    std::size_t max_queued_events = 64;     // per lease; the oldest goes first (presence() refreshes)
  };
  // `gauge` mirrors the number of leases (the connections_polling metric).
  poll_leases(limits l, hub& h, std::function<std::string()> new_id, std::atomic<std::uint64_t>& gauge)
      : lim_(l), hub_(h), gauge_(gauge), new_id_(std::move(new_id)) {}

  enum class status : std::uint8_t { created, renewed, disconnect, full };
  // Opening poll (`open`, or `id` unknown, expired or another user's): creates a lease with a fresh
  // id (written to `id`); otherwise renews it, or takes it out when a disconnect waits (`advice`).
  status acquire(std::string& id, const std::string& user, bool open, std::uint64_t now, disconnect_order& advice);
  // The lease's presence channels now; leaves the ones it no longer holds.
  void set_presence(const std::string& id, std::vector<std::string> channels);
  // The channels a poll of this lease names: their join/leave events (other members' only) are
  // queued on the lease, bounded. Events of channels it no longer names are dropped.
  void watch(const std::string& id, std::vector<std::string> channels);
  // Parks poll `serial`: returns the queued events at once (and does not park) when there are any;
  // else keeps `wake`, called once (under the lease lock: it must only post) when one is queued.
  std::vector<channel_event_ptr> park(const std::string& id, std::uint64_t serial, std::function<void()> wake);
  // The poll is being answered: takes the queued events and forgets its `wake`.
  std::vector<channel_event_ptr> unpark(const std::string& id, std::uint64_t serial);
  // The hub's event listener.
  void on_event(const channel_event_ptr& e);
  void remove(const std::string& id);   // a disconnect was delivered
  std::size_t mark(const disconnect_order& d);   // leases a disconnect addresses
  void sweep(std::uint64_t now);   // expired leases leave their presence
  std::size_t size();
  std::uint64_t lease_ms() const { return lim_.lease_ms; }

 private:
  struct lease {
    std::string user;
    std::uint64_t expires_ms = 0;
    std::vector<std::string> presence;            // channels where this lease is a member
    std::optional<disconnect_order> marked;       // to deliver on the next poll
    std::vector<std::string> watched;             // sorted channels its last poll named
    std::deque<channel_event_ptr> queued;
    std::uint64_t parked = 0;                     // serial of the parked poll `wake` answers
    std::function<void()> wake;
  };
  // Removes the lease `it` (lock held); its presence channels are left by the caller, unlocked.
  std::vector<std::string> erase(std::unordered_map<std::string, lease>::iterator it);
  void leave_all(const std::string& id, const std::vector<std::string>& channels);

  void counted() { gauge_.store(leases_.size(), std::memory_order_relaxed); }   // lock held

  limits lim_;
  hub& hub_;
  std::atomic<std::uint64_t>& gauge_;
  std::function<std::string()> new_id_;
  std::mutex mu_;
  std::unordered_map<std::string, lease> leases_;
  std::unordered_map<std::string, std::vector<std::string>> watchers_;   // channel -> lease ids
};

}  // namespace pushwire::server

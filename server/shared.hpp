// State every transport shares, without any networking header: config, engine, metrics, the
// session policy and token verifier, and the connection registry used by /api/disconnect.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "protocol/server_session.hpp"
#include "server/config.hpp"
#include "server/engine.hpp"
#include "server/metrics.hpp"

namespace pushwire::server {

enum class transport : std::uint8_t { websocket, sse, polling, command };

inline std::uint64_t steady_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now().time_since_epoch()).count());
}
inline std::uint64_t steady_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::steady_clock::now().time_since_epoch()).count());
}

// Which connections an API disconnect (or shutdown) addresses.
struct disconnect_target {
  std::string client;   // one connection
  std::string user;     // every connection of a user
  bool all = false;
  protocol::code code = protocol::code::disconnected_by_server;
  std::string reason = "disconnected by server";
  bool reconnect = true;
  std::uint64_t after_ms = 0;
  std::uint64_t jitter_ms = 0;
};

// HTTP request as the synchronous handlers (API, /cmd, /demo) see it.
struct http_in {
  std::string method;
  std::string path;
  std::map<std::string, std::string> query;   // percent-decoded
  std::string body;
  std::string authorization;                  // the value after "Bearer "
  std::string origin;
  std::string remote;                         // client address
  std::string content_type;
};

struct http_reply {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

unsigned http_status(protocol::code c);
std::string error_json(protocol::code c, std::string_view reason);
http_reply error_reply(protocol::code c, std::string_view reason);

struct shared_state {
  explicit shared_state(config c);

  config cfg;
  std::unique_ptr<engine> eng;
  pushwire::server::metrics met;
  protocol::session_policy policy;           // websocket and /cmd; one-way shells copy it
  protocol::token_verifier verifier;
  std::string api_key;
  std::atomic<bool> draining{false};
  std::atomic<std::size_t> connections{0};
  std::size_t max_connections = 0;
  // Connections per remote address (--max-connections-per-ip; docs/protocol.md "Limits"): WebSocket
  // sessions, SSE streams and long-polls from their start until answered. On success `slot` holds
  // the count until it is destroyed (null while the limit is off); false = over the limit.
  bool acquire_ip_slot(const std::string& ip, std::shared_ptr<void>& slot);
  std::size_t ip_connections(const std::string& ip);
  std::mutex ip_mu;
  std::unordered_map<std::string, std::size_t> ip_conns;
  std::atomic<std::uint64_t> next_client{1};
  // Disconnects matching connections on every worker; returns how many matched. Set by the server.
  std::function<std::size_t(const disconnect_target&)> disconnect;

  std::string new_client_id() { return "c" + std::to_string(next_client.fetch_add(1)); }
  // Whether `id` has the form of a server-issued client id ("c" + 1-19 digits).
  static bool valid_client_id(std::string_view id);
  std::uint64_t jitter(std::uint64_t max);   // uniform [0, max], thread-safe

  // Connection registry (client id -> worker, user) for targeted disconnects.
  struct entry { unsigned worker; std::string user; };
  std::mutex reg_mu;
  std::unordered_map<std::string, entry> registry;
  void register_conn(const std::string& client, unsigned worker, const std::string& user);
  void unregister_conn(const std::string& client);

  // Long-poll leases (docs/protocol.md "Long-polling"): keyed by the client id the opening poll's
  // `connected` frame assigned. A lease holds the polling client's presence membership and pending
  // server disconnects between polls; positions stay in the cursor, so any node can answer a poll.
  struct poll_lease {
    std::string user;
    std::uint64_t expires_ms = 0;
    std::vector<std::string> presence;        // channels where this lease is a presence member
    std::optional<disconnect_target> marked;  // disconnect to deliver on the next poll
    std::vector<std::string> watched;         // channels its last poll named
    std::deque<message_ptr> queued;           // join/leave of watched channels for the next poll
    std::uint64_t parked = 0;                 // serial of the parked poll `wake` answers; 0 = none
    std::function<void()> wake;               // posts to the parked poll's thread (never runs it inline)
  };
  static constexpr std::size_t max_queued_presence = 64;   // per lease; the oldest goes first
  enum class lease_status : std::uint8_t { created, renewed, disconnect, full };
  // Opening poll (`open` or `id` unknown, expired or another user's): creates a lease with a fresh
  // id (written to `id`); otherwise renews it, or takes it out when it is marked (`advice` filled).
  lease_status acquire_lease(std::string& id, const std::string& user, bool open, std::uint64_t now,
                             disconnect_target& advice);
  // Records the lease's presence channels now; leaves the ones it no longer polls.
  void lease_presence(const std::string& id, std::vector<std::string> channels);
  // The channels a poll of this lease names: their join/leave frames (other members' only) are
  // queued on the lease, bounded, so a polling client sees presence changes between its polls.
  // Frames of channels it no longer names are dropped.
  void lease_watch(const std::string& id, std::vector<std::string> channels);
  // Parks poll `serial` of the lease: returns the queued frames at once (and does not park) when
  // there are any; else stores `wake`, called (once, under the lease lock) when a frame is queued.
  std::vector<message_ptr> lease_park(const std::string& id, std::uint64_t serial, std::function<void()> wake);
  // The poll is being answered: takes the queued frames and forgets its `wake`.
  std::vector<message_ptr> lease_unpark(const std::string& id, std::uint64_t serial);
  // The engine's presence listener.
  void lease_presence_event(const message_ptr& m);
  // Removes a lease (disconnect delivered) and leaves its presence.
  void remove_lease(const std::string& id);
  // Marks the leases a disconnect addresses; returns how many.
  std::size_t mark_leases(const disconnect_target& t);
  // Drops expired leases (and their presence); call from the housekeeping tick.
  void sweep_leases(std::uint64_t now);
  std::size_t lease_count();
  std::mutex lease_mu;
  std::unordered_map<std::string, poll_lease> leases;
  std::unordered_map<std::string, std::vector<std::string>> lease_watchers;   // channel -> lease ids
  std::atomic<std::uint64_t> next_poll_serial{1};

  // /demo/publish rate limiting: per address, a one-second window.
  std::mutex demo_mu;
  std::unordered_map<std::string, std::pair<std::uint64_t, std::uint64_t>> demo_windows;

 private:
  std::mutex rng_mu_;
  std::uint64_t rng_;
};

// Parses `a=b&c=d` with percent-decoding.
std::map<std::string, std::string> parse_query(std::string_view q);
std::string percent_decode(std::string_view s);

// Synchronous handlers (api_handler.cpp).
http_reply handle_api(shared_state& s, const http_in& in);
http_reply handle_demo_publish(shared_state& s, const http_in& in);
http_reply handle_cmd(shared_state& s, const http_in& in, class local_hub& hub, unsigned worker);

}  // namespace pushwire::server

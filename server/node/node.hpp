// Everything node-wide that the transports and handlers share, without any networking header: the
// configuration and clock, the hub over its stores, metrics, the protocol policies and token
// verifier, and the node-local tables (connections, long-poll leases, per-address slots). Each table
// keeps its lock private.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "protocol/server_session.hpp"
#include "protocol/server_stream.hpp"
#include "server/hub/clock.hpp"
#include "server/hub/hub.hpp"
#include "server/hub/stores.hpp"
#include "server/node/demo_rate.hpp"
#include "server/node/ip_slots.hpp"
#include "server/node/poll_leases.hpp"
#include "server/ops/config.hpp"
#include "server/ops/metrics.hpp"

namespace pushwire::server {

class pusher_webhooks;

// The keys a reload may replace (SIGHUP): every I/O thread reads them, the reload swaps the whole
// set; a reader keeps the set it took for as long as it uses it.
struct node_secrets {
  std::string api_key;
  std::string token_secret;   // empty: tokens refused
};

class node {
  // First, so they exist before the tables that refer to the hub (members initialise in this order).
  const config cfg_;
  store_set stores_;
  std::unique_ptr<hub> hub_;

 public:
  // `make` null: the memory stores (the embedded default).
  node(config c, const clock& clk, const store_maker& make = nullptr);
  static store_set memory_stores(const config& c, const clock& clk);
  // The memory set with the durable history in c.data_dir (--data-dir).
  static store_set disk_stores(const config& c, const clock& clk);
  ~node();
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  const config& cfg = cfg_;
  const clock& clk;
  pushwire::server::metrics met;
  // Every transport's protocol session shares these (set once, at construction): the policy, and a
  // verifier that checks with the current token secret (secrets()), refusing every token while it
  // is empty.
  std::shared_ptr<const protocol::session_rules> session_rules;
  const protocol::session_policy& policy() const { return session_rules->policy; }
  const protocol::token_verifier& verifier() const { return session_rules->verifier; }
  // The current keys (at construction: cfg.api_key and cfg.token_secret). Any thread.
  std::shared_ptr<const node_secrets> secrets() const;
  void set_secrets(node_secrets s);
  std::atomic<bool> draining{false};
  std::atomic<std::size_t> connections{0};   // open TCP connections (the connection limit)
  std::atomic<std::size_t> max_connections{0};   // set at start, changed by a reload
  const std::uint64_t started_wall_ms;   // ms since the Unix epoch, for /api/info

  hub& the_hub() { return *hub_; }
  cluster_view* cluster() { return stores_.cluster.get(); }   // null: a cluster of one
  const std::string& engine_name() const { return stores_.engine; }
  // WebSocket, SSE and Pusher connections open on this node (the shutdown drain waits for none).
  // Which of them an order addresses is asked of the I/O threads, which know their own
  // (count_streams): a connection costs no entry in a node-wide table (~100 bytes each) and its
  // open and close take no node-wide lock.
  std::atomic<std::size_t> open_streams{0};
  // Set by the server: counts this node's streaming connections `d` addresses, each I/O thread its
  // own, and calls `done` once with the total, on one of those threads.
  std::function<void(const disconnect_order& d, std::function<void(std::size_t)> done)> count_streams;
  poll_leases leases;
  ip_slots ips;
  demo_rate demo;
  // The Pusher webhooks (server/pusher/webhooks.hpp), null when no app has one; set at start-up
  // (server.cpp owns it), before any connection.
  pusher_webhooks* webhooks = nullptr;

  // The stream policy of a transport: WebSocket reads, so it has a dead-peer deadline.
  protocol::stream_policy stream_policy(bool reads) const;
  std::string new_client_id() {
    std::string id = "c";   // (not "c" + to_string: g++ 12 warns falsely, -Wrestrict, PR 105651)
    id += std::to_string(next_client_.fetch_add(1));
    return id;
  }
  // Pusher socket ids, "<this node's random number>.<counter>": unique over a cluster, and of the
  // form pusher-js and the server SDKs check (\d+\.\d+).
  std::string new_socket_id();
  // Open Pusher connections per app (the index in cfg.pusher_apps), for each app's max_connections.
  std::unique_ptr<std::atomic<std::size_t>[]> pusher_connections;
  // Whether `id` has the form of a server-issued client id ("c" + 1-19 digits).
  static bool valid_client_id(std::string_view id);
  std::uint64_t jitter(std::uint64_t max);   // uniform [0, max], any thread, any max
  // The `after` a connection is told for `d`: after_ms plus its own jitter, each part clamped to
  // max_reconnect_delay_ms (whatever reached the order, the frame stays in the protocol's range).
  std::uint64_t reconnect_after(const disconnect_order& d);

  // A server disconnect (API, shutdown): marks this node's leases and hands it to the broker, which
  // brings it to every node's listener. `counted` (optional) is told how many of this node's
  // connections and polling leases it addresses, counted before any of them is told.
  void disconnect(const disconnect_order& d, std::function<void(std::size_t)> counted = {});

 private:
  std::atomic<std::uint64_t> next_client_{1};
  std::uint64_t socket_prefix_ = 0;
  mutable std::mutex secrets_mu_;
  std::shared_ptr<const node_secrets> secrets_;
  std::mutex rng_mu_;
  std::uint64_t rng_;
};

}  // namespace pushwire::server

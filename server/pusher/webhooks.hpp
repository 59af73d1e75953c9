// Pusher webhooks (docs/pusher.md "Webhooks"): channel_occupied, channel_vacated, member_added,
// member_removed and client_event, POSTed to each app's webhook URLs as Pusher sends them —
// {"time_ms":..., "events":[...]}, Content-Type application/json, X-Pusher-Key and
// X-Pusher-Signature = HMAC-SHA256(secret, body) in hex.
//
// How it works: every call only builds the event's JSON and appends it, under one short mutex, to
// the queue of each of the app's webhooks that wants that kind; it never blocks and never does I/O,
// so I/O threads and the hub (under its interest lock) may call it. One thread of its own runs an
// io_context; per webhook one loop waits for events, lets more gather for `batch_ms` (or until
// `max_batch`), sends them in one request, and retries a failed request (connection refused,
// timeout, non-2xx status) with doubling backoff up to `attempts` times, then drops that batch.
// One request per webhook is in flight at a time, so a receiver sees its events in order.
// The queue is bounded in events across all webhooks: when full, the *newest* event is dropped (the
// queued ones keep their order; a receiver that is down that long is resynchronised by the API's
// channel queries anyway) and counted in pushwire_pusher_webhook_events_dropped_total.
// No networking header here (pimpl): the node holds a pointer to it.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "server/pusher/pusher_apps.hpp"

namespace pushwire::server {

class metrics;

struct webhook_options {
  std::uint64_t batch_ms = 50;        // events within this window share a request
  std::size_t max_batch = 50;         // events per request at most
  std::size_t max_queue = 10000;      // events waiting, all webhooks together
  unsigned attempts = 5;              // tries per request before its events are dropped
  std::uint64_t backoff_ms = 200;     // the first retry's delay; doubles, at most max_backoff_ms
  std::uint64_t max_backoff_ms = 30000;
  std::uint64_t timeout_ms = 5000;    // connect + request + response, per attempt
};

class pusher_webhooks {
 public:
  // `apps`: the apps whose webhooks are served (copied). `m`: the counters (outlives this).
  pusher_webhooks(const std::vector<pusher_app>& apps, webhook_options opt, metrics& m);
  ~pusher_webhooks();   // stop(0) if not stopped
  pusher_webhooks(const pusher_webhooks&) = delete;
  pusher_webhooks& operator=(const pusher_webhooks&) = delete;

  // Whether any of `apps` has a webhook (else there is nothing to start).
  static bool wanted(const std::vector<pusher_app>& apps);

  void start();   // the sending thread
  // Sends what is queued (no batch window, no retry past the deadline) and stops the thread
  // by `deadline` at the latest; what is left then is dropped. Idempotent.
  void stop(std::chrono::milliseconds deadline);

  // The events. `channel` is the Pusher channel name. Any thread; never blocks on I/O.
  void occupied(const pusher_app& app, std::string_view channel);
  void vacated(const pusher_app& app, std::string_view channel);
  void member_added(const pusher_app& app, std::string_view channel, std::string_view user_id);
  void member_removed(const pusher_app& app, std::string_view channel, std::string_view user_id);
  // `user_id` empty when unknown (only presence channels have one).
  void client_event(const pusher_app& app, std::string_view channel, std::string_view event, std::string_view data,
                    std::string_view socket_id, std::string_view user_id);
  // The hub's occupancy listener: routes a hub channel to the app that owns it (occupied/vacated).
  void hub_occupancy(std::string_view hub_channel, bool occupied);

  // Events waiting (tests).
  std::size_t queued() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace pushwire::server

// Server metrics: plain atomics that any thread bumps with memory_order_relaxed, rendered on demand
// as Prometheus text (exposition format 0.0.4) for /metrics and as JSON for /api/stats.
//
// Relaxed order is enough: each number is independent, and a scrape that sees one counter a few
// increments ahead of another is indistinguishable from a scrape taken a microsecond later.
// Gauges are unsigned; the owner pairs every fetch_add with exactly one fetch_sub.
#pragma once
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

namespace pushwire::server {

// A fixed-bucket latency histogram in microseconds; observe() is a few relaxed atomic adds.
class latency_histogram {
 public:
  // Upper bounds (inclusive, as Prometheus `le`) in microseconds; one more bucket holds +Inf.
  // 50 us .. 1 s: a publish reaching the socket within one event-loop turn lands in the first few,
  // a slow consumer or an overloaded loop in the last.
  static constexpr std::array<std::uint64_t, 14> bounds_us = {
      50, 100, 250, 500, 1'000, 2'500, 5'000, 10'000, 25'000, 50'000, 100'000, 250'000, 500'000, 1'000'000};
  static constexpr std::size_t bucket_count = bounds_us.size() + 1;

  void observe(std::uint64_t microseconds) noexcept;

  // Per-bucket (non-cumulative) counts; index bucket_count - 1 is the +Inf bucket.
  std::uint64_t bucket(std::size_t i) const noexcept { return buckets_[i].load(std::memory_order_relaxed); }
  // The count is the sum of the buckets, so a render's +Inf bucket always equals its _count.
  std::uint64_t count() const noexcept;
  std::uint64_t sum_us() const noexcept { return sum_us_.load(std::memory_order_relaxed); }

  // Index of the bucket a value falls into.
  static std::size_t bucket_index(std::uint64_t microseconds) noexcept;

 private:
  std::array<std::atomic<std::uint64_t>, bucket_count> buckets_{};
  std::atomic<std::uint64_t> sum_us_{0};
};

// A counter per protocol code over a fixed list, so the label set stays bounded whatever a peer
// sends (a WebSocket client picks its own close code): codes off the list count under "other".
class code_counters {
 public:
  // 0: an SSE client that left (no code); 1000-1011: WebSocket; 4000-4024: protocol/codes.hpp.
  static constexpr std::array<std::uint16_t, 8> low_codes = {0, 1000, 1001, 1002, 1006, 1008, 1009, 1011};
  static constexpr std::uint16_t first_protocol = 4000, last_protocol = 4024;
  static constexpr std::size_t size = low_codes.size() + (last_protocol - first_protocol + 1) + 1;   // + other
  static constexpr std::size_t other = size - 1;

  static std::size_t index(unsigned code) noexcept;
  // The label value of slot i ("other" for the last).
  static std::string label(std::size_t i);
  void add(unsigned code) noexcept { slots_[index(code)].fetch_add(1, std::memory_order_relaxed); }
  std::uint64_t at(std::size_t i) const noexcept { return slots_[i].load(std::memory_order_relaxed); }
  std::uint64_t of(unsigned code) const noexcept { return at(index(code)); }

 private:
  std::array<std::atomic<std::uint64_t>, size> slots_{};
};

// The transports, as the per-transport families label them.
enum class transport_kind : std::uint8_t { websocket, pusher, sse, polling };
inline constexpr std::size_t transport_count = 4;
inline constexpr std::array<const char*, transport_count> transport_names = {"websocket", "pusher", "sse", "polling"};

// The commands a shell executes against the hub (connect is decided in the session alone).
enum class command_metric : std::uint8_t { subscribe, unsubscribe, publish, history, presence };
inline constexpr std::size_t command_metric_count = 5;
inline constexpr std::array<const char*, command_metric_count> command_metric_names = {
    "subscribe", "unsubscribe", "publish", "history", "presence"};

class metrics {
 public:
  // gauges: current connections per transport
  std::atomic<std::uint64_t> connections_websocket{0};
  std::atomic<std::uint64_t> connections_pusher{0};   // the Pusher endpoint's WebSockets (docs/pusher.md)
  std::atomic<std::uint64_t> connections_sse{0};
  std::atomic<std::uint64_t> connections_polling{0};
  // counters
  std::atomic<std::uint64_t> connections_total{0};    // accepted since start, every transport
  std::atomic<std::uint64_t> connections_refused{0};  // limits, EMFILE, origin, auth
  // gauges
  std::atomic<std::uint64_t> subscriptions{0};
  std::atomic<std::uint64_t> channels{0};
  // counters
  std::atomic<std::uint64_t> messages_published{0};
  // One per subscriber a message was queued to, by the subscriber's transport: each shell bumps
  // its own transport's counter, so this costs what a single total did (one relaxed add).
  std::array<std::atomic<std::uint64_t>, transport_count> messages_delivered_by{};
  std::uint64_t messages_delivered() const noexcept;
  std::atomic<std::uint64_t> bytes_sent{0};
  std::atomic<std::uint64_t> sends_batched{0};   // writes handed to the kernel in a flush pass's io_uring batch
  std::atomic<std::uint64_t> slow_consumer_disconnects{0};
  std::atomic<std::uint64_t> recoveries{0};
  std::atomic<std::uint64_t> recoveries_failed{0};
  std::atomic<std::uint64_t> api_requests{0};
  std::atomic<std::uint64_t> api_errors{0};
  std::atomic<std::uint64_t> pusher_webhook_events_sent{0};
  std::atomic<std::uint64_t> pusher_webhook_events_dropped{0};   // the queue was full (or the sender stopped)
  std::atomic<std::uint64_t> pusher_webhook_events_failed{0};    // their request failed every attempt
  std::atomic<std::uint64_t> tls_handshake_failures{0};   // TLS connections that never got to HTTP
  // gauges
  std::atomic<std::uint64_t> parked_polls{0};
  std::atomic<std::uint64_t> history_bytes{0};   // stored at each scrape from the history store

  code_counters disconnects;      // WebSocket and SSE connections closed, by close code
  code_counters command_errors;   // error replies to commands, by error code
  // Hub commands from the shell's request to its completion, by command.
  std::array<latency_histogram, command_metric_count> command_latency;

  latency_histogram publish_to_write;

  // Prometheus text format 0.0.4; serve with Content-Type "text/plain; version=0.0.4; charset=utf-8".
  std::string render_prometheus() const;
  // One JSON object with the same numbers (see metrics.cpp for the field names).
  std::string render_json() const;
};

}  // namespace pushwire::server

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
  std::atomic<std::uint64_t> messages_delivered{0};   // one per subscriber a message was queued to
  std::atomic<std::uint64_t> bytes_sent{0};
  std::atomic<std::uint64_t> slow_consumer_disconnects{0};
  std::atomic<std::uint64_t> recoveries{0};
  std::atomic<std::uint64_t> recoveries_failed{0};
  std::atomic<std::uint64_t> api_requests{0};
  std::atomic<std::uint64_t> api_errors{0};
  std::atomic<std::uint64_t> pusher_webhook_events_sent{0};
  std::atomic<std::uint64_t> pusher_webhook_events_dropped{0};   // the queue was full (or the sender stopped)
  std::atomic<std::uint64_t> pusher_webhook_events_failed{0};    // their request failed every attempt
  std::atomic<std::uint64_t> tls_handshake_failures{0};   // TLS connections that never got to HTTP
  // gauge
  std::atomic<std::uint64_t> parked_polls{0};

  latency_histogram publish_to_write;

  // Prometheus text format 0.0.4; serve with Content-Type "text/plain; version=0.0.4; charset=utf-8".
  std::string render_prometheus() const;
  // One JSON object with the same numbers (see metrics.cpp for the field names).
  std::string render_json() const;
};

}  // namespace pushwire::server

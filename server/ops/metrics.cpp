#include "server/ops/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <string_view>

#include "server/ops/process_stats.hpp"
#include "server/ops/prometheus_text.hpp"
#include "server/ops/version.hpp"

namespace pushwire::server {
namespace {

using protocol::append_uint;
void append_u64(std::string& out, std::uint64_t v) { append_uint(out, v); }

std::uint64_t load(const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); }

void sample(std::string& out, std::string_view name, std::uint64_t v) {
  out += name;
  out += ' ';
  append_u64(out, v);
  out += '\n';
}

void simple(std::string& out, std::string_view name, std::string_view type, std::string_view help,
            std::uint64_t v) {
  family(out, name, type, help);
  sample(out, name, v);
}

}  // namespace

std::size_t latency_histogram::bucket_index(std::uint64_t microseconds) noexcept {
  auto it = std::lower_bound(bounds_us.begin(), bounds_us.end(), microseconds);
  return static_cast<std::size_t>(it - bounds_us.begin());  // == bounds_us.size() for +Inf
}

void latency_histogram::observe(std::uint64_t microseconds) noexcept {
  buckets_[bucket_index(microseconds)].fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(microseconds, std::memory_order_relaxed);
}

std::uint64_t latency_histogram::count() const noexcept {
  std::uint64_t n = 0;
  for (const auto& b : buckets_) n += b.load(std::memory_order_relaxed);
  return n;
}

std::string metrics::render_prometheus() const {
  std::string out;
  out.reserve(4096);

  family(out, "pushwire_build_info", "gauge", "The running build: version and commit (value 1).");
  out += "pushwire_build_info{version=\"";
  out += version;
  out += "\",commit=\"";
  out += build_commit;
  out += "\"} 1\n";

  family(out, "pushwire_connections", "gauge", "Open client connections by transport.");
  out += "pushwire_connections{transport=\"websocket\"} ";
  append_u64(out, load(connections_websocket));
  out += "\npushwire_connections{transport=\"pusher\"} ";
  append_u64(out, load(connections_pusher));
  out += "\npushwire_connections{transport=\"sse\"} ";
  append_u64(out, load(connections_sse));
  out += "\npushwire_connections{transport=\"polling\"} ";
  append_u64(out, load(connections_polling));
  out += '\n';

  // Not "pushwire_connections_total": in OpenMetrics that sample name belongs to a counter family
  // "pushwire_connections", which would clash with the gauge above.
  simple(out, "pushwire_connections_opened_total", "counter", "Client connections accepted since start.",
         load(connections_total));
  simple(out, "pushwire_connections_refused_total", "counter",
         "Client connections refused (limits, descriptors, origin, authentication).", load(connections_refused));
  simple(out, "pushwire_subscriptions", "gauge", "Current channel subscriptions over all connections.",
         load(subscriptions));
  simple(out, "pushwire_channels", "gauge", "Channels currently held by the hub.", load(channels));
  simple(out, "pushwire_messages_published_total", "counter", "Messages published.", load(messages_published));
  simple(out, "pushwire_messages_delivered_total", "counter", "Messages queued to subscribers.",
         load(messages_delivered));
  simple(out, "pushwire_bytes_sent_total", "counter", "Bytes written to client connections.", load(bytes_sent));
  simple(out, "pushwire_slow_consumer_disconnects_total", "counter",
         "Connections closed because their send queue exceeded its byte bound.", load(slow_consumer_disconnects));
  simple(out, "pushwire_recoveries_total", "counter", "Successful resumptions from history.", load(recoveries));
  simple(out, "pushwire_recoveries_failed_total", "counter",
         "Resumptions that could not be served from history.", load(recoveries_failed));
  simple(out, "pushwire_api_requests_total", "counter", "HTTP API requests.", load(api_requests));
  simple(out, "pushwire_api_errors_total", "counter", "HTTP API requests answered with an error.",
         load(api_errors));
  simple(out, "pushwire_pusher_webhook_events_sent_total", "counter", "Pusher webhook events delivered (2xx).",
         load(pusher_webhook_events_sent));
  simple(out, "pushwire_pusher_webhook_events_dropped_total", "counter",
         "Pusher webhook events dropped because the webhook queue was full (or the server stopped first).",
         load(pusher_webhook_events_dropped));
  simple(out, "pushwire_pusher_webhook_events_failed_total", "counter",
         "Pusher webhook events whose request failed every attempt.", load(pusher_webhook_events_failed));
  simple(out, "pushwire_tls_handshake_failures_total", "counter",
         "TLS connections closed before their handshake completed (bad client, timeout, no common cipher).",
         load(tls_handshake_failures));
  simple(out, "pushwire_parked_polls", "gauge", "Long-poll requests currently held open.", load(parked_polls));

  family(out, "pushwire_publish_to_write_seconds", "histogram",
         "Per subscriber write: time from the publish of its oldest frame to the completed write.");
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < latency_histogram::bucket_count; ++i) {
    cumulative += publish_to_write.bucket(i);
    out += "pushwire_publish_to_write_seconds_bucket{le=\"";
    if (i < latency_histogram::bounds_us.size())
      append_seconds(out, latency_histogram::bounds_us[i]);
    else
      out += "+Inf";
    out += "\"} ";
    append_u64(out, cumulative);
    out += '\n';
  }
  out += "pushwire_publish_to_write_seconds_sum ";
  append_seconds(out, publish_to_write.sum_us());
  out += "\npushwire_publish_to_write_seconds_count ";
  append_u64(out, cumulative);
  out += '\n';

  process_stats ps;
  read_process_stats(ps);
  render_process_stats(out, ps);
  return out;
}

std::string metrics::render_json() const {
  std::string out;
  out.reserve(1024);
  auto field = [&out](std::string_view name, std::uint64_t v) {
    out += '"';
    out += name;
    out += "\":";
    append_u64(out, v);
    out += ',';
  };
  out += "{\"connections\":{\"websocket\":";
  append_u64(out, load(connections_websocket));
  out += ",\"pusher\":";
  append_u64(out, load(connections_pusher));
  out += ",\"sse\":";
  append_u64(out, load(connections_sse));
  out += ",\"polling\":";
  append_u64(out, load(connections_polling));
  out += "},";
  field("connections_total", load(connections_total));
  field("connections_refused", load(connections_refused));
  field("subscriptions", load(subscriptions));
  field("channels", load(channels));
  field("messages_published", load(messages_published));
  field("messages_delivered", load(messages_delivered));
  field("bytes_sent", load(bytes_sent));
  field("slow_consumer_disconnects", load(slow_consumer_disconnects));
  field("recoveries", load(recoveries));
  field("recoveries_failed", load(recoveries_failed));
  field("api_requests", load(api_requests));
  field("api_errors", load(api_errors));
  field("pusher_webhook_events_sent", load(pusher_webhook_events_sent));
  field("pusher_webhook_events_dropped", load(pusher_webhook_events_dropped));
  field("pusher_webhook_events_failed", load(pusher_webhook_events_failed));
  field("tls_handshake_failures", load(tls_handshake_failures));
  field("parked_polls", load(parked_polls));
  // Buckets are cumulative like Prometheus; le_us null is +Inf.
  out += "\"publish_to_write\":{\"buckets\":[";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < latency_histogram::bucket_count; ++i) {
    cumulative += publish_to_write.bucket(i);
    if (i) out += ',';
    out += "{\"le_us\":";
    if (i < latency_histogram::bounds_us.size())
      append_u64(out, latency_histogram::bounds_us[i]);
    else
      out += "null";
    out += ",\"count\":";
    append_u64(out, cumulative);
    out += '}';
  }
  out += "],\"count\":";
  append_u64(out, cumulative);
  out += ",\"sum_us\":";
  append_u64(out, publish_to_write.sum_us());
  out += "}}";
  return out;
}

}  // namespace pushwire::server

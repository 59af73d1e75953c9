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

std::size_t code_counters::index(unsigned code) noexcept {
  if (code >= first_protocol && code <= last_protocol) return low_codes.size() + (code - first_protocol);
  for (std::size_t i = 0; i < low_codes.size(); ++i)
    if (low_codes[i] == code) return i;
  return other;
}

std::string code_counters::label(std::size_t i) {
  if (i == other) return "other";
  std::string out;
  append_u64(out, i < low_codes.size() ? low_codes[i] : first_protocol + (i - low_codes.size()));
  return out;
}

std::uint64_t metrics::messages_delivered() const noexcept {
  std::uint64_t n = 0;
  for (const auto& c : messages_delivered_by) n += c.load(std::memory_order_relaxed);
  return n;
}

namespace {

// A histogram family's samples; `labels` is empty or `name="value",` (with the trailing comma).
void histogram_samples(std::string& out, std::string_view name, std::string_view labels, const latency_histogram& h) {
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < latency_histogram::bucket_count; ++i) {
    cumulative += h.bucket(i);
    out += name;
    out += "_bucket{";
    out += labels;
    out += "le=\"";
    if (i < latency_histogram::bounds_us.size())
      append_seconds(out, latency_histogram::bounds_us[i]);
    else
      out += "+Inf";
    out += "\"} ";
    append_u64(out, cumulative);
    out += '\n';
  }
  std::string_view bare = labels.empty() ? labels : labels.substr(0, labels.size() - 1);
  out += name;
  out += "_sum";
  if (!bare.empty()) { out += '{'; out += bare; out += '}'; }
  out += ' ';
  append_seconds(out, h.sum_us());
  out += '\n';
  out += name;
  out += "_count";
  if (!bare.empty()) { out += '{'; out += bare; out += '}'; }
  out += ' ';
  append_u64(out, cumulative);
  out += '\n';
}

// Only the codes seen so far: an empty family is still announced (HELP, TYPE), as client
// libraries do for a labelled counter no label set of which has been used.
void code_samples(std::string& out, std::string_view name, const code_counters& c) {
  for (std::size_t i = 0; i < code_counters::size; ++i) {
    std::uint64_t v = c.at(i);
    if (!v) continue;
    out += name;
    out += "{code=\"";
    out += code_counters::label(i);
    out += "\"} ";
    append_u64(out, v);
    out += '\n';
  }
}

}  // namespace

std::string metrics::render_prometheus() const {
  std::string out;
  out.reserve(16384);

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
  family(out, "pushwire_messages_delivered_total", "counter",
         "Messages queued to subscribers (one per subscriber), by the subscriber's transport.");
  for (std::size_t i = 0; i < transport_count; ++i) {
    out += "pushwire_messages_delivered_total{transport=\"";
    out += transport_names[i];
    out += "\"} ";
    append_u64(out, load(messages_delivered_by[i]));
    out += '\n';
  }
  simple(out, "pushwire_bytes_sent_total", "counter", "Bytes written to client connections.", load(bytes_sent));
  simple(out, "pushwire_sends_batched_total", "counter",
         "Writes handed to the kernel together with the rest of a flush pass (io_uring).", load(sends_batched));
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
  simple(out, "pushwire_history_bytes", "gauge", "Bytes of publications held in channel history.",
         load(history_bytes));

  family(out, "pushwire_disconnects_total", "counter",
         "WebSocket and SSE connections closed, by close code (0: an SSE client left; 1006: gone without a close "
         "frame; other: a code off the fixed list).");
  code_samples(out, "pushwire_disconnects_total", disconnects);
  family(out, "pushwire_command_errors_total", "counter", "Commands answered with an error, by error code.");
  code_samples(out, "pushwire_command_errors_total", command_errors);

  family(out, "pushwire_command_duration_seconds", "histogram",
         "Commands executed against the hub, from request to completion, by command.");
  for (std::size_t i = 0; i < command_metric_count; ++i) {
    std::string labels = "command=\"";
    labels += command_metric_names[i];
    labels += "\",";
    histogram_samples(out, "pushwire_command_duration_seconds", labels, command_latency[i]);
  }

  family(out, "pushwire_publish_to_write_seconds", "histogram",
         "Per subscriber write: time from the publish of its oldest frame to the completed write.");
  histogram_samples(out, "pushwire_publish_to_write_seconds", "", publish_to_write);

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
  field("messages_delivered", messages_delivered());
  field("history_bytes", load(history_bytes));
  field("bytes_sent", load(bytes_sent));
  field("sends_batched", load(sends_batched));
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

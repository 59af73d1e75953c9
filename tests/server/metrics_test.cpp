#include "server/ops/metrics.hpp"
#include "server/ops/config.hpp"
#include "server/ops/version.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace pushwire::server;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Sample name (with labels) -> value text, e.g. "pushwire_channels" -> "3".
std::map<std::string, std::string> samples_of(const std::string& text) {
  std::map<std::string, std::string> out;
  for (const std::string& line : lines_of(text)) {
    if (line.empty() || line[0] == '#') continue;
    std::size_t sp = line.rfind(' ');
    out[line.substr(0, sp)] = line.substr(sp + 1);
  }
  return out;
}

metrics& filled(metrics& m) {
  m.connections_websocket = 3;
  m.connections_sse = 2;
  m.connections_polling = 1;
  m.connections_total = 100;
  m.connections_refused = 4;
  m.subscriptions = 7;
  m.channels = 5;
  m.messages_published = 11;
  m.messages_delivered_by[0] = 20;   // websocket
  m.messages_delivered_by[2] = 2;    // sse
  m.history_bytes = 4096;
  m.bytes_sent = 123456789012ull;
  m.slow_consumer_disconnects = 1;
  m.recoveries = 9;
  m.recoveries_failed = 2;
  m.api_requests = 13;
  m.api_errors = 3;
  m.parked_polls = 6;
  m.disconnects.add(4008);
  m.disconnects.add(1000);
  m.disconnects.add(1000);
  m.command_errors.add(4002);
  m.command_latency[static_cast<std::size_t>(command_metric::publish)].observe(300);
  return m;
}

}  // namespace

TEST(Metrics, RendersEveryNumber) {
  metrics m;
  auto s = samples_of(filled(m).render_prometheus());
  EXPECT_EQ(s["pushwire_connections{transport=\"websocket\"}"], "3");
  EXPECT_EQ(s["pushwire_connections{transport=\"sse\"}"], "2");
  EXPECT_EQ(s["pushwire_connections{transport=\"polling\"}"], "1");
  EXPECT_EQ(s["pushwire_connections_opened_total"], "100");
  EXPECT_EQ(s["pushwire_connections_refused_total"], "4");
  EXPECT_EQ(s["pushwire_subscriptions"], "7");
  EXPECT_EQ(s["pushwire_channels"], "5");
  EXPECT_EQ(s["pushwire_messages_published_total"], "11");
  EXPECT_EQ(s["pushwire_messages_delivered_total{transport=\"websocket\"}"], "20");
  EXPECT_EQ(s["pushwire_messages_delivered_total{transport=\"pusher\"}"], "0");
  EXPECT_EQ(s["pushwire_messages_delivered_total{transport=\"sse\"}"], "2");
  EXPECT_EQ(s["pushwire_messages_delivered_total{transport=\"polling\"}"], "0");
  EXPECT_EQ(s["pushwire_history_bytes"], "4096");
  EXPECT_EQ(s["pushwire_bytes_sent_total"], "123456789012");
  EXPECT_EQ(s["pushwire_slow_consumer_disconnects_total"], "1");
  EXPECT_EQ(s["pushwire_recoveries_total"], "9");
  EXPECT_EQ(s["pushwire_recoveries_failed_total"], "2");
  EXPECT_EQ(s["pushwire_api_requests_total"], "13");
  EXPECT_EQ(s["pushwire_api_errors_total"], "3");
  EXPECT_EQ(s["pushwire_parked_polls"], "6");
  EXPECT_EQ(s["pushwire_publish_to_write_seconds_count"], "0");
  EXPECT_EQ(s["pushwire_publish_to_write_seconds_sum"], "0");
  EXPECT_EQ(s["pushwire_publish_to_write_seconds_bucket{le=\"+Inf\"}"], "0");
}

TEST(Metrics, CountersFollowIncrements) {
  metrics m;
  m.messages_published.fetch_add(1, std::memory_order_relaxed);
  m.messages_published.fetch_add(1, std::memory_order_relaxed);
  m.connections_sse.fetch_add(1, std::memory_order_relaxed);
  m.connections_sse.fetch_add(1, std::memory_order_relaxed);
  m.connections_sse.fetch_sub(1, std::memory_order_relaxed);
  auto s = samples_of(m.render_prometheus());
  EXPECT_EQ(s["pushwire_messages_published_total"], "2");
  EXPECT_EQ(s["pushwire_connections{transport=\"sse\"}"], "1");
  EXPECT_EQ(s["pushwire_connections{transport=\"websocket\"}"], "0");
}

TEST(Histogram, BucketBoundariesAreInclusive) {
  using h = latency_histogram;
  EXPECT_EQ(h::bucket_index(0), 0u);
  EXPECT_EQ(h::bucket_index(50), 0u);
  EXPECT_EQ(h::bucket_index(51), 1u);
  EXPECT_EQ(h::bucket_index(100), 1u);
  EXPECT_EQ(h::bucket_index(999), 4u);
  EXPECT_EQ(h::bucket_index(1000), 4u);
  EXPECT_EQ(h::bucket_index(1'000'000), 13u);
  EXPECT_EQ(h::bucket_index(1'000'001), 14u);
  EXPECT_EQ(h::bucket_index(UINT64_MAX), 14u);
  EXPECT_EQ(h::bucket_count, 15u);
}

TEST(Histogram, RendersCumulativeBucketsSumAndCount) {
  metrics m;
  for (std::uint64_t v : {10u, 50u, 75u, 1000u, 2000u, 3'000'000u}) m.publish_to_write.observe(v);
  EXPECT_EQ(m.publish_to_write.count(), 6u);
  EXPECT_EQ(m.publish_to_write.sum_us(), 3'003'135u);
  EXPECT_EQ(m.publish_to_write.bucket(0), 2u);
  EXPECT_EQ(m.publish_to_write.bucket(1), 1u);
  EXPECT_EQ(m.publish_to_write.bucket(14), 1u);

  auto s = samples_of(m.render_prometheus());
  auto bucket = [&](const char* le) { return s["pushwire_publish_to_write_seconds_bucket{le=\"" + std::string(le) + "\"}"]; };
  EXPECT_EQ(bucket("0.00005"), "2");
  EXPECT_EQ(bucket("0.0001"), "3");
  EXPECT_EQ(bucket("0.00025"), "3");
  EXPECT_EQ(bucket("0.0005"), "3");
  EXPECT_EQ(bucket("0.001"), "4");
  EXPECT_EQ(bucket("0.0025"), "5");
  EXPECT_EQ(bucket("0.5"), "5");
  EXPECT_EQ(bucket("1"), "5");
  EXPECT_EQ(bucket("+Inf"), "6");
  EXPECT_EQ(s["pushwire_publish_to_write_seconds_count"], "6");
  EXPECT_EQ(s["pushwire_publish_to_write_seconds_sum"], "3.003135");
}

TEST(Histogram, ConcurrentObservationsAreAllCounted) {
  metrics m;
  constexpr int threads = 4, per_thread = 20000;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&m, t] {
      for (int i = 0; i < per_thread; ++i) {
        m.publish_to_write.observe(static_cast<std::uint64_t>((i * 7919 + t) % 2'000'000));
        m.messages_delivered_by[static_cast<std::size_t>(t) % transport_count].fetch_add(1, std::memory_order_relaxed);
      }
    });
  for (auto& th : pool) th.join();
  EXPECT_EQ(m.publish_to_write.count(), std::uint64_t{threads * per_thread});
  EXPECT_EQ(m.messages_delivered(), std::uint64_t{threads * per_thread});
  std::uint64_t expected_sum = 0;
  for (int t = 0; t < threads; ++t)
    for (int i = 0; i < per_thread; ++i) expected_sum += static_cast<std::uint64_t>((i * 7919 + t) % 2'000'000);
  EXPECT_EQ(m.publish_to_write.sum_us(), expected_sum);
}

TEST(Metrics, OutputIsPrometheusText) {
  metrics m;
  filled(m);
  m.publish_to_write.observe(120);
  m.publish_to_write.observe(7'000'000);
  std::string text = m.render_prometheus();
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');  // the format requires a final line feed

  const std::regex help(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) [^\n]+$)");
  const std::regex type(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  const std::regex sample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*\})? (\+Inf|-Inf|NaN|-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?)$)");

  std::map<std::string, std::string> types;  // family -> type
  std::set<std::string> helped;
  std::string current_family;
  // Per histogram series (family and labels other than le): its bounds and cumulative counts.
  std::map<std::string, std::vector<double>> les;
  std::map<std::string, std::vector<std::uint64_t>> cumulative;
  std::size_t samples = 0;
  for (const std::string& line : lines_of(text)) {
    SCOPED_TRACE(line);
    std::smatch mt;
    if (std::regex_match(line, mt, help)) {
      EXPECT_TRUE(helped.insert(mt[1]).second) << "HELP twice";
      // Ours, or the process families every Prometheus client exports under their standard names.
      EXPECT_TRUE(mt[1].str().starts_with("pushwire_") || mt[1].str().starts_with("process_"));
      continue;
    }
    if (std::regex_match(line, mt, type)) {
      EXPECT_TRUE(types.emplace(mt[1], mt[2]).second) << "TYPE twice";
      EXPECT_TRUE(helped.contains(mt[1])) << "HELP precedes TYPE";
      current_family = mt[1];
      EXPECT_EQ(mt[2] == "counter", current_family.ends_with("_total"));
      continue;
    }
    ASSERT_TRUE(std::regex_match(line, mt, sample)) << "not a valid line";
    ++samples;
    std::string name = mt[1];
    // Every sample belongs to the family whose TYPE line came last.
    if (types[current_family] == "histogram") {
      EXPECT_TRUE(name == current_family + "_bucket" || name == current_family + "_sum" ||
                  name == current_family + "_count");
      if (name == current_family + "_bucket") {
        std::smatch le;
        std::string labels = mt[2];
        ASSERT_TRUE(std::regex_match(labels, le, std::regex(R"re(^\{(command="[a-z]+",)?le="([^"]+)"\}$)re")));
        std::string series = current_family + le[1].str();
        les[series].push_back(le[2] == "+Inf" ? INFINITY : std::stod(le[2]));
        cumulative[series].push_back(std::stoull(mt[4]));
      }
    } else {
      EXPECT_EQ(name, current_family);
    }
  }
  // build info, 4 connection gauges, 17 simple, 4 delivered by transport, history bytes, 2 disconnect
  // codes and 1 command error code seen (filled() sets them), 6 histograms of 15 buckets + sum and
  // count, 5 process families
  EXPECT_EQ(samples, 1u + 4u + 17u + 4u + 1u + 2u + 1u + 6u * (15u + 2u) + 5u);
  ASSERT_EQ(les.size(), 6u);
  for (auto& [series, l] : les) {
    SCOPED_TRACE(series);
    ASSERT_EQ(l.size(), 15u);
    auto& c = cumulative[series];
    for (std::size_t i = 1; i < l.size(); ++i) {
      EXPECT_LT(l[i - 1], l[i]);
      EXPECT_LE(c[i - 1], c[i]);
    }
    EXPECT_EQ(l.back(), INFINITY);
  }
  EXPECT_EQ(cumulative["pushwire_publish_to_write_seconds"].back(), 2u);
  EXPECT_EQ(cumulative["pushwire_command_duration_secondscommand=\"publish\","].back(), 1u);
  EXPECT_EQ(types["pushwire_connections"], "gauge");
  EXPECT_EQ(types["pushwire_publish_to_write_seconds"], "histogram");
  EXPECT_EQ(types["pushwire_command_duration_seconds"], "histogram");
  EXPECT_EQ(types["pushwire_disconnects_total"], "counter");
  EXPECT_EQ(types["pushwire_command_errors_total"], "counter");
  EXPECT_EQ(types["pushwire_history_bytes"], "gauge");
  EXPECT_EQ(types["pushwire_bytes_sent_total"], "counter");
}

TEST(Metrics, JsonCarriesTheSameNumbers) {
  metrics m;
  filled(m);
  m.publish_to_write.observe(60);
  m.publish_to_write.observe(2'000'000);
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(m.render_json(), ec);
  ASSERT_FALSE(ec) << m.render_json();
  const boost::json::object& o = v.as_object();
  EXPECT_EQ(o.at("connections").at("websocket").to_number<std::uint64_t>(), 3u);
  EXPECT_EQ(o.at("connections").at("sse").to_number<std::uint64_t>(), 2u);
  EXPECT_EQ(o.at("connections").at("polling").to_number<std::uint64_t>(), 1u);
  EXPECT_EQ(o.at("connections_total").to_number<std::uint64_t>(), 100u);
  EXPECT_EQ(o.at("bytes_sent").to_number<std::uint64_t>(), 123456789012ull);
  EXPECT_EQ(o.at("parked_polls").to_number<std::uint64_t>(), 6u);
  EXPECT_EQ(o.at("api_errors").to_number<std::uint64_t>(), 3u);
  for (const char* key : {"connections_refused", "subscriptions", "channels", "messages_published",
                          "messages_delivered", "slow_consumer_disconnects", "recoveries", "recoveries_failed",
                          "api_requests"})
    EXPECT_TRUE(o.contains(key)) << key;
  const boost::json::object& h = o.at("publish_to_write").as_object();
  EXPECT_EQ(h.at("count").to_number<std::uint64_t>(), 2u);
  EXPECT_EQ(h.at("sum_us").to_number<std::uint64_t>(), 2'000'060u);
  const boost::json::array& b = h.at("buckets").as_array();
  ASSERT_EQ(b.size(), 15u);
  EXPECT_EQ(b[0].at("le_us").to_number<std::uint64_t>(), 50u);
  EXPECT_EQ(b[0].at("count").to_number<std::uint64_t>(), 0u);
  EXPECT_EQ(b[1].at("count").to_number<std::uint64_t>(), 1u);
  EXPECT_TRUE(b[14].at("le_us").is_null());
  EXPECT_EQ(b[14].at("count").to_number<std::uint64_t>(), 2u);
}

TEST(Metrics, BuildInfoNamesTheVersionAndCommit) {
  metrics m;
  auto text = m.render_prometheus();
  std::string want = std::string("pushwire_build_info{version=\"") + version + "\",commit=\"" + build_commit + "\"} 1\n";
  EXPECT_NE(text.find(want), std::string::npos) << text;
  EXPECT_NE(std::string(version).find('.'), std::string::npos);
}

TEST(ServerConfigVersion, VersionFlagAsksForTheVersion) {
  const char* argv[] = {"pushwire-server", "--version"};
  auto r = parse_config(2, argv, {});
  EXPECT_TRUE(r.version);
  EXPECT_FALSE(r.help);
}

TEST(Metrics, CodeLabelsComeFromAFixedList) {
  // Every protocol code 4000-4024 and the WebSocket codes the server sees have their own slot; any
  // other number a peer sends (a WebSocket close code is the client's choice) shares "other", so
  // the label set stays bounded.
  EXPECT_EQ(code_counters::label(code_counters::index(4008)), "4008");
  EXPECT_EQ(code_counters::label(code_counters::index(4000)), "4000");
  EXPECT_EQ(code_counters::label(code_counters::index(4024)), "4024");
  EXPECT_EQ(code_counters::label(code_counters::index(1006)), "1006");
  EXPECT_EQ(code_counters::label(code_counters::index(0)), "0");
  for (unsigned c : {1u, 999u, 1005u, 3000u, 3999u, 4025u, 4099u, 4999u, 65535u})
    EXPECT_EQ(code_counters::index(c), code_counters::other) << c;
  std::set<std::string> labels;
  for (std::size_t i = 0; i < code_counters::size; ++i) EXPECT_TRUE(labels.insert(code_counters::label(i)).second);

  metrics m;
  m.disconnects.add(4008);
  m.disconnects.add(4008);
  m.disconnects.add(3001);
  m.disconnects.add(4777);
  m.command_errors.add(4012);
  auto s = samples_of(m.render_prometheus());
  EXPECT_EQ(s["pushwire_disconnects_total{code=\"4008\"}"], "2");
  EXPECT_EQ(s["pushwire_disconnects_total{code=\"other\"}"], "2");
  EXPECT_EQ(s["pushwire_command_errors_total{code=\"4012\"}"], "1");
  EXPECT_FALSE(s.contains("pushwire_disconnects_total{code=\"4012\"}"));   // only codes seen
}

TEST(Metrics, CommandLatencyHasOneHistogramPerCommand) {
  metrics m;
  m.command_latency[static_cast<std::size_t>(command_metric::subscribe)].observe(40);
  m.command_latency[static_cast<std::size_t>(command_metric::subscribe)].observe(2'000);
  m.command_latency[static_cast<std::size_t>(command_metric::history)].observe(2'000'000);
  auto s = samples_of(m.render_prometheus());
  auto key = [](const char* cmd, const char* suffix, const char* le = nullptr) {
    std::string k = "pushwire_command_duration_seconds";
    k += suffix;
    k += "{command=\"";
    k += cmd;
    k += '"';
    if (le) { k += ",le=\""; k += le; k += '"'; }
    k += '}';
    return k;
  };
  EXPECT_EQ(s[key("subscribe", "_bucket", "0.00005")], "1");
  EXPECT_EQ(s[key("subscribe", "_bucket", "0.0025")], "2");
  EXPECT_EQ(s[key("subscribe", "_count")], "2");
  EXPECT_EQ(s[key("subscribe", "_sum")], "0.00204");
  EXPECT_EQ(s[key("history", "_bucket", "1")], "0");
  EXPECT_EQ(s[key("history", "_bucket", "+Inf")], "1");
  EXPECT_EQ(s[key("publish", "_count")], "0");
  for (const char* cmd : {"subscribe", "unsubscribe", "publish", "history", "presence"})
    EXPECT_TRUE(s.contains(key(cmd, "_count"))) << cmd;
}

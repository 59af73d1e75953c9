// pushwire_connections_refused_total counts each refused connection exactly once at the descriptor
// cap (issue 18, defect 6: accept() fails with EMFILE also when no connection waits, and that
// failure was counted as a refusal too, about twice the real number). The server binary runs under
// RLIMIT_NOFILE 64 with a connection limit above it, so the refusals come from EMFILE.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/server/spawned_server.hpp"
#include "tests/server/test_client.hpp"

namespace {

using namespace test;

std::uint64_t refused_total(tcp::socket& api, beast::flat_buffer& buf) {
  http::request<http::empty_body> req{http::verb::get, "/metrics", 11};
  req.set(http::field::host, "x");
  http::write(api, req);
  http::response<http::string_body> res;
  http::read(api, buf, res);
  const std::string key = "\npushwire_connections_refused_total ";
  auto at = res.body().find(key);
  if (at == std::string::npos) return UINT64_MAX;
  return std::stoull(res.body().substr(at + key.size()));
}

TEST(RefusedMetric, EachRefusalAtTheDescriptorCapCountsOnce) {
  spawned_server srv({"--api-key", "k", "--log-level", "warn", "--threads", "2", "--max-connections", "1000",
                      "--shutdown-timeout-ms", "300"},
                     64);
  ASSERT_NE(srv.port, 0) << srv.log();
  net::io_context ioc;
  auto api = connect_socket(ioc, srv.port);   // opened first: it keeps working at the cap
  beast::flat_buffer api_buf;
  ASSERT_EQ(refused_total(api, api_buf), 0u);

  // Fill the descriptor table with served keep-alive connections until one is refused.
  std::vector<tcp::socket> held;
  bool refused = false;
  for (int i = 0; i < 200 && !refused; ++i) {
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), srv.port));
    set_timeout(s, 5000);
    beast::error_code ec;
    http::request<http::empty_body> req{http::verb::get, "/healthz", 11};
    req.set(http::field::host, "x");
    http::write(s, req, ec);
    beast::flat_buffer b;
    http::response<http::string_body> res;
    http::read(s, b, res, ec);
    if (!ec && res.result_int() == 200) held.push_back(std::move(s));
    else refused = true;
  }
  ASSERT_TRUE(refused) << "never refused after " << held.size() << " connections";
  auto before = refused_total(api, api_buf);
  ASSERT_GE(before, 1u);

  // Now exactly `attempts` more connections, one at a time; each is answered 503 unasked (no
  // request is sent, so nothing is left unread when the server closes).
  const int attempts = 20;
  for (int i = 0; i < attempts; ++i) {
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), srv.port));
    beast::flat_buffer b;
    http::response<http::string_body> res;
    beast::error_code ec;
    run_with_deadline(ioc, s, 5000, ec, [&](auto h) { http::async_read(s, b, res, std::move(h)); });
    ASSERT_FALSE(ec) << i << ": " << ec.message();
    ASSERT_EQ(res.result_int(), 503u) << i;
    ASSERT_NE(res.body().find("4015"), std::string::npos) << res.body();
  }
  // The acceptor counts right after writing the answer, so the last count may trail the last 503
  // by a moment: wait for it with a deadline.
  std::uint64_t after = 0;
  EXPECT_TRUE(eventually([&] { return (after = refused_total(api, api_buf)) >= before + attempts; }, std::chrono::seconds(3)));
  EXPECT_EQ(after, before + attempts);
  // And no refusal is counted while nothing is attempted: the accept loop waits quietly.
  EXPECT_EQ(refused_total(api, api_buf), before + attempts);
}

}  // namespace

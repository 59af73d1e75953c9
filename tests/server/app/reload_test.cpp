// server::reload (SIGHUP): the keys swap while I/O threads check them. Two client threads keep
// calling the API and verifying tokens (SSE opens) while the main thread reloads new keys; after
// each reload the new key and secret work and the old ones are refused. Under ThreadSanitizer
// (build-tsan) this is the data-race check of node::secrets()/set_secrets().
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "server/app/server.hpp"
#include "server/ops/jwt.hpp"
#include "tests/server/test_client.hpp"

namespace {

namespace ps = pushwire::server;
using namespace test;

ps::config base_config() {
  ps::config c;
  c.port = 0;
  c.threads = 2;
  c.api_key = "key-0";
  c.token_secret = "secret-0";
  c.log_level = "error";
  c.housekeeping_ms = 20;
  c.shutdown_timeout_ms = 500;
  return c;
}

std::string token_for(const std::string& secret) {
  ps::token_claims claims;
  claims.user = "u";
  claims.exp = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count() + 600;
  return ps::sign_jwt(claims, secret);
}

std::string numbered(const char* prefix, int i) {
  std::string s = prefix;   // (+=: g++ 12 warns falsely on "x" + std::string, -Wrestrict)
  s += std::to_string(i);
  return s;
}

unsigned sse_status(unsigned short port, const std::string& token) {
  std::string target = "/sse?channels=r&token=";
  target += token;
  sse_client c(port, target);
  return c.status;
}

TEST(Reload, KeysSwapUnderConcurrentRequests) {
  ps::server srv(base_config());
  std::string err;
  ASSERT_TRUE(srv.start(err)) << err;
  auto port = srv.port();

  std::atomic<bool> stop{false};
  std::atomic<int> calls{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 2; ++t)
    clients.emplace_back([&, t] {
      while (!stop) {
        api_get(port, "/api/info", t ? srv.api_key() : "key-0");
        ++calls;
      }
    });

  for (int i = 1; i <= 10; ++i) {
    auto fresh = base_config();
    fresh.api_key = numbered("key-", i);
    fresh.token_secret = numbered("secret-", i);
    srv.reload(fresh);
    EXPECT_EQ(srv.api_key(), fresh.api_key);
    EXPECT_EQ(api_get(port, "/api/info", fresh.api_key).status, 200u) << i;
    EXPECT_EQ(api_get(port, "/api/info", numbered("key-", i - 1)).status, 401u) << i;
    EXPECT_EQ(sse_status(port, token_for(fresh.token_secret)), 200u) << i;
    EXPECT_EQ(sse_status(port, token_for(numbered("secret-", i - 1))), 401u) << i;
  }
  stop = true;
  for (auto& c : clients) c.join();
  EXPECT_GT(calls.load(), 0);
  srv.shutdown();
}

}  // namespace

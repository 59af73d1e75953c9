// server/ops/trusted_proxies: the CIDR list of --trusted-proxy and the X-Forwarded-For rule.
#include "server/ops/trusted_proxies.hpp"
#include "server/ops/config.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

using namespace pushwire::server;

namespace {
std::vector<cidr> ranges(const char* list) {
  std::vector<cidr> out;
  std::string why;
  EXPECT_TRUE(parse_cidr_list(list, out, why)) << why;
  return out;
}
bool trusted(const std::vector<cidr>& r, const char* ip) {
  std::array<unsigned char, 16> a;
  EXPECT_TRUE(parse_ip(ip, a)) << ip;
  return in_ranges(r, a);
}
}  // namespace

TEST(TrustedProxies, ParsesIpv4AndIpv6Ranges) {
  auto r = ranges("10.0.0.0/8, 192.168.1.7 ,::1/128,fd00::/8,172.16.0.0/12");
  ASSERT_EQ(r.size(), 5u);
  EXPECT_TRUE(trusted(r, "10.255.3.4"));
  EXPECT_FALSE(trusted(r, "11.0.0.1"));
  EXPECT_TRUE(trusted(r, "192.168.1.7"));
  EXPECT_FALSE(trusted(r, "192.168.1.8"));
  EXPECT_TRUE(trusted(r, "::1"));
  EXPECT_FALSE(trusted(r, "::2"));
  EXPECT_TRUE(trusted(r, "fdab::1"));
  EXPECT_FALSE(trusted(r, "fe80::1"));
  EXPECT_TRUE(trusted(r, "172.31.255.255"));
  EXPECT_FALSE(trusted(r, "172.32.0.0"));
  // A dual-stack socket reports an IPv4 peer as mapped IPv6: the IPv4 range still matches it.
  EXPECT_TRUE(trusted(r, "::ffff:10.1.2.3"));
  EXPECT_TRUE(ranges("0.0.0.0/0").size() == 1 && trusted(ranges("0.0.0.0/0"), "8.8.8.8"));
  EXPECT_FALSE(trusted(ranges("0.0.0.0/0"), "2001:db8::1"));
  EXPECT_TRUE(ranges("").empty());
}

TEST(TrustedProxies, RefusesMalformedListsAndBoundsTheCount) {
  std::vector<cidr> out;
  std::string why;
  for (const char* bad : {"10.0.0.0/33", "::/129", "10.0.0.1/8", "not-an-ip", "10.0.0.0/", "10.0.0.0/x", "1.2.3/24",
                          "[::1]", "10.0.0.0/8/8"}) {
    EXPECT_FALSE(parse_cidr_list(bad, out, why)) << bad;
    EXPECT_FALSE(why.empty());
  }
  std::string many;
  for (std::size_t i = 0; i <= max_trusted_proxies; ++i) {
    if (!many.empty()) many += ',';
    many += "10.0." + std::to_string(i) + ".0/24";
  }
  EXPECT_FALSE(parse_cidr_list(many, out, why));
  EXPECT_NE(why.find("more than"), std::string::npos) << why;
  many.resize(many.rfind(','));
  EXPECT_TRUE(parse_cidr_list(many, out, why)) << why;
  EXPECT_EQ(out.size(), max_trusted_proxies);
}

TEST(TrustedProxies, TheRightMostUntrustedEntryIsTheClient) {
  auto r = ranges("127.0.0.1, 10.0.0.0/8");
  // An untrusted peer: the header is ignored, whatever it says.
  EXPECT_EQ(client_address(r, "203.0.113.9", "198.51.100.1"), "203.0.113.9");
  // No ranges: ignored too.
  EXPECT_EQ(client_address({}, "127.0.0.1", "198.51.100.1"), "127.0.0.1");
  // A trusted peer: the entry it appended.
  EXPECT_EQ(client_address(r, "127.0.0.1", "198.51.100.1"), "198.51.100.1");
  // A forged entry left of the real one is not taken.
  EXPECT_EQ(client_address(r, "127.0.0.1", "1.2.3.4, 198.51.100.1"), "198.51.100.1");
  // Trusted hops are skipped (a CDN's edge in 10/8 in front of our proxy).
  EXPECT_EQ(client_address(r, "127.0.0.1", "1.2.3.4, 198.51.100.1, 10.1.1.1"), "198.51.100.1");
  // Several header fields are one list.
  EXPECT_EQ(client_address(r, "127.0.0.1", "198.51.100.1,10.2.2.2"), "198.51.100.1");
  // Every entry trusted: the left-most.
  EXPECT_EQ(client_address(r, "127.0.0.1", "10.9.9.9, 127.0.0.1"), "10.9.9.9");
  // Empty header: the peer.
  EXPECT_EQ(client_address(r, "127.0.0.1", ""), "127.0.0.1");
  EXPECT_EQ(client_address(r, "127.0.0.1", " , "), "127.0.0.1");
  // Garbage where a trusted proxy would have written an address ends the walk at the nearest
  // trusted address; garbage further left is never reached.
  EXPECT_EQ(client_address(r, "127.0.0.1", "unknown"), "127.0.0.1");
  EXPECT_EQ(client_address(r, "127.0.0.1", "1.2.3.4:80, 10.3.3.3"), "10.3.3.3");
  EXPECT_EQ(client_address(r, "127.0.0.1", "<script>, 198.51.100.1"), "198.51.100.1");
  // Canonical text, never the header's bytes.
  EXPECT_EQ(client_address(r, "127.0.0.1", " 2001:DB8:0:0::1 "), "2001:db8::1");
  EXPECT_EQ(client_address(r, "127.0.0.1", "::ffff:198.51.100.1"), "198.51.100.1");
  // A mapped trusted peer (dual-stack listener).
  EXPECT_EQ(client_address(r, "::ffff:127.0.0.1", "198.51.100.1"), "198.51.100.1");
}

TEST(TrustedProxies, TheFlagEnvAndConfigKeySetIt) {
  const char* argv[] = {"pushwire-server", "--trusted-proxy", "127.0.0.1/32,::1"};
  auto r = parse_config(3, argv, {});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.cfg.trusted_proxies.size(), 2u);
  const char* bad[] = {"pushwire-server", "--trusted-proxy", "127.0.0.1/40"};
  EXPECT_FALSE(parse_config(3, bad, {}).ok);
  const char* none[] = {"pushwire-server"};
  auto e = parse_config(1, none, {{"PUSHWIRE_TRUSTED_PROXY", "10.0.0.0/8"}});
  ASSERT_TRUE(e.ok) << e.error;
  EXPECT_EQ(e.cfg.trusted_proxies.size(), 1u);
  EXPECT_TRUE(parse_config(1, none, {}).cfg.trusted_proxies.empty());
  // The config file: a string or an array of ranges.
  auto path = std::string(::testing::TempDir()) + "/pw_trusted_proxy.json";
  std::ofstream(path) << R"({"trusted-proxy":["10.0.0.0/8","fd00::/8","127.0.0.1"]})";
  const char* file[] = {"pushwire-server", "--config", path.c_str()};
  auto f = parse_config(3, file, {});
  ASSERT_TRUE(f.ok) << f.error;
  EXPECT_EQ(f.cfg.trusted_proxies.size(), 3u);
  std::ofstream(path) << R"({"trusted_proxy":"10.0.0.1/8"})";   // host bits set
  EXPECT_FALSE(parse_config(3, file, {}).ok);
}

TEST(AdminPort, OffByDefaultZeroIsAnyPort) {
  const char* none[] = {"pushwire-server"};
  EXPECT_EQ(parse_config(1, none, {}).cfg.admin_port, -1);
  const char* any[] = {"pushwire-server", "--admin-port", "0"};
  EXPECT_EQ(parse_config(3, any, {}).cfg.admin_port, 0);
  const char* bad[] = {"pushwire-server", "--admin-port", "70000"};
  EXPECT_FALSE(parse_config(3, bad, {}).ok);
  EXPECT_EQ(parse_config(1, none, {}).cfg.admin_address, "127.0.0.1");
}

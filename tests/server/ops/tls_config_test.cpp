// --tls-cert / --tls-key and --readiness-drain-ms enter like every option (flag > env > file), and
// the TLS pair is all or nothing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "server/ops/config.hpp"

namespace ps = pushwire::server;

TEST(OpsConfig, TlsFilesFromFlagsEnvAndFile) {
  const char* flags[] = {"x", "--tls-cert", "/c.pem", "--tls-key", "/k.pem", "--readiness-drain-ms", "1500"};
  auto r = ps::parse_config(7, flags, {});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.cfg.tls_cert, "/c.pem");
  EXPECT_EQ(r.cfg.tls_key, "/k.pem");
  EXPECT_EQ(r.cfg.readiness_drain_ms, 1500u);

  const char* none[] = {"x"};
  r = ps::parse_config(1, none, {{"PUSHWIRE_TLS_CERT", "/e.pem"}, {"PUSHWIRE_TLS_KEY", "/ek.pem"}});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.cfg.tls_cert, "/e.pem");
  EXPECT_EQ(r.cfg.readiness_drain_ms, 0u);   // default: stop once the connections are gone

  auto file = std::filesystem::temp_directory_path() / ("pushwire-tls-config-" + std::to_string(getpid()) + ".json");
  std::ofstream(file) << R"({"tls-cert": "/f.pem", "tls-key": "/fk.pem"})";
  std::string path = file.string();
  const char* with_file[] = {"x", "--config", path.c_str(), "--tls-key", "/flag-key.pem"};
  r = ps::parse_config(5, with_file, {});
  std::filesystem::remove(file);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.cfg.tls_cert, "/f.pem");
  EXPECT_EQ(r.cfg.tls_key, "/flag-key.pem");
}

TEST(OpsConfig, TlsCertAndKeyGoTogether) {
  const char* cert_only[] = {"x", "--tls-cert", "/c.pem"};
  auto r = ps::parse_config(3, cert_only, {});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("--tls-cert and --tls-key"), std::string::npos);
  const char* none[] = {"x"};
  EXPECT_FALSE(ps::parse_config(1, none, {{"PUSHWIRE_TLS_KEY", "/k.pem"}}).ok);
}

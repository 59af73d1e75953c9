// node::jitter and node::reconnect_after over their whole input range (issue 18, defect 1: a
// jitter_ms of 2^64 - 1 made `max + 1` wrap to 0 and the modulo raised SIGFPE).
#include <gtest/gtest.h>

#include <cstdint>

#include "server/hub/clock.hpp"
#include "server/node/node.hpp"

namespace {

namespace ps = pushwire::server;

TEST(NodeJitter, AnyMaximumIsSafeAndInRange) {
  ps::manual_clock clk;
  ps::config c;
  c.threads = 1;
  ps::node n(c, clk);
  EXPECT_EQ(n.jitter(0), 0u);
  for (int i = 0; i < 100; ++i) EXPECT_LE(n.jitter(5), 5u);
  (void)n.jitter(UINT64_MAX);   // any value is in range; it must only not trap
  (void)n.jitter(UINT64_MAX - 1);
}

TEST(NodeJitter, ReconnectAdviceIsClampedToTheDocumentedMaximum) {
  ps::manual_clock clk;
  ps::config c;
  c.threads = 1;
  ps::node n(c, clk);
  ps::disconnect_order d;
  d.after_ms = UINT64_MAX;
  d.jitter_ms = UINT64_MAX;
  for (int i = 0; i < 50; ++i) {
    auto after = n.reconnect_after(d);
    EXPECT_GE(after, ps::max_reconnect_delay_ms);
    EXPECT_LE(after, 2 * ps::max_reconnect_delay_ms);
  }
  d.after_ms = 7;
  d.jitter_ms = 0;
  EXPECT_EQ(n.reconnect_after(d), 7u);
}

}  // namespace

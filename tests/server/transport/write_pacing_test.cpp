// Adaptive write coalescing (issue 19): the rule that decides when a worker's next flush pass may
// start. Each expectation fails when its part of the rule is taken out.
#include <gtest/gtest.h>

#include "server/transport/write_pacing.hpp"

namespace {

using pushwire::server::write_pacing;
constexpr std::uint64_t us = 1000;

write_pacing pacing(std::uint64_t cap_ns, std::uint64_t factor) {
  write_pacing p;
  p.cap_ns = cap_ns;
  p.factor = factor;
  return p;
}

TEST(WritePacing, TheFirstPassStartsAtOnce) {
  auto p = pacing(8000 * us, 4);
  EXPECT_EQ(p.next_start_ns(), 0u);
}

TEST(WritePacing, ThePauseGrowsWithTheLengthOfTheLastPass) {
  auto p = pacing(8000 * us, 4);
  p.pass_started(100 * us);
  p.pass_ended(101 * us);   // a short pass (1 us): next one 4 us after its start
  EXPECT_EQ(p.next_start_ns(), 104 * us);
  p.pass_started(200 * us);
  p.pass_ended(700 * us);   // a loaded pass (500 us): writes stay under ~1/4 of the thread
  EXPECT_EQ(p.next_start_ns(), 2200 * us);
}

TEST(WritePacing, ThePauseNeverExceedsTheCap) {
  auto p = pacing(8000 * us, 4);
  p.pass_started(0);
  p.pass_ended(5000 * us);   // 4 x 5 ms would be 20 ms
  EXPECT_EQ(p.next_start_ns(), 8000 * us);
  p.pass_started(8000 * us);
  p.pass_ended(20000 * us);  // longer than the cap: the next pass may follow at once
  EXPECT_LE(p.next_start_ns(), 20000 * us);
}

TEST(WritePacing, AfterAQuietWindowAPassStartsAtOnce) {
  auto p = pacing(8000 * us, 4);
  p.pass_started(0);
  p.pass_ended(1000 * us);
  EXPECT_LT(p.next_start_ns(), 50000 * us);   // a publish 50 ms later waits for nothing
}

TEST(WritePacing, FactorZeroIsAFixedWindowAndCapZeroWritesAtOnce) {
  auto fixed = pacing(1000 * us, 0);
  fixed.pass_started(0);
  fixed.pass_ended(1 * us);
  EXPECT_EQ(fixed.next_start_ns(), 1000 * us);
  auto none = pacing(0, 4);
  none.pass_started(10 * us);
  none.pass_ended(900 * us);
  EXPECT_EQ(none.next_start_ns(), 10 * us);
}

}  // namespace

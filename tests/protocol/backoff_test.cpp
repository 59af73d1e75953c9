// The PRNG and the full-jitter rule on their own; client_machine_test checks the machine uses them.
#include "protocol/backoff.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

using namespace pushwire::protocol;

namespace {

std::vector<std::uint64_t> draws(std::uint64_t seed, std::uint32_t attempts) {
  prng rng(seed);
  std::vector<std::uint64_t> out;
  for (std::uint32_t a = 0; a < attempts; ++a) out.push_back(full_jitter_delay(500, 20000, a, rng));
  return out;
}

}  // namespace

TEST(Backoff, Splitmix64MatchesReferenceValues) {
  // First outputs of the reference splitmix64 for seed 0 (Vigna's splitmix64.c).
  prng rng(0);
  EXPECT_EQ(rng.next(), 0xE220A8397B1DCDAFull);
  EXPECT_EQ(rng.next(), 0x6E789E6AA1B965F4ull);
  EXPECT_EQ(rng.next(), 0x06C45D188009454Full);
}

TEST(Backoff, SameSeedSameSequenceDifferentSeedsDiffer) {
  EXPECT_EQ(draws(42, 12), draws(42, 12));
  EXPECT_NE(draws(42, 12), draws(43, 12));
  EXPECT_NE(draws(1, 12), draws(2, 12));
}

TEST(Backoff, UniformStaysInsideBoundIncludingEnds) {
  prng rng(9);
  bool saw_zero = false, saw_bound = false;
  for (int i = 0; i < 2000; ++i) {
    auto v = rng.uniform(3);
    ASSERT_LE(v, 3u);
    saw_zero = saw_zero || v == 0;
    saw_bound = saw_bound || v == 3;
  }
  EXPECT_TRUE(saw_zero);
  EXPECT_TRUE(saw_bound);
  EXPECT_EQ(rng.uniform(0), 0u);
}

TEST(Backoff, CeilingDoublesThenCaps) {
  EXPECT_EQ(backoff_ceiling(500, 20000, 0), 500u);
  EXPECT_EQ(backoff_ceiling(500, 20000, 1), 1000u);
  EXPECT_EQ(backoff_ceiling(500, 20000, 2), 2000u);
  EXPECT_EQ(backoff_ceiling(500, 20000, 5), 16000u);
  EXPECT_EQ(backoff_ceiling(500, 20000, 6), 20000u);
  EXPECT_EQ(backoff_ceiling(500, 20000, 4000000000u), 20000u);
  EXPECT_EQ(backoff_ceiling(0, 20000, 4000000000u), 0u);
  EXPECT_EQ(backoff_ceiling(UINT64_MAX / 2 + 1, UINT64_MAX, 3), UINT64_MAX);  // no overflow
  EXPECT_EQ(backoff_ceiling(900, 300, 0), 300u);  // the cap wins over a larger minimum
}

TEST(Backoff, DelaysAreJitteredWithinTheGrowingCeiling) {
  // Across many seeds every draw stays in [0, ceiling], and the largest draws approach each
  // ceiling: a delay that did not grow with the attempt would never pass the previous one.
  for (std::uint32_t attempt = 0; attempt < 8; ++attempt) {
    std::uint64_t ceiling = backoff_ceiling(500, 20000, attempt);
    std::uint64_t largest = 0;
    for (std::uint64_t seed = 1; seed <= 200; ++seed) {
      prng rng(seed);
      auto d = full_jitter_delay(500, 20000, attempt, rng);
      ASSERT_LE(d, ceiling) << "attempt " << attempt;
      if (d > largest) largest = d;
    }
    EXPECT_GT(largest, ceiling * 9 / 10) << "attempt " << attempt;
  }
}

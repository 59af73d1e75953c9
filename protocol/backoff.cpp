#include "protocol/backoff.hpp"

namespace pushwire::protocol {

std::uint64_t prng::next() {
  std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::uint64_t prng::uniform(std::uint64_t bound) {
  std::uint64_t r = next();
  return bound == UINT64_MAX ? r : r % (bound + 1);
}

std::uint64_t backoff_ceiling(std::uint64_t min_ms, std::uint64_t max_ms, std::uint32_t attempt) {
  std::uint64_t ceiling = min_ms;
  // Stops once the cap is reached, so the loop runs at most ~64 times whatever `attempt` is.
  for (std::uint32_t i = 0; i < attempt && ceiling != 0 && ceiling < max_ms; ++i)
    ceiling = ceiling > max_ms / 2 ? max_ms : ceiling * 2;
  return ceiling < max_ms ? ceiling : max_ms;
}

std::uint64_t full_jitter_delay(std::uint64_t min_ms, std::uint64_t max_ms, std::uint32_t attempt, prng& rng) {
  return rng.uniform(backoff_ceiling(min_ms, max_ms, attempt));
}

}  // namespace pushwire::protocol

// A seeded random source that gives the same numbers on every platform.
#pragma once

#include <cstdint>

#include "tapegrad/error.hpp"

namespace tapegrad {

/// splitmix64: small, fast and well mixed. Unlike std::uniform_real_distribution, its
/// stream does not depend on the standard library, so a seed means the same weights
/// everywhere.
class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : state_(seed) {}

  std::uint64_t next_u64() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, 1), 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  /// Uniform in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

 private:
  std::uint64_t state_;
};

}  // namespace tapegrad

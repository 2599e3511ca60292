// A seeded random source that gives the same numbers on every platform.
#pragma once

#include <cmath>
#include <cstdint>

#include "tapegrad/error.hpp"

namespace tapegrad {

/// @addtogroup tensors
/// @{

/// splitmix64: small, fast and well mixed. Unlike std::uniform_real_distribution, its
/// stream does not depend on the standard library, so a seed means the same weights
/// everywhere.
class Generator {
 public:
  /// A generator whose stream is fixed by `seed`.
  explicit Generator(std::uint64_t seed = 0) : state_(seed) {}

  /// The next 64 random bits of the stream; the other draws are built on it.
  std::uint64_t next_u64() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, 1), 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  /// Uniform in [lo, hi), as lo + (hi - lo) uniform(); lo and hi are not checked.
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  /// Standard normal, by the Box-Muller transform (uses two uniforms per call).
  double normal() {
    const double u = 1.0 - uniform();  // in (0, 1]: log(u) is finite
    const double v = uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
  }
  /// Normal with the given mean and standard deviation: mean + stddev normal(); not checked.
  double normal(double mean, double stddev) { return mean + stddev * normal(); }

  /// The whole state of the stream (splitmix64 keeps one 64-bit counter). A generator given
  /// it by set_state() draws the same numbers as this one from here on; checkpoints
  /// (io::Checkpoint) save it.
  std::uint64_t state() const { return state_; }
  /// Continues the stream from a state() taken earlier (of this or another generator).
  void set_state(std::uint64_t state) { state_ = state; }

 private:
  std::uint64_t state_;
};

/// The calling thread's default generator, used by layers made without a generator of their
/// own. Starts from seed 0 on every thread.
Generator& default_generator();
/// Restarts the calling thread's default generator from `seed`, for reproducible models.
void manual_seed(std::uint64_t seed);

/// @}

}  // namespace tapegrad

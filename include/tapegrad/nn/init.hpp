// How a layer's parameters start. Every draw comes from a Generator, so a seed fixes them.
#pragma once

#include <xtensor/xarray.hpp>

#include "tapegrad/random.hpp"

namespace tapegrad::nn {

/// @addtogroup nn
/// @{

/// An initialization rule: a recipe that fill() applies to an array.
///
/// Xavier and He read the fans from the shape: for a weight of shape (fan_in, fan_out)
/// (tapegrad's layers compute x W, so W has one row per input) fan_in = shape[0] and
/// fan_out = shape[1]; for a 1-d array fan_in = fan_out = its size; for 3 or more axes the
/// first two extents are used.
class Init {
 public:
  /// Uniform in [lo, hi). The seeds draw their weights with np.random.random: uniform(0, 1).
  /// Throws ValueError if lo > hi (or either is NaN).
  static Init uniform(double lo = 0, double hi = 1);
  /// Normal with the given mean and standard deviation. Throws ValueError if stddev < 0 (or
  /// NaN).
  static Init normal(double mean = 0, double stddev = 1);
  /// Glorot & Bengio: uniform in [-a, a), a = gain sqrt(6 / (fan_in + fan_out)).
  static Init xavier_uniform(double gain = 1);
  /// Glorot & Bengio: normal, stddev = gain sqrt(2 / (fan_in + fan_out)).
  static Init xavier_normal(double gain = 1);
  /// He et al. (for ReLU): uniform in [-a, a), a = sqrt(6 / fan_in).
  static Init he_uniform();
  /// He et al.: normal, stddev = sqrt(2 / fan_in).
  static Init he_normal();
  /// Every element equal to `value`.
  static Init constant(double value);
  /// Every element 0: constant(0).
  static Init zeros() { return constant(0); }

  /// Overwrites every element of `values` (any shape, T = float or double), drawing from
  /// `random` in row-major order. Throws ValueError if the rule is Xavier or He (it needs
  /// fans) and `values` is 0-d or has no elements.
  template <class T>
  void fill(xt::xarray<T>& values, Generator& random) const;

 private:
  enum class Kind {
    uniform,
    normal,
    xavier_uniform,
    xavier_normal,
    he_uniform,
    he_normal,
    constant
  };
  Init(Kind kind, double a, double b) : kind_(kind), a_(a), b_(b) {}
  Kind kind_;
  double a_, b_;
};

/// @}

}  // namespace tapegrad::nn

// How a layer's parameters start. Every draw comes from a Generator, so a seed fixes them.
#pragma once

#include <xtensor/xarray.hpp>

#include "tapegrad/random.hpp"

namespace tapegrad::nn {

/// An initialization rule. For a weight of shape (fan_in, fan_out) (tapegrad's layers
/// compute x W, so W has one row per input); for a 1-d tensor fan_in = fan_out = its size.
class Init {
 public:
  /// Uniform in [lo, hi). The seeds draw their weights with np.random.random: uniform(0, 1).
  static Init uniform(double lo = 0, double hi = 1);
  /// Normal with the given mean and standard deviation.
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
  static Init zeros() { return constant(0); }

  /// Fills `values` in row-major order. Throws ValueError for a rule that needs fans on an
  /// empty or 0-d array.
  template <class T>
  void fill(xt::xarray<T>& values, Generator& random) const;

 private:
  enum class Kind { uniform, normal, xavier_uniform, xavier_normal, he_uniform, he_normal, constant };
  Init(Kind kind, double a, double b) : kind_(kind), a_(a), b_(b) {}
  Kind kind_;
  double a_, b_;
};

}  // namespace tapegrad::nn

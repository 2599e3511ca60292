// Gradient checking: the tape's gradients against central finite differences.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tapegrad/tensor.hpp"

namespace tapegrad {

/// Settings of gradcheck. A zero step or tolerance means "the default for the element type":
/// float64: step 1e-6, atol 1e-7, rtol 1e-6;  float32: step 1e-2, atol 1e-3, rtol 1e-2.
struct GradcheckOptions {
  double step = 0;
  double atol = 0;
  double rtol = 0;
  /// Seed of the upstream gradient: the check differentiates sum(w * f(x)) with w drawn
  /// from +-[0.5, 1.5], so that no structure of f can make a wrong gradient look right.
  std::uint64_t seed = 20240601;
  /// A check where every gradient element is zero on both sides proves nothing and fails,
  /// unless this is set.
  bool allow_zero_gradient = false;
  /// Names of the inputs for the report; "input 0", "input 1", ... when absent.
  std::vector<std::string> names;
};

/// The outcome of gradcheck, with the worst element found.
struct GradcheckReport {
  bool passed = false;
  /// One line saying what passed or what failed, with the numbers.
  std::string message;
  std::size_t worst_input = 0;
  /// Row-major position of the worst element within its input, and the same as indices.
  std::size_t worst_flat_index = 0;
  std::vector<std::size_t> worst_position;
  double tape_value = 0;
  double numeric_value = 0;
  double error = 0;       // |tape - numeric|
  double tolerance = 0;   // atol + rtol * |numeric| at that element
  explicit operator bool() const { return passed; }
};

template <class T>
using TensorFunction = std::function<Tensor<T>(const std::vector<Tensor<T>>&)>;

/// Compares the tape's gradient of sum(w * f(inputs)) with respect to every input with
/// central differences (f(x + h) - f(x - h)) / 2h, element by element, accumulated in double.
/// `f` may return any shape. The inputs are copied: the caller's tensors are not touched.
/// An element passes when |tape - numeric| <= atol + rtol * |numeric|.
template <class T>
GradcheckReport gradcheck(const TensorFunction<T>& f, const std::vector<Tensor<T>>& inputs,
                          const GradcheckOptions& options = {});

/// A gradient derived by hand: given the arguments' values, one array per argument, each of
/// that argument's shape.
template <class T>
using HandGradient =
    std::function<std::vector<xt::xarray<T>>(const std::vector<xt::xarray<T>>&)>;

/// One element where a hand-derived gradient and the tape's disagree.
struct GradientDisagreement {
  std::size_t point = 0;  // index into the points checked
  std::size_t input = 0;  // which argument
  std::vector<std::size_t> position;
  double tape = 0, hand = 0, numeric = 0;  // the three values of that partial derivative
};

struct HandGradientReport {
  bool passed = false;
  /// A verdict with numbers: where they first disagree, or the worst difference seen.
  std::string message;
  /// Every element where |hand - tape| > atol + rtol |tape|, in order.
  std::vector<GradientDisagreement> disagreements;
  std::size_t elements_checked = 0;
  /// True if the tape itself disagreed with finite differences somewhere (f not smooth at
  /// a point, or a bad step size): then the tape is not a trustworthy referee there.
  bool tape_disagrees_with_numeric = false;
  explicit operator bool() const { return passed; }
};

/// Checks a hand-derived gradient of a single-element f against the tape (and reports the
/// finite-difference value beside both) at each of the given points. Each point is one
/// value per argument. Tolerances and names come from `options` (as for gradcheck).
/// Throws ShapeError if f is not single-element or `hand` returns the wrong count or shapes.
template <class T>
HandGradientReport check_hand_gradient(const TensorFunction<T>& f, const HandGradient<T>& hand,
                                       const std::vector<std::vector<xt::xarray<T>>>& points,
                                       const GradcheckOptions& options = {});

}  // namespace tapegrad

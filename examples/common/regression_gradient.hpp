// The gradient of gd_variants' cost on one batch, from an eager tape or from a compiled step
// replayed: shared by the demo and the test that checks both give the same parameters.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "tapegrad/tapegrad.hpp"

namespace examples {

/// J = 1/(2m) sum (x theta + bias - y)^2 over the m rows of x (m, n), theta (n, 1),
/// bias (1,), y (m, 1).
template <class T>
tapegrad::Tensor<T> regression_cost(const tapegrad::Tensor<T>& theta,
                                    const tapegrad::Tensor<T>& bias, const tapegrad::Tensor<T>& x,
                                    const tapegrad::Tensor<T>& y) {
  return tapegrad::nn::half_sse(matmul(x, theta) + bias, y);
}

/// Adds dJ/dtheta and dJ/dbias at a batch (x, y) to theta's and bias's gradients: eagerly
/// (a tape per call) or, when `compiled`, by replaying a step recorded at the first batch
/// of each size (a smaller last batch gets a step of its own). Both give the same numbers.
template <class T>
class RegressionGradient {
 public:
  RegressionGradient(tapegrad::Tensor<T> theta, tapegrad::Tensor<T> bias, bool compiled)
      : theta_(std::move(theta)), bias_(std::move(bias)), compiled_(compiled) {}
  // The compiled steps read this object's members: it stays where it was made.
  RegressionGradient(const RegressionGradient&) = delete;
  RegressionGradient& operator=(const RegressionGradient&) = delete;

  void operator()(const xt::xarray<T>& x, const xt::xarray<T>& y) {
    if (!compiled_) {
      tapegrad::Tape tape;
      regression_cost(theta_, bias_, tapegrad::Tensor<T>(x), tapegrad::Tensor<T>(y)).backward();
      return;
    }
    auto& step = steps_[x.shape()[0]];
    if (!step) {
      step = std::make_unique<Step>();
      step->x = tapegrad::Tensor<T>(x);
      step->y = tapegrad::Tensor<T>(y);
      Step& s = *step;
      s.run = tapegrad::compile(std::vector<tapegrad::Tensor<T>>{theta_, bias_},
                                [this, &s] { return regression_cost(theta_, bias_, s.x, s.y); });
    } else {
      step->x.set_value(x);
      step->y.set_value(y);
    }
    step->run->run();
  }

 private:
  struct Step {
    tapegrad::Tensor<T> x, y;  // the batch the step reads, given new values for each call
    std::optional<tapegrad::Compiled<T>> run;
  };
  tapegrad::Tensor<T> theta_, bias_;
  bool compiled_;
  std::map<std::size_t, std::unique_ptr<Step>> steps_;  // by batch size; stable addresses
};

}  // namespace examples

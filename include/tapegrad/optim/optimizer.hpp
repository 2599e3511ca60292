// Optimizer: the base of every parameter-update rule.
#pragma once

#include <cstddef>
#include <vector>

#include "tapegrad/tensor.hpp"

namespace tapegrad::optim {

/// What learning-rate schedules need of an optimizer, whatever its element type.
class LearningRateHolder {
 public:
  explicit LearningRateHolder(double learning_rate);
  virtual ~LearningRateHolder() = default;
  double learning_rate() const { return learning_rate_; }
  /// Throws ValueError for a negative or non-finite rate.
  void set_learning_rate(double learning_rate);

 private:
  double learning_rate_;
};

/// Updates parameters from their gradients. step() changes values in place (through
/// mutable_value(), so a tape that still needs the old values refuses to run backward) and
/// records nothing on any tape. Parameters without a gradient are left alone.
template <class T = double>
class Optimizer : public LearningRateHolder {
 public:
  /// Throws ValueError if a parameter does not require grad, appears twice, or the learning
  /// rate is negative or not finite.
  Optimizer(std::vector<Tensor<T>> parameters, double learning_rate);

  /// One update from the current gradients.
  virtual void step() = 0;
  /// Clears every parameter's gradient.
  void zero_grad();
  const std::vector<Tensor<T>>& parameters() const { return parameters_; }

 protected:
  /// One state array per parameter, zeros of its shape.
  std::vector<xt::xarray<T>> zeros_like_parameters() const;

  std::vector<Tensor<T>> parameters_;
};

extern template class Optimizer<float>;
extern template class Optimizer<double>;

}  // namespace tapegrad::optim

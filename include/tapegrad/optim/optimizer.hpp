// Optimizer: the base of every parameter-update rule.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "tapegrad/tensor.hpp"

/// Optimizers, learning-rate schedules and gradient clipping.
namespace tapegrad::optim {

/// @addtogroup optim
/// @{

/// What learning-rate schedules need of an optimizer, whatever its element type: the rate
/// and a way to change it.
class LearningRateHolder {
 public:
  /// `name` is the optimizer's name in error messages ("SGD", "Adam", ...). Throws
  /// ValueError `<name>: lr must be a finite number >= 0, got <rate>` for a negative or
  /// non-finite rate.
  explicit LearningRateHolder(double learning_rate, std::string name = "optimizer");
  virtual ~LearningRateHolder() = default;
  /// The current learning rate (lr in the update formulas).
  double learning_rate() const { return learning_rate_; }
  /// Replaces the rate; the next step() uses it. Throws ValueError for a negative or
  /// non-finite rate, as the constructor does (and then keeps the old one).
  void set_learning_rate(double learning_rate);
  /// The optimizer's name, as its error messages start.
  const std::string& name() const { return name_; }

 private:
  double learning_rate_;
  std::string name_;
};

/// Base of the optimizers: holds the parameters and updates them from their gradients.
///
/// The parameters are Tensor handles, so the optimizer changes the caller's tensors. step()
/// changes values in place (through mutable_value(), so a tape that still needs the old
/// values refuses to run backward); the update itself records nothing on any tape (L-BFGS
/// and Newton evaluate the loss on a tape of their own). The first-order optimizers (SGD,
/// Adagrad, RMSprop, Adam, AdamW) skip parameters without a gradient and leave the
/// gradients as they are: call zero_grad() before the next backward(). L-BFGS and Newton
/// count a missing gradient as zeros. T is float or double.
template <class T = double>
class Optimizer : public LearningRateHolder {
 public:
  /// `name` starts the optimizer's error messages. Throws ValueError if a parameter does not
  /// require grad, the same tensor appears twice, or the learning rate is negative or not
  /// finite.
  Optimizer(std::vector<Tensor<T>> parameters, double learning_rate,
            std::string name = "optimizer");

  /// One update from the current gradients.
  virtual void step() = 0;
  /// Clears every parameter's gradient (has_grad() becomes false).
  void zero_grad();
  /// The parameters, in the order given to the constructor.
  const std::vector<Tensor<T>>& parameters() const { return parameters_; }

 protected:
  /// One state array per parameter, zeros of its shape.
  std::vector<xt::xarray<T>> zeros_like_parameters() const;

  /// The parameters, in the order given to the constructor.
  std::vector<Tensor<T>> parameters_;
};

extern template class Optimizer<float>;
extern template class Optimizer<double>;

/// @}

}  // namespace tapegrad::optim

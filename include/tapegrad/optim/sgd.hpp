// Gradient descent: plain, with momentum (heavy ball or Nesterov), dampening, weight decay.
#pragma once

#include "tapegrad/optim/optimizer.hpp"

namespace tapegrad::optim {

/// @addtogroup optim
/// @{

/// Settings of SGD, builder style: `SGDOptions().momentum(0.9).nesterov(true)`.
class SGDOptions {
 public:
  /// The momentum factor mu (default 0: no momentum); must be finite and >= 0.
  SGDOptions& momentum(double m) {
    momentum_ = m;
    return *this;
  }
  /// The share of the gradient held back from the momentum buffer (default 0); must be in
  /// [0, 1] (PyTorch does not check it; above 1 the buffer would take in -g).
  SGDOptions& dampening(double d) {
    dampening_ = d;
    return *this;
  }
  /// Nesterov momentum (default off); needs a positive momentum and zero dampening.
  SGDOptions& nesterov(bool on) {
    nesterov_ = on;
    return *this;
  }
  /// The L2 penalty: weight_decay p is added to the gradient (default 0); must be finite
  /// and >= 0.
  SGDOptions& weight_decay(double w) {
    weight_decay_ = w;
    return *this;
  }
  /// The momentum setting.
  double momentum() const { return momentum_; }
  /// The dampening setting.
  double dampening() const { return dampening_; }
  /// The Nesterov setting.
  bool nesterov() const { return nesterov_; }
  /// The weight decay setting.
  double weight_decay() const { return weight_decay_; }

 private:
  double momentum_ = 0, dampening_ = 0, weight_decay_ = 0;
  bool nesterov_ = false;
};

/// Stochastic gradient descent, as PyTorch defines it. Each step() updates every parameter
/// p that has a gradient, elementwise, with mu = momentum:
///
///     g = grad + weight_decay p
///     mu = 0:   p = p - lr g
///     mu > 0:   b = g                              at the parameter's first update
///               b = mu b + (1 - dampening) g       at its later updates
///               p = p - lr (g + mu b)              with Nesterov
///               p = p - lr b                       without
///
/// b is a buffer per parameter, of its shape at construction: with momentum a parameter
/// resized since is refused (ShapeError), without it (no state) it is updated in its new
/// shape, its gradient of that shape. A parameter's first update is the first
/// step() at which it has a gradient, as in PyTorch. state() holds the settings momentum,
/// dampening, nesterov and weight_decay and, with momentum, the arrays "momentum_buffer"
/// (b) and the counter "momentum_updates" (0 until b starts).
template <class T = double>
class SGD : public Optimizer<T> {
 public:
  /// Throws ValueError `SGD: <setting> must be <range>, got <value>` for a setting outside
  /// its range (see SGDOptions), if nesterov is on with momentum 0 or a nonzero dampening,
  /// and as Optimizer's constructor does (parameters, learning rate).
  SGD(std::vector<Tensor<T>> parameters, double learning_rate,
      const SGDOptions& options = SGDOptions());
  /// One update by the rule above; parameters without a gradient are skipped. Throws
  /// ShapeError for a parameter resized since construction or a gradient of another shape,
  /// changing nothing (see Optimizer: "Shapes").
  void step() override;

 protected:
  /// Its settings, counters and arrays for state() and load_state().
  typename Optimizer<T>::StateSlots state_slots() override;

 private:
  SGDOptions options_;
  std::vector<xt::xarray<T>> momentum_buffers_;
  std::vector<std::size_t> momentum_updates_;  // 0: the buffer has not started
};

extern template class SGD<float>;
extern template class SGD<double>;

/// @}

}  // namespace tapegrad::optim

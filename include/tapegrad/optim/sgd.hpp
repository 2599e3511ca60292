// Gradient descent: plain, with momentum (heavy ball or Nesterov), dampening, weight decay.
#pragma once

#include "tapegrad/optim/optimizer.hpp"

namespace tapegrad::optim {

/// Settings of SGD, builder style: `SGDOptions().momentum(0.9).nesterov(true)`.
class SGDOptions {
 public:
  SGDOptions& momentum(double m) { momentum_ = m; return *this; }
  SGDOptions& dampening(double d) { dampening_ = d; return *this; }
  SGDOptions& nesterov(bool on) { nesterov_ = on; return *this; }
  SGDOptions& weight_decay(double w) { weight_decay_ = w; return *this; }
  double momentum() const { return momentum_; }
  double dampening() const { return dampening_; }
  bool nesterov() const { return nesterov_; }
  double weight_decay() const { return weight_decay_; }

 private:
  double momentum_ = 0, dampening_ = 0, weight_decay_ = 0;
  bool nesterov_ = false;
};

/// Stochastic gradient descent, as PyTorch defines it. With g = grad + weight_decay p:
///   without momentum:  p -= lr g
///   with momentum mu:  b = g on the first step, then b = mu b + (1 - dampening) g;
///                      p -= lr (g + mu b) with Nesterov, p -= lr b without.
/// Throws ValueError for negative settings, or Nesterov without momentum or with dampening.
template <class T = double>
class SGD : public Optimizer<T> {
 public:
  SGD(std::vector<Tensor<T>> parameters, double learning_rate,
      const SGDOptions& options = SGDOptions());
  void step() override;

 private:
  SGDOptions options_;
  std::vector<xt::xarray<T>> momentum_buffers_;
  bool started_ = false;
};

extern template class SGD<float>;
extern template class SGD<double>;

}  // namespace tapegrad::optim

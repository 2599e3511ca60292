// Adaptive learning-rate methods: Adagrad, RMSprop, Adam and AdamW.
#pragma once

#include "tapegrad/optim/optimizer.hpp"

namespace tapegrad::optim {

class AdagradOptions {
 public:
  AdagradOptions& lr_decay(double v) { lr_decay_ = v; return *this; }
  AdagradOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
  AdagradOptions& initial_accumulator(double v) { initial_ = v; return *this; }
  AdagradOptions& eps(double v) { eps_ = v; return *this; }
  double lr_decay() const { return lr_decay_; }
  double weight_decay() const { return weight_decay_; }
  double initial_accumulator() const { return initial_; }
  double eps() const { return eps_; }

 private:
  double lr_decay_ = 0, weight_decay_ = 0, initial_ = 0, eps_ = 1e-10;
};

/// Adagrad (Duchi et al.). At step t, g = grad + weight_decay p:
///   s += g^2;  p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)
template <class T = double>
class Adagrad : public Optimizer<T> {
 public:
  Adagrad(std::vector<Tensor<T>> parameters, double learning_rate = 0.01,
          const AdagradOptions& options = AdagradOptions());
  void step() override;

 private:
  AdagradOptions options_;
  std::vector<xt::xarray<T>> sums_;
  std::size_t steps_ = 0;
};

class RMSpropOptions {
 public:
  RMSpropOptions& alpha(double v) { alpha_ = v; return *this; }
  RMSpropOptions& eps(double v) { eps_ = v; return *this; }
  RMSpropOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
  RMSpropOptions& momentum(double v) { momentum_ = v; return *this; }
  RMSpropOptions& centered(bool on) { centered_ = on; return *this; }
  double alpha() const { return alpha_; }
  double eps() const { return eps_; }
  double weight_decay() const { return weight_decay_; }
  double momentum() const { return momentum_; }
  bool centered() const { return centered_; }

 private:
  double alpha_ = 0.99, eps_ = 1e-8, weight_decay_ = 0, momentum_ = 0;
  bool centered_ = false;
};

/// RMSprop (Hinton), as PyTorch defines it. With g = grad + weight_decay p:
///   v = alpha v + (1 - alpha) g^2;  d = v, or v - m^2 with m = alpha m + (1 - alpha) g
///   when centered;  u = g / (sqrt(d) + eps);
///   p -= lr u, or with momentum: b = momentum b + u, p -= lr b.
template <class T = double>
class RMSprop : public Optimizer<T> {
 public:
  RMSprop(std::vector<Tensor<T>> parameters, double learning_rate = 0.01,
          const RMSpropOptions& options = RMSpropOptions());
  void step() override;

 private:
  RMSpropOptions options_;
  std::vector<xt::xarray<T>> squares_, means_, buffers_;
};

class AdamOptions {
 public:
  AdamOptions& betas(double beta1, double beta2) { beta1_ = beta1; beta2_ = beta2; return *this; }
  AdamOptions& eps(double v) { eps_ = v; return *this; }
  AdamOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
  AdamOptions& amsgrad(bool on) { amsgrad_ = on; return *this; }
  double beta1() const { return beta1_; }
  double beta2() const { return beta2_; }
  double eps() const { return eps_; }
  double weight_decay() const { return weight_decay_; }
  bool amsgrad() const { return amsgrad_; }

 private:
  double beta1_ = 0.9, beta2_ = 0.999, eps_ = 1e-8, weight_decay_ = 0;
  bool amsgrad_ = false;
};

/// Adam (Kingma & Ba) with bias correction, as PyTorch defines it. At step t:
///   g = grad + weight_decay p   (Adam: decay through the gradient)
///   p *= 1 - lr weight_decay    (AdamW: decoupled decay, instead)
///   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  (amsgrad: vmax = max(vmax, v))
///   p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
template <class T = double>
class Adam : public Optimizer<T> {
 public:
  Adam(std::vector<Tensor<T>> parameters, double learning_rate = 1e-3,
       const AdamOptions& options = AdamOptions());
  void step() override;

 protected:
  Adam(std::vector<Tensor<T>> parameters, double learning_rate, const AdamOptions& options,
       bool decoupled_weight_decay);

 private:
  AdamOptions options_;
  bool decoupled_;
  std::vector<xt::xarray<T>> first_, second_, second_max_;
  std::size_t steps_ = 0;
};

/// AdamW (Loshchilov & Hutter): Adam with decoupled weight decay (default 0.01).
template <class T = double>
class AdamW : public Adam<T> {
 public:
  AdamW(std::vector<Tensor<T>> parameters, double learning_rate = 1e-3,
        const AdamOptions& options = AdamOptions().weight_decay(0.01))
      : Adam<T>(std::move(parameters), learning_rate, options, true) {}
};

extern template class Adagrad<float>;
extern template class Adagrad<double>;
extern template class RMSprop<float>;
extern template class RMSprop<double>;
extern template class Adam<float>;
extern template class Adam<double>;

}  // namespace tapegrad::optim

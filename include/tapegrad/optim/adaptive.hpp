// Adaptive learning-rate methods: Adagrad, RMSprop, Adam and AdamW.
#pragma once

#include "tapegrad/optim/optimizer.hpp"

namespace tapegrad::optim {

/// @addtogroup optim
/// @{

/// Settings of Adagrad, builder style: `AdagradOptions().lr_decay(1e-4)`.
class AdagradOptions {
 public:
  /// Decay of the rate with the step count t: lr / (1 + (t - 1) lr_decay) (default 0); must
  /// be finite and >= 0.
  AdagradOptions& lr_decay(double v) {
    lr_decay_ = v;
    return *this;
  }
  /// The L2 penalty: weight_decay p is added to the gradient (default 0); must be finite
  /// and >= 0.
  AdagradOptions& weight_decay(double v) {
    weight_decay_ = v;
    return *this;
  }
  /// The value every element of the sum of squared gradients starts at (default 0); must
  /// be finite and >= 0.
  AdagradOptions& initial_accumulator(double v) {
    initial_ = v;
    return *this;
  }
  /// Added to the denominator for stability (default 1e-10); must be positive and finite
  /// (PyTorch accepts 0, which turns a zero gradient element into 0 / 0 = NaN).
  AdagradOptions& eps(double v) {
    eps_ = v;
    return *this;
  }
  /// The lr_decay setting.
  double lr_decay() const { return lr_decay_; }
  /// The weight decay setting.
  double weight_decay() const { return weight_decay_; }
  /// The initial_accumulator setting.
  double initial_accumulator() const { return initial_; }
  /// The eps setting.
  double eps() const { return eps_; }

 private:
  double lr_decay_ = 0, weight_decay_ = 0, initial_ = 0, eps_ = 1e-10;
};

/// Adagrad (Duchi et al.), as PyTorch defines it. Each step() updates every parameter p that
/// has a gradient, elementwise:
///
///     g = grad + weight_decay p
///     s = s + g^2
///     p = p - lr / (1 + (t - 1) lr_decay) g / (sqrt(s) + eps)
///
/// s is a sum per parameter, of its shape, that starts at initial_accumulator. t counts
/// the parameter's own updates (the step() calls at which it had a gradient), as in PyTorch.
/// state() holds the four settings, the array "sum" (s) and the counter "step" (t).
template <class T = double>
class Adagrad : public Optimizer<T> {
 public:
  /// Throws ValueError `Adagrad: <setting> must be <range>, got <value>` for a setting
  /// outside its range (see AdagradOptions), and as Optimizer's constructor does
  /// (parameters, learning rate).
  Adagrad(std::vector<Tensor<T>> parameters, double learning_rate = 0.01,
          const AdagradOptions& options = AdagradOptions());
  /// One update by the rule above; parameters without a gradient are skipped. Throws
  /// ShapeError for a parameter resized since construction or a gradient of another shape,
  /// changing nothing (see Optimizer: "Shapes").
  void step() override;

 protected:
  /// Its settings, counters and arrays for state() and load_state().
  typename Optimizer<T>::StateSlots state_slots() override;

 private:
  AdagradOptions options_;
  std::vector<xt::xarray<T>> sums_;
  std::vector<std::size_t> updates_;  // t of each parameter
};

/// Settings of RMSprop, builder style: `RMSpropOptions().momentum(0.9).centered(true)`.
class RMSpropOptions {
 public:
  /// The smoothing constant of the running averages (default 0.99); must be in [0, 1), as
  /// Adam's betas. PyTorch accepts any alpha >= 0, but above 1 the average of squares turns
  /// negative (its square root NaN), and at 1 it never takes in a gradient.
  RMSpropOptions& alpha(double v) {
    alpha_ = v;
    return *this;
  }
  /// Added to the denominator for stability (default 1e-8); must be positive and finite
  /// (PyTorch accepts 0, which turns a zero gradient element into 0 / 0 = NaN).
  RMSpropOptions& eps(double v) {
    eps_ = v;
    return *this;
  }
  /// The L2 penalty: weight_decay p is added to the gradient (default 0); must be finite
  /// and >= 0.
  RMSpropOptions& weight_decay(double v) {
    weight_decay_ = v;
    return *this;
  }
  /// The momentum factor of the update buffer (default 0: no buffer); must be finite and
  /// >= 0.
  RMSpropOptions& momentum(double v) {
    momentum_ = v;
    return *this;
  }
  /// Divides by the estimated standard deviation sqrt(v - m^2) instead of the root mean
  /// square sqrt(v) (default off).
  RMSpropOptions& centered(bool on) {
    centered_ = on;
    return *this;
  }
  /// The alpha setting.
  double alpha() const { return alpha_; }
  /// The eps setting.
  double eps() const { return eps_; }
  /// The weight decay setting.
  double weight_decay() const { return weight_decay_; }
  /// The momentum setting.
  double momentum() const { return momentum_; }
  /// The centered setting.
  bool centered() const { return centered_; }

 private:
  double alpha_ = 0.99, eps_ = 1e-8, weight_decay_ = 0, momentum_ = 0;
  bool centered_ = false;
};

/// RMSprop (Hinton), as PyTorch defines it. Each step() updates every parameter p that has
/// a gradient, elementwise:
///
///     g = grad + weight_decay p
///     v = alpha v + (1 - alpha) g^2
///     centered:      m = alpha m + (1 - alpha) g;  d = sqrt(v - m^2) + eps
///     not centered:  d = sqrt(v) + eps
///     momentum > 0:  b = momentum b + g / d;  p = p - lr b
///     momentum = 0:  p = p - lr g / d
///
/// v, m and b are per parameter, of its shape, and start at zeros. state() holds the five
/// settings and the arrays "square_avg" (v), "grad_avg" (m, when centered) and
/// "momentum_buffer" (b, with momentum).
template <class T = double>
class RMSprop : public Optimizer<T> {
 public:
  /// Throws ValueError `RMSprop: <setting> must be <range>, got <value>` for a setting
  /// outside its range (see RMSpropOptions), and as Optimizer's constructor does
  /// (parameters, learning rate).
  RMSprop(std::vector<Tensor<T>> parameters, double learning_rate = 0.01,
          const RMSpropOptions& options = RMSpropOptions());
  /// One update by the rule above; parameters without a gradient are skipped. Throws
  /// ShapeError for a parameter resized since construction or a gradient of another shape,
  /// changing nothing (see Optimizer: "Shapes").
  void step() override;

 protected:
  /// Its settings, counters and arrays for state() and load_state().
  typename Optimizer<T>::StateSlots state_slots() override;

 private:
  RMSpropOptions options_;
  std::vector<xt::xarray<T>> squares_, means_, buffers_;
};

/// Settings of Adam and AdamW, builder style: `AdamOptions().betas(0.9, 0.99).amsgrad(true)`.
class AdamOptions {
 public:
  /// The decay rates of the first and second moment averages (default 0.9 and 0.999); each
  /// must be in [0, 1).
  AdamOptions& betas(double beta1, double beta2) {
    beta1_ = beta1;
    beta2_ = beta2;
    return *this;
  }
  /// Added to the denominator for stability (default 1e-8); must be positive and finite
  /// (PyTorch accepts 0, which turns a zero gradient element into 0 / 0 = NaN; an infinite
  /// eps would freeze the parameters).
  AdamOptions& eps(double v) {
    eps_ = v;
    return *this;
  }
  /// The weight decay: through the gradient in Adam, decoupled in AdamW (default 0; AdamW's
  /// default options set 0.01); must be finite and >= 0.
  AdamOptions& weight_decay(double v) {
    weight_decay_ = v;
    return *this;
  }
  /// Divides by the running maximum of the second moment (AMSGrad; default off).
  AdamOptions& amsgrad(bool on) {
    amsgrad_ = on;
    return *this;
  }
  /// The first beta setting.
  double beta1() const { return beta1_; }
  /// The second beta setting.
  double beta2() const { return beta2_; }
  /// The eps setting.
  double eps() const { return eps_; }
  /// The weight decay setting.
  double weight_decay() const { return weight_decay_; }
  /// The amsgrad setting.
  bool amsgrad() const { return amsgrad_; }

 private:
  double beta1_ = 0.9, beta2_ = 0.999, eps_ = 1e-8, weight_decay_ = 0;
  bool amsgrad_ = false;
};

/// Adam (Kingma & Ba) with bias correction, as PyTorch defines it. Each step() updates
/// every parameter p that has a gradient, elementwise, with b1, b2 = betas:
///
///     Adam:    g = grad + weight_decay p
///     AdamW:   p = p (1 - lr weight_decay);  g = grad
///     m = b1 m + (1 - b1) g
///     v = b2 v + (1 - b2) g^2
///     amsgrad: vmax = max(vmax, v), and vmax takes the place of v below
///     p = p - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
///
/// m, v and vmax are per parameter, of its shape, and start at zeros. t counts the
/// parameter's own updates (the step() calls at which it had a gradient), as in PyTorch.
/// state() holds the settings beta1, beta2, eps, weight_decay and amsgrad, the arrays
/// "exp_avg" (m), "exp_avg_sq" (v) and, with amsgrad, "max_exp_avg_sq" (vmax), and the
/// counter "step" (t).
template <class T = double>
class Adam : public Optimizer<T> {
 public:
  /// Throws ValueError `Adam: <setting> must be <range>, got <value>` for a setting outside
  /// its range (see AdamOptions; the settings are named beta1 and beta2, eps and
  /// weight_decay), and as Optimizer's constructor does (parameters, learning rate).
  Adam(std::vector<Tensor<T>> parameters, double learning_rate = 1e-3,
       const AdamOptions& options = AdamOptions());
  /// One update by the rule above; parameters without a gradient are skipped (and not
  /// decayed). Throws ShapeError for a parameter resized since construction or a gradient of
  /// another shape, changing nothing (see Optimizer: "Shapes").
  void step() override;

 protected:
  /// Its settings, counters and arrays for state() and load_state().
  typename Optimizer<T>::StateSlots state_slots() override;
  /// For AdamW: with decoupled_weight_decay true, the decay scales p by
  /// 1 - lr weight_decay before the update instead of entering the gradient. Throws as the
  /// public constructor.
  Adam(std::vector<Tensor<T>> parameters, double learning_rate, const AdamOptions& options,
       bool decoupled_weight_decay);

 private:
  AdamOptions options_;
  bool decoupled_;
  std::vector<xt::xarray<T>> first_, second_, second_max_;
  std::vector<std::size_t> updates_;  // t of each parameter
};

/// AdamW (Loshchilov & Hutter): Adam with decoupled weight decay, p = p (1 - lr weight_decay)
/// before the Adam update of the undecayed gradient (see Adam for the full rule).
template <class T = double>
class AdamW : public Adam<T> {
 public:
  /// The default options set weight_decay to 0.01, as PyTorch does. Options passed in replace
  /// them whole: `AdamOptions().amsgrad(true)` has weight_decay 0. Throws ValueError as Adam's
  /// constructor does, with messages starting `AdamW:`.
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

/// @}

}  // namespace tapegrad::optim

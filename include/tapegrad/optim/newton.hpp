// Newton's method for small parameter vectors, with the Hessian from create_graph.
#pragma once

#include <functional>

#include "tapegrad/optim/optimizer.hpp"

namespace tapegrad::optim {

/// @addtogroup optim
/// @{

/// Settings of Newton, builder style: `NewtonOptions().damping(1e-3)`.
class NewtonOptions {
 public:
  /// The factor lr of the Newton step (default 1). It becomes the optimizer's
  /// learning_rate(), so it must be finite and not negative.
  NewtonOptions& lr(double v) {
    lr_ = v;
    return *this;
  }
  /// The damping lambda added to the Hessian's diagonal to start with (default 0: pure
  /// Newton); must be finite and >= 0.
  NewtonOptions& damping(double v) {
    damping_ = v;
    return *this;
  }
  /// The largest parameter count accepted (default 2000): the Hessian is dense, n^2 entries
  /// and n backward passes for n parameter elements; must be positive.
  NewtonOptions& max_parameters(std::size_t v) {
    max_parameters_ = v;
    return *this;
  }
  /// The lr setting.
  double lr() const { return lr_; }
  /// The damping setting.
  double damping() const { return damping_; }
  /// The max_parameters setting.
  std::size_t max_parameters() const { return max_parameters_; }

 private:
  double lr_ = 1, damping_ = 0;
  std::size_t max_parameters_ = 2000;
};

/// Damped Newton's method over all parameters as one vector p, computed in double:
///
///     p = p - lr (H + lambda I)^-1 g
///
/// g and H are the gradient and Hessian of the loss with respect to all parameter elements
/// (a parameter without a gradient counts as zeros). g comes from backward(create_graph),
/// row r of H from one more backward pass from element r of the gradient; H is then made
/// symmetric as (H + H') / 2. lambda starts at the damping option and, while the Cholesky
/// factorization of H + lambda I fails, becomes max(10 lambda, 1e-8 (1 + s)), with
/// s = max_rc |H_rc|; so a step is always a descent direction. The factorization fails when
/// a pivot is not above 16 n eps s (n parameter elements, eps = 2^-52): such a pivot is
/// within the rounding error of the factorization, so it may stand for a zero eigenvalue
/// and dividing by it would give a step of rounding noise (4.5e12 on the singular
/// (x + y)^2 + 0.001 (x - y); damped, the step is 3e4). On a quadratic with positive
/// definite H, one step with lr 1 and no damping lands on the minimum. lr is learning_rate() (set
/// from the options' lr), so set_learning_rate() and the schedules change it.
template <class T = double>
class Newton : public Optimizer<T> {
 public:
  /// Computes the loss (a single element) from the parameters' current values; the
  /// optimizer makes the tape and runs backward() itself.
  using LossFunction = std::function<Tensor<T>()>;

  /// Throws ValueError when the parameters hold more than max_parameters elements in all,
  /// `Newton: <setting> must be <range>, got <value>` for a damping that is negative or not
  /// finite or a max_parameters of 0, and as Optimizer's constructor does (parameters, lr).
  Newton(std::vector<Tensor<T>> parameters, const NewtonOptions& options = NewtonOptions());
  /// Throws TapeError: Newton's method needs the loss, use step(loss).
  void step() override;
  /// One damped Newton step from the parameters' current values; returns the loss before
  /// the step. A loss that does not require grad leaves the values as they are. Every
  /// parameter's gradient is cleared. Throws ShapeError if the loss does not have a single
  /// element. Throws ValueError, leaving the values as they are, when the loss, an element
  /// of g or an entry of H is NaN or infinite (the message says which, and "NaN" for a
  /// NaN), and when 60 increases of lambda do not make H + lambda I positive definite.
  /// Newton keeps no arrays between steps, so a parameter resized since construction is
  /// fine, but max_parameters is checked again (ValueError as the constructor's) before the
  /// loss is evaluated.
  double step(const LossFunction& loss);
  /// The lambda the last step(loss) solved with (0 before the first; a step whose loss does
  /// not require grad leaves it).
  double last_damping() const { return last_damping_; }

 protected:
  /// Its settings damping and max_parameters for state() and load_state(); Newton carries
  /// nothing else from step to step (last_damping() is not restored).
  typename Optimizer<T>::StateSlots state_slots() override;

 private:
  NewtonOptions options_;
  double last_damping_ = 0;
};

extern template class Newton<float>;
extern template class Newton<double>;

/// @}

}  // namespace tapegrad::optim

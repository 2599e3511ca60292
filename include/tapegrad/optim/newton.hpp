// Newton's method for small parameter vectors, with the Hessian from create_graph.
#pragma once

#include <functional>

#include "tapegrad/optim/optimizer.hpp"

namespace tapegrad::optim {

class NewtonOptions {
 public:
  NewtonOptions& lr(double v) { lr_ = v; return *this; }
  /// The damping lambda added to the Hessian's diagonal to start with (0: pure Newton).
  NewtonOptions& damping(double v) { damping_ = v; return *this; }
  /// The largest parameter count accepted (the Hessian is dense: n^2 entries, n backward
  /// passes).
  NewtonOptions& max_parameters(std::size_t v) { max_parameters_ = v; return *this; }
  double lr() const { return lr_; }
  double damping() const { return damping_; }
  std::size_t max_parameters() const { return max_parameters_; }

 private:
  double lr_ = 1, damping_ = 0;
  std::size_t max_parameters_ = 2000;
};

/// Damped Newton: p -= lr (H + lambda I)^-1 g, with g and H of the loss with respect to all
/// parameters as one vector. H comes from backward(create_graph) and one more backward pass
/// per parameter element. lambda starts at the option's damping and grows tenfold until
/// H + lambda I is positive definite (a Cholesky factorization succeeds), so a step is always
/// a descent direction. On a quadratic with positive definite H, one step with lr 1 and no
/// damping lands on the minimum.
template <class T = double>
class Newton : public Optimizer<T> {
 public:
  using LossFunction = std::function<Tensor<T>()>;

  /// Throws ValueError when the parameters hold more than max_parameters elements.
  Newton(std::vector<Tensor<T>> parameters, const NewtonOptions& options = NewtonOptions());
  /// Throws TapeError: Newton's method needs the loss, use step(loss).
  void step() override;
  /// Returns the loss before the step.
  double step(const LossFunction& loss);
  /// The damping the last step used.
  double last_damping() const { return last_damping_; }

 private:
  NewtonOptions options_;
  double last_damping_ = 0;
};

extern template class Newton<float>;
extern template class Newton<double>;

}  // namespace tapegrad::optim

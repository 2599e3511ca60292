// Record once, replay many: a training step (or any scalar function and its gradient)
// recorded once and run again on the current values, without recording anything.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad/tensor.hpp"

namespace tapegrad {

/// @addtogroup autograd
/// @{

template <class T>
class SgdStep;

/// A compiled step: the ops of a function f and of its gradient, recorded once by compile()
/// and run again by run() on the current values of everything f read.
///
///     auto step = tapegrad::compile(model.parameters(), [&] {
///       return tapegrad::nn::half_sse(model(inputs), targets);
///     });
///     for (int epoch = 0; epoch < 100000; ++epoch) {
///       double loss = step.run();  // forward and backward on the current values
///       sgd.step();                // the optimizers work unchanged
///       sgd.zero_grad();
///     }
///
/// What a compiled step sees, and what it cannot (as PyTorch's torch.jit.trace and JAX's jit):
/// - It reads the current values of every tensor f read: parameters changed in place by an
///   optimizer, inputs given new values with set_value() or mutable_value() (same shape).
/// - It replays the ops f ran when it was compiled, in the same order. Anything f decided
///   from a value (an `if` on a loss, a loop until convergence, a label list read from a
///   tensor, a tensor built from another's value()) was decided once, at compile time, and
///   is not decided again: compile anew when such a decision could change. Plain numbers
///   and index lists given to ops (a scale, an axis, the labels of cross_entropy) are
///   constants of the step.
/// - Every built-in op replays, the masks of piecewise ops (relu, abs, max, clamp...)
///   included. A CustomOp replays its forward; its backward must be written with tensor ops
///   and declared differentiable_backward (compile() throws TapeError naming any other).
/// - nn::dropout in training (a mask drawn from a generator) and nn::batch_norm in training
///   (running statistics updated outside the tape) would be frozen by a replay: compile()
///   throws TapeError naming them. In evaluation mode both compile.
template <class T>
class Compiled {
 public:
  /// Runs the step on the current values: the function's value, and its gradient with
  /// respect to each parameter added to that parameter's gradient (as backward() does: a
  /// parameter with no gradient gets one, one with a gradient has it increased). Returns
  /// the function's value.
  /// Throws ShapeError if a tensor f read changed shape since compile() (naming the op that
  /// reads it and both shapes), and TapeError if a tensor f read from outside no longer
  /// exists anywhere but in the step (its last value would be used forever), if the step was
  /// moved from, if it is called while the same step runs (from a custom op's forward) or, in
  /// anomaly mode, naming the first op that makes NaN or Inf from finite inputs. A custom
  /// op's forward may destroy the step while it runs: the run completes.
  T run();
  /// The number of ops run() executes (forward and backward, after dropping the ops whose
  /// results neither the value nor a parameter's gradient needs).
  std::size_t size() const;
  /// The names of the ops run() executes, in order (its forward ops, then its gradient's),
  /// each marked "*" when it runs as a flat step (an elementwise kernel, or a product, sum or
  /// broadcast on raw buffers) rather than through its record (see docs/compile.md): e.g.
  /// "sigmoid*", "matmul*", "concat".
  std::vector<std::string> ops() const;
  /// The number of ops recorded by compile() before the unneeded ones were dropped.
  std::size_t recorded_size() const;
  /// The shape of f's result (one element: () or (1), (1, 1)...).
  const Shape& value_shape() const;

  /// The recorded ops, the tensors they read and the parameters' gradients (made by compile).
  struct Plan;
  /// Made by compile(); copies share the plan (running one runs the same step).
  explicit Compiled(std::shared_ptr<Plan> plan) : plan_(std::move(plan)) {}

 private:
  friend class SgdStep<T>;
  std::shared_ptr<Plan> plan_;
};

namespace detail {
template <class U>
struct NonDeduced {
  using type = U;
};
}  // namespace detail

/// Records `f` (which takes nothing and returns a tensor of one element: a loss) and its
/// gradient with respect to `parameters` (leaves that require grad), for Compiled::run().
/// f runs once, under a tape of its own; the parameters' gradients are left as they were (or
/// as f itself left them: another step run inside f adds to them as it would eagerly, and
/// is not recorded).
/// Throws ValueError if there are no parameters, a parameter is not a leaf that requires grad
/// or f's result is not one element; TapeError if f's result does not depend on any
/// parameter, f reads a tensor computed outside it from tensors that require grad, calls
/// detach(), or uses a CustomOp that cannot be replayed (not declared
/// differentiable_backward, or whose backward makes tensors from values). A parameter listed
/// twice counts once.
template <class T>
Compiled<T> compile(const std::vector<Tensor<T>>& parameters,
                    const typename detail::NonDeduced<std::function<Tensor<T>()>>::type& f);

/// A compiled step of plain gradient descent (made by compile_sgd_step): each run() computes
/// f and its gradient on the current values and updates every parameter, w -= lr * df/dw.
///
///     auto step = tapegrad::compile_sgd_step(model.parameters(), 0.1, [&] {
///       return tapegrad::nn::cross_entropy_with_probabilities(model(batch), one_hot);
///     });
///     for (...) { fill(batch, one_hot); step.run(); }
///
/// It gives what Compiled::run() followed by optim::SGD(parameters, lr).step() and zero_grad()
/// gives, one pass over the weights cheaper: where a weight's gradient is one matrix product
/// (a linear layer's weight), the update is folded into that product (BLAS's beta = 1, as
/// hand-written training code does), so the gradient is never written and then read again.
/// Folding changes the rounding of those weights (BLAS adds lr times the product in one
/// step), so the weights agree with the separate update to rounding, not bit for bit; the
/// other parameters (biases) are updated exactly as optim::SGD does. The parameters'
/// gradients are not touched (grad() stays as it was). Plain descent only: for momentum,
/// weight decay or another optimizer, use compile() and the optimizer.
template <class T>
class SgdStep {
 public:
  /// Computes f and its gradient on the current values and updates the parameters; returns
  /// f's value (before the update). Throws as Compiled::run() does; in anomaly mode a product
  /// folded into an update is checked too, before any parameter is written.
  T run() { return step_.run(); }
  /// The learning rate the next run() uses.
  double learning_rate() const;
  /// Sets the learning rate of the following runs (a schedule); throws ValueError unless it
  /// is finite and >= 0.
  void set_learning_rate(double learning_rate);
  /// The ops run() executes, as Compiled::ops(), followed by one "sgd update" per parameter:
  /// "sgd update (folded into matmul)" where the update is folded into the gradient's
  /// product (that product is then not among the earlier ops).
  std::vector<std::string> ops() const { return step_.ops(); }
  /// The number of entries of ops().
  std::size_t size() const { return step_.size(); }

 private:
  template <class U>
  friend SgdStep<U> compile_sgd_step(
      const std::vector<Tensor<U>>&, double,
      const typename detail::NonDeduced<std::function<Tensor<U>()>>::type&);
  /// Turns a step fresh from compile() into this one.
  SgdStep(Compiled<T> step, double learning_rate);
  Compiled<T> step_;
};

/// Records f and its gradient as compile() does, and the plain gradient-descent update of
/// `parameters` with `learning_rate`, for SgdStep::run(). Throws what compile() throws, and
/// ValueError unless the learning rate is finite and >= 0.
template <class T>
SgdStep<T> compile_sgd_step(const std::vector<Tensor<T>>& parameters, double learning_rate,
                            const typename detail::NonDeduced<std::function<Tensor<T>()>>::type& f);

namespace functional {

/// A value_and_grad compiled once for arguments of given shapes (see
/// compile_value_and_grad): each call copies the arguments into leaves of its own and replays
/// the recorded step, as functional::value_and_grad would compute it anew.
template <class T>
class CompiledValueAndGrad {
 public:
  /// f(xs) and its gradient with respect to each argument (zeros where f does not depend on
  /// it), as constant tensors the caller may keep. Throws ShapeError if the number of
  /// arguments or an argument's shape differs from compile time.
  std::pair<Tensor<T>, std::vector<Tensor<T>>> operator()(const std::vector<Tensor<T>>& xs);
  /// f(x) and df/dx, for a function compiled for one argument.
  std::pair<Tensor<T>, Tensor<T>> operator()(const Tensor<T>& x);

  /// Made by compile_value_and_grad.
  CompiledValueAndGrad(std::vector<Tensor<T>> leaves, Compiled<T> step)
      : leaves_(std::move(leaves)), step_(std::move(step)) {}

 private:
  std::vector<Tensor<T>> leaves_;  // the arguments' stand-ins that the step reads
  Compiled<T> step_;
};

namespace detail {
template <class T>
CompiledValueAndGrad<T> compile_value_and_grad(
    const std::function<Tensor<T>(const std::vector<Tensor<T>>&)>& f,
    const std::vector<Tensor<T>>& xs);
}  // namespace detail

/// functional::value_and_grad for a function called many times on arguments of the same
/// shapes (a minimisation loop): f is recorded once, on copies of `xs`, and each call of the
/// result replays it on the arguments given (see docs/compile.md for what a compiled step
/// sees). f takes `const std::vector<Tensor<T>>&` and returns one element.
template <class F, class T>
CompiledValueAndGrad<T> compile_value_and_grad(F f, const std::vector<Tensor<T>>& xs) {
  return detail::compile_value_and_grad<T>(f, xs);
}
/// The same for a function of one tensor (f takes `const Tensor<T>&`).
template <class F, class T>
CompiledValueAndGrad<T> compile_value_and_grad(F f, const Tensor<T>& x) {
  return detail::compile_value_and_grad<T>(
      [f](const std::vector<Tensor<T>>& xs) { return f(xs[0]); }, std::vector<Tensor<T>>{x});
}

}  // namespace functional

extern template class Compiled<float>;
extern template class Compiled<double>;
extern template class SgdStep<float>;
extern template class SgdStep<double>;
extern template class functional::CompiledValueAndGrad<float>;
extern template class functional::CompiledValueAndGrad<double>;

/// @}

}  // namespace tapegrad

// Record once, replay many: a training step (or any scalar function and its gradient)
// recorded once and run again on the current values, without recording anything.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "tapegrad/tensor.hpp"

namespace tapegrad {

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
///   (a once_differentiable op cannot be compiled: compile() throws TapeError).
template <class T>
class Compiled {
 public:
  /// Runs the step on the current values: the function's value, and its gradient with
  /// respect to each parameter added to that parameter's gradient (as backward() does: a
  /// parameter with no gradient gets one, one with a gradient has it increased). Returns
  /// the function's value.
  /// Throws ShapeError if a tensor f read changed shape since compile() (naming the op that
  /// reads it and both shapes), and TapeError if a tensor f read from outside no longer
  /// exists anywhere but in the step (its last value would be used forever) or, in anomaly
  /// mode, naming the first op that makes NaN or Inf from finite inputs.
  T run();
  /// The number of ops run() executes (forward and backward, after dropping the ops whose
  /// results neither the value nor a parameter's gradient needs).
  std::size_t size() const;
  /// The number of ops recorded by compile() before the unneeded ones were dropped.
  std::size_t recorded_size() const;

  /// The recorded ops, the tensors they read and the parameters' gradients (made by compile).
  struct Plan;
  /// Made by compile(); copies share the plan (running one runs the same step).
  explicit Compiled(std::shared_ptr<Plan> plan) : plan_(std::move(plan)) {}

 private:
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
/// f runs once, under a tape of its own; the parameters' gradients are left as they were.
/// Throws ValueError if there are no parameters, a parameter is not a leaf that requires grad
/// or f's result is not one element; TapeError if f's result does not depend on any
/// parameter, f reads a tensor computed outside it from tensors that require grad, calls
/// detach(), or uses a CustomOp that cannot be replayed (once_differentiable, or whose
/// backward makes tensors from values). A parameter listed twice counts once.
template <class T>
Compiled<T> compile(const std::vector<Tensor<T>>& parameters,
                    const typename detail::NonDeduced<std::function<Tensor<T>()>>::type& f);

extern template class Compiled<float>;
extern template class Compiled<double>;

}  // namespace tapegrad

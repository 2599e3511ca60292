// Ops defined outside tapegrad: a forward on values and a backward written with tensor ops,
// recorded on the tape like the built-in ones (the counterpart of PyTorch's
// autograd.Function).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tapegrad/tensor.hpp"

namespace tapegrad {

/// @addtogroup autograd
/// @{

/// What a custom op's backward sees.
template <class T>
class CustomBackwardContext {
 public:
  /// Made by the library for each call of a custom op's backward: the op's name and inputs
  /// and output, the gradient flowing into the output, and for each input whether it needs a
  /// gradient.
  CustomBackwardContext(std::string op_name, std::vector<Tensor<T>> inputs, Tensor<T> output,
                        Tensor<T> grad_output, std::vector<bool> needs_grad)
      : op_name_(std::move(op_name)),
        inputs_(std::move(inputs)),
        output_(std::move(output)),
        grad_output_(std::move(grad_output)),
        needs_grad_(std::move(needs_grad)) {}

  /// Input i, as given to the forward. Throws ValueError naming the op if
  /// i >= input_count().
  const Tensor<T>& input(std::size_t i) const;
  /// The number of inputs the op was applied to.
  std::size_t input_count() const { return inputs_.size(); }
  /// The forward's result.
  const Tensor<T>& output() const { return output_; }
  /// The gradient of the differentiated result with respect to the output (output's shape).
  const Tensor<T>& grad_output() const { return grad_output_; }
  /// False when input i needs no gradient: the backward may return any tensor for it (its
  /// shape is not checked). Throws ValueError naming the op if i >= input_count().
  bool needs_grad(std::size_t i) const;

 private:
  void check_index(const char* what, std::size_t i) const;

  std::string op_name_;
  std::vector<Tensor<T>> inputs_;
  Tensor<T> output_, grad_output_;
  std::vector<bool> needs_grad_;
};

/// Tag for a CustomOp whose backward gives first derivatives only (PyTorch's
/// `once_differentiable`): `CustomOp<double> op(name, forward, backward, once_differentiable);`
struct OnceDifferentiable {};
/// The tag value (see OnceDifferentiable).
inline constexpr OnceDifferentiable once_differentiable{};

/// A differentiable op of the user's.
///
///     // y = x^3 with its own backward: dy/dx = 3 x^2.
///     const tapegrad::CustomOp<double> cube(
///         "cube",
///         [](const std::vector<tapegrad::Tensor<double>>& in) {
///           return xt::xarray<double>(in[0].value() * in[0].value() * in[0].value());
///         },
///         [](const tapegrad::CustomBackwardContext<double>& c) {
///           return std::vector{c.grad_output() * 3.0 * square(c.input(0))};
///         });
///     auto y = cube({x});
///
/// - forward computes the result's value from the inputs' values; it runs with recording
///   off, so what it does inside is not differentiated.
/// - backward returns one gradient per input, each of that input's shape. Written with
///   tensor ops on grad_output() and the inputs (as above), it is itself recorded under
///   backward(create_graph), so second derivatives work.
/// - A backward that computes on raw values (`.value()`) gives first derivatives only: declare
///   it with `once_differentiable`. Under backward(create_graph) its gradients are then
///   computed unrecorded, and differentiating through them (a Hessian, a gradient penalty)
///   throws TapeError naming the op instead of giving a silent zero.
/// - Without the tag, under backward(create_graph) and when grad_output() itself requires
///   grad (what follows the op depends on something being differentiated: a gradient
///   penalty, a Hessian of a larger expression), every gradient returned for an input that
///   needs one must be computed from grad_output() with tensor ops (returning grad_output()
///   itself counts); one that is not throws TapeError naming the op, because the second
///   derivative through what follows the op would be silently lost. When grad_output() is a
///   constant (the op is the last one before the seed), a backward on raw values cannot be
///   told from a linear op's: declare such an op once_differentiable.
/// - gradcheck works on it like on any function of tensors.
/// Throws ShapeError at backward time, naming the op, if the backward returns the wrong
/// number of gradients or, for an input that needs one, a gradient of the wrong shape.
template <class T>
class CustomOp {
 public:
  /// Computes the result's value (any shape) from the inputs; runs with recording off.
  using Forward = std::function<xt::xarray<T>(const std::vector<Tensor<T>>&)>;
  /// Returns one gradient per input, each of that input's shape: the gradient of the
  /// differentiated result with respect to that input, given grad_output.
  using Backward = std::function<std::vector<Tensor<T>>(const CustomBackwardContext<T>&)>;

  /// An op named `name` (the name appears in error messages and in graph_dot). Throws
  /// ValueError if `forward` or `backward` is empty.
  CustomOp(std::string name, Forward forward, Backward backward);
  /// An op whose backward gives first derivatives only (see OnceDifferentiable). Throws
  /// ValueError if `forward` or `backward` is empty.
  CustomOp(std::string name, Forward forward, Backward backward, OnceDifferentiable);
  /// Applies the op to any number of inputs: runs forward and returns its value as a tensor,
  /// recorded on the active tape when an input requires grad (as a built-in op is, so with no
  /// Tape active the result cannot be differentiated). Exceptions from forward pass through.
  Tensor<T> operator()(const std::vector<Tensor<T>>& inputs) const;
  /// The name given at construction.
  const std::string& name() const;

  struct State;  // the name, both functions and the tag, shared with the records using them

 private:
  std::shared_ptr<const State> state_;
};

extern template class CustomBackwardContext<float>;
extern template class CustomBackwardContext<double>;
extern template class CustomOp<float>;
extern template class CustomOp<double>;

/// @}

}  // namespace tapegrad

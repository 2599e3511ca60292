// Ops defined outside tapegrad: a forward on values and a backward of one's own (first order,
// or declared differentiable), recorded on the tape like the built-in ones (the counterpart of
// PyTorch's autograd.Function).
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
/// `once_differentiable`): `CustomOp<double> op(name, forward, backward, once_differentiable);`.
/// Since every CustomOp is first order only unless declared DifferentiableBackward, the tag
/// says the default explicitly (its errors name it).
struct OnceDifferentiable {};
/// The tag value (see OnceDifferentiable).
inline constexpr OnceDifferentiable once_differentiable{};

/// Tag declaring that a CustomOp's backward is built from tensor ops on grad_output() and the
/// inputs, so that it is recorded under backward(create_graph) and can be differentiated
/// again: `CustomOp<double> op(name, forward, backward, differentiable_backward);`. Check
/// the declaration with gradgradcheck (check.hpp).
struct DifferentiableBackward {};
/// The tag value (see DifferentiableBackward).
inline constexpr DifferentiableBackward differentiable_backward{};

/// A differentiable op of the user's.
///
///     // y = x^3 with its own backward: dy/dx = 3 x^2, written with tensor ops.
///     const tapegrad::CustomOp<double> cube(
///         "cube",
///         [](const std::vector<tapegrad::Tensor<double>>& in) {
///           return xt::xarray<double>(in[0].value() * in[0].value() * in[0].value());
///         },
///         [](const tapegrad::CustomBackwardContext<double>& c) {
///           return std::vector{c.grad_output() * 3.0 * square(c.input(0))};
///         },
///         tapegrad::differentiable_backward);
///     auto y = cube({x});
///
/// - forward computes the result's value from the inputs' values; it runs with recording
///   off, so what it does inside is not differentiated.
/// - backward returns one gradient per input, each of that input's shape; it may compute on
///   raw values (`.value()`, a Tensor made from an array). First derivatives (backward(),
///   grad, vjp, reverse-mode jacobian, gradcheck) work with any backward.
/// - Second derivatives need more: by default a custom op's backward counts as first order
///   only (PyTorch's once_differentiable). Under backward(create_graph) its gradients are
///   computed unrecorded and are right, but differentiating through them (hessian, hvp, jvp,
///   forward-mode jacobian, a gradient penalty, a Hessian from backward(create_graph))
///   throws TapeError naming the op, instead of the silently wrong number a backward on raw
///   values would give. functional::jacobian's Auto mode then falls back to reverse mode.
/// - Declared `differentiable_backward`, the backward runs recorded under
///   backward(create_graph), so second derivatives go through it: it must then be built from
///   tensor ops on grad_output() and the inputs (as above). gradgradcheck checks the
///   declaration against finite differences. When grad_output() itself requires grad (what
///   follows the op depends on something being differentiated), a returned gradient that is
///   not computed from grad_output() with tensor ops (returning grad_output() itself counts)
///   throws TapeError naming the op; a backward that multiplies grad_output() by a tensor
///   made from raw values cannot be told apart, which is what gradgradcheck is for.
/// - compile() (compile.hpp) replays a backward's ops, so it takes only custom ops declared
///   differentiable_backward and throws TapeError naming any other.
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

  /// An op named `name` (the name appears in error messages and in graph_dot) whose backward
  /// gives first derivatives only (see the class). Throws ValueError if `forward` or
  /// `backward` is empty.
  CustomOp(std::string name, Forward forward, Backward backward);
  /// The same, saying so (see OnceDifferentiable). Throws ValueError if `forward` or
  /// `backward` is empty.
  CustomOp(std::string name, Forward forward, Backward backward, OnceDifferentiable);
  /// An op whose backward is built from tensor ops and can be differentiated again (see
  /// DifferentiableBackward). Throws ValueError if `forward` or `backward` is empty.
  CustomOp(std::string name, Forward forward, Backward backward, DifferentiableBackward);
  /// Applies the op to any number of inputs: runs forward and returns its value as a tensor,
  /// recorded on the active tape when an input requires grad (as a built-in op is, so with no
  /// Tape active the result cannot be differentiated). Exceptions from forward pass through.
  Tensor<T> operator()(const std::vector<Tensor<T>>& inputs) const;
  /// The name given at construction.
  const std::string& name() const;
  /// Whether the op was declared differentiable_backward.
  bool backward_is_differentiable() const;

  struct State;  // the name, both functions and the tag, shared with the records using them

 private:
  CustomOp(std::string name, Forward forward, Backward backward, bool differentiable,
           bool tagged_once);

  std::shared_ptr<const State> state_;
};

extern template class CustomBackwardContext<float>;
extern template class CustomBackwardContext<double>;
extern template class CustomOp<float>;
extern template class CustomOp<double>;

/// @}

}  // namespace tapegrad

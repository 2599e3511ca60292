// Derivatives of functions of tensors: grad, value_and_grad, vjp, jvp, jacobian, hessian, hvp.
//
// Each differentiates f with respect to its arguments only, leaving the caller's tensors and
// their gradients untouched; called inside another transform (or while the arguments are
// being differentiated) it records, so that transforms nest: jacobian(grad(f)) is the
// Hessian. f is any callable: a lambda taking `const Tensor<T>&` (one argument) or
// `const std::vector<Tensor<T>>&` (several).
#pragma once

#include <functional>
#include <utility>
#include <vector>

#include "tapegrad/tensor.hpp"

/// Derivatives of functions of tensors: grad, value_and_grad, vjp, jvp, jacobian, hessian, hvp.
///
/// Only f's arguments are differentiated, as with PyTorch's autograd.grad: f may read the
/// caller's parameters and results of the caller's tape (as a closure), and they get no
/// gradient from the transform, nor are the caller's records used up; the arguments' own
/// gradients are not touched either. f is any callable: a lambda taking `const Tensor<T>&`
/// (one argument) or `const std::vector<Tensor<T>>&` (several). Exceptions from f pass
/// through.
///
/// Nesting, as in JAX. When recording is on (grad_enabled()) and a Tape is active, a
/// transform records f on that tape, and when an argument (or a seed: v of vjp, hvp and jvp)
/// requires grad, or f reads a tensor that requires grad (a parameter, a result of the
/// caller's), it records its own backward passes too (create_graph) and its results are
/// connected: differentiable functions of its arguments and of what f reads. That is the
/// case inside another transform, so `jacobian(grad(f))` is f's Hessian, `grad` of a
/// function calling `grad`, `jvp`, `vjp`, `hvp` or `hessian` gives the next derivative, and
/// a gradient penalty built from `grad` can be differentiated for the parameters it reads.
/// Otherwise its results are constant copies. Either way its records stay on the caller's
/// tape until that is destroyed (the caller's own records are not swept). With no Tape
/// active, or under a NoGradGuard, a transform works on a Tape of its own, with recording on
/// inside, and returns constant tensors.
///
/// An op whose backward cannot be differentiated (a CustomOp not declared
/// differentiable_backward) makes every second derivative through it throw TapeError naming
/// it: hessian, hvp, jvp, forward-mode jacobian, and an outer transform differentiating an
/// inner one's result.
namespace tapegrad::functional {

/// @addtogroup functional
/// @{

/// A function of several tensors, the form every function here is reduced to.
template <class T>
using Function = std::function<Tensor<T>(const std::vector<Tensor<T>>&)>;

/// How jacobian computes the Jacobian (the result is the same, up to rounding, either way).
enum class JacobianMode {
  /// Forward when f's arguments have fewer elements in all than f's result, else Reverse.
  /// When Forward throws TapeError (an op whose backward cannot be differentiated, such as
  /// a custom op not declared differentiable_backward), runs f again in Reverse mode.
  Auto,
  /// One Jacobian-vector product per input element (a column of J each), all sharing one
  /// evaluation of f and one backward(create_graph): cheap for few inputs, many outputs.
  /// Needs every op's backward to be differentiable, as jvp does (TapeError otherwise).
  Forward,
  /// One backward pass per output element (a row of J each): cheap for few outputs.
  Reverse,
};

namespace detail {
template <class T>
std::pair<Tensor<T>, std::vector<Tensor<T>>> value_and_grad(const Function<T>& f,
                                                            const std::vector<Tensor<T>>& xs);
template <class T>
std::pair<Tensor<T>, std::vector<Tensor<T>>> vjp(const Function<T>& f,
                                                 const std::vector<Tensor<T>>& xs,
                                                 const Tensor<T>& v);
template <class T>
std::pair<Tensor<T>, Tensor<T>> jvp(const Function<T>& f, const std::vector<Tensor<T>>& xs,
                                    const std::vector<Tensor<T>>& vs, bool one_argument);
template <class T>
std::vector<Tensor<T>> jacobian(const Function<T>& f, const std::vector<Tensor<T>>& xs,
                                JacobianMode mode);
template <class T>
Tensor<T> hessian(const Function<T>& f, const Tensor<T>& x);
template <class T>
Tensor<T> hvp(const Function<T>& f, const Tensor<T>& x, const Tensor<T>& v);

template <class T, class F>
Function<T> of_one(F f) {
  return [f](const std::vector<Tensor<T>>& xs) { return f(xs[0]); };
}
}  // namespace detail

/// f(xs) and its gradient with respect to each argument: the value (f's single-element
/// result, in f's shape) and one gradient per argument, each of that argument's shape. An
/// argument f does not depend on gets zeros. Throws ShapeError if f does not return a single
/// element.
template <class F, class T>
std::pair<Tensor<T>, std::vector<Tensor<T>>> value_and_grad(F f, const std::vector<Tensor<T>>& xs) {
  return detail::value_and_grad<T>(Function<T>(f), xs);
}
/// f(x) and df/dx for a function of one tensor; df/dx has x's shape. Throws ShapeError if f
/// does not return a single element.
template <class F, class T>
std::pair<Tensor<T>, Tensor<T>> value_and_grad(F f, const Tensor<T>& x) {
  auto [value, grads] = detail::value_and_grad<T>(detail::of_one<T>(f), {x});
  return {value, grads[0]};
}

/// The gradient of a single-element f with respect to each argument, each of that argument's
/// shape (zeros where f does not depend on it). Throws ShapeError if f does not return a
/// single element.
template <class F, class T>
std::vector<Tensor<T>> grad(F f, const std::vector<Tensor<T>>& xs) {
  return value_and_grad(f, xs).second;
}
/// df/dx for a single-element f of one tensor, same shape as x. Throws ShapeError if f does
/// not return a single element.
template <class F, class T>
Tensor<T> grad(F f, const Tensor<T>& x) {
  return value_and_grad(f, x).second;
}

/// f(xs) and the vector-Jacobian product v^T J for each argument (PyTorch's
/// autograd.functional.vjp): v has f(xs)'s shape, and the product for x_i, of x_i's shape, is
/// element [k...] = sum over out... of v[out...] d f[out...] / d x_i[k...] (zeros for an
/// argument f does not depend on). One backward pass seeded with v. Throws ShapeError naming
/// vjp and both shapes if v's shape differs from f(xs)'s.
template <class F, class T>
std::pair<Tensor<T>, std::vector<Tensor<T>>> vjp(F f, const std::vector<Tensor<T>>& xs,
                                                 const Tensor<T>& v) {
  return detail::vjp<T>(Function<T>(f), xs, v);
}
/// f(x) and v^T J for a function of one tensor: v has f(x)'s shape, the product x's shape.
/// Throws ShapeError naming vjp and both shapes if v's shape differs from f(x)'s.
template <class F, class T>
std::pair<Tensor<T>, Tensor<T>> vjp(F f, const Tensor<T>& x, const Tensor<T>& v) {
  auto [value, products] = detail::vjp<T>(detail::of_one<T>(f), {x}, v);
  return {value, products[0]};
}

/// f(xs) and the Jacobian-vector product J v (PyTorch's autograd.functional.jvp): the
/// directional derivative of f at xs along the tangents vs, one per argument and of that
/// argument's shape; J v has f(xs)'s shape, element [out...] = sum over i, k... of
/// d f[out...] / d x_i[k...] vs[i][k...].
///
/// Computed by reverse mode twice (the "double-vjp" trick): backward(create_graph) from f's
/// result seeded with a leaf u gives g(u) = u^T J, recorded; g is linear in u, so
/// d/du <g(u), v> = J v exactly. Cost: one evaluation of f, one reverse sweep recording the
/// backward pass, and one reverse sweep over those records (a true forward mode would need
/// one pass alongside f instead of the two sweeps). Every op f uses needs a backward that can be
/// differentiated (as for hessian): a custom op not declared differentiable_backward throws
/// TapeError naming it.
/// Throws ShapeError naming jvp if vs has a different count than xs or a tangent's shape
/// differs from its argument's.
template <class F, class T>
std::pair<Tensor<T>, Tensor<T>> jvp(F f, const std::vector<Tensor<T>>& xs,
                                    const std::vector<Tensor<T>>& vs) {
  return detail::jvp<T>(Function<T>(f), xs, vs, false);
}
/// f(x) and J v for a function of one tensor: v has x's shape, J v f(x)'s. Computed as the
/// vector form (two reverse sweeps, one over the records of backward(create_graph)). Throws
/// ShapeError naming jvp and both shapes if v's shape differs from x's.
template <class F, class T>
std::pair<Tensor<T>, Tensor<T>> jvp(F f, const Tensor<T>& x, const Tensor<T>& v) {
  return detail::jvp<T>(detail::of_one<T>(f), {x}, {v}, true);
}

/// For each argument x_i, the Jacobian of f: shape f(xs).shape + x_i.shape, element
/// [out..., in...] = d f[out...] / d x_i[in...]. f may return any shape; all zeros when f
/// does not depend on the arguments. `mode` chooses how (see JacobianMode): Reverse takes
/// one backward pass per output element; Forward one backward(create_graph) and then one
/// pass over its records per input element; Auto (the default) takes Forward when the
/// arguments have fewer elements in all than f's result. f runs once (twice when Auto falls
/// back from Forward to Reverse).
template <class F, class T>
std::vector<Tensor<T>> jacobian(F f, const std::vector<Tensor<T>>& xs,
                                JacobianMode mode = JacobianMode::Auto) {
  return detail::jacobian<T>(Function<T>(f), xs, mode);
}
/// The Jacobian of f for a function of one tensor: shape f(x).shape + x.shape, element
/// [out..., in...] = d f[out...] / d x[in...]. f may return any shape. `mode` as for the
/// form with several arguments.
template <class F, class T>
Tensor<T> jacobian(F f, const Tensor<T>& x, JacobianMode mode = JacobianMode::Auto) {
  return detail::jacobian<T>(detail::of_one<T>(f), {x}, mode)[0];
}

/// The Hessian of a single-element f of one tensor: shape x.shape + x.shape, element
/// [i..., j...] = d^2 f / d x[i...] d x[j...]. Built from backward(create_graph) and one more
/// backward pass per element of x; all zeros when f is linear in x or does not depend on it.
/// Throws ShapeError if f does not return a single element.
template <class F, class T>
Tensor<T> hessian(F f, const Tensor<T>& x) {
  return detail::hessian<T>(detail::of_one<T>(f), x);
}

/// The Hessian-vector product H v of a single-element f at x, without forming H: two
/// backward passes, the second differentiating the dot product of the gradient with v. The
/// result has x's shape. Throws ShapeError if v's shape differs from x's or f does not
/// return a single element.
template <class F, class T>
Tensor<T> hvp(F f, const Tensor<T>& x, const Tensor<T>& v) {
  return detail::hvp<T>(detail::of_one<T>(f), x, v);
}

/// @}

}  // namespace tapegrad::functional

// Derivatives of functions of tensors: grad, value_and_grad, jacobian, hessian, hvp.
//
// Each evaluates the function on fresh leaf copies of the arguments inside a tape of its
// own, so the caller's tensors and their gradients are left untouched, and returns
// constant tensors. f is any callable: a lambda taking `const Tensor<T>&` (one argument)
// or `const std::vector<Tensor<T>>&` (several).
#pragma once

#include <functional>
#include <utility>
#include <vector>

#include "tapegrad/tensor.hpp"

/// Derivatives of functions of tensors: grad, value_and_grad, jacobian, hessian, hvp. Each
/// evaluates f on fresh leaf copies of the arguments (all requiring grad) on a Tape of its own
/// and returns constant tensors; the caller's tensors and their gradients are not touched.
/// f may read the caller's parameters and results of the caller's tape (as a closure): only
/// f's arguments are differentiated, as with PyTorch's autograd.grad, so the parameters get
/// no gradient and the caller's records stay usable for its own backward().
/// f is any callable: a lambda taking `const Tensor<T>&` (one argument) or
/// `const std::vector<Tensor<T>>&` (several). Exceptions from f pass through.
namespace tapegrad::functional {

/// A function of several tensors, the form every function here is reduced to.
template <class T>
using Function = std::function<Tensor<T>(const std::vector<Tensor<T>>&)>;

namespace detail {
template <class T>
std::pair<Tensor<T>, std::vector<Tensor<T>>> value_and_grad(const Function<T>& f,
                                                            const std::vector<Tensor<T>>& xs);
template <class T>
std::vector<Tensor<T>> jacobian(const Function<T>& f, const std::vector<Tensor<T>>& xs);
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

/// For each argument x_i, the Jacobian of f: shape f(xs).shape + x_i.shape, element
/// [out..., in...] = d f[out...] / d x_i[in...]. f may return any shape. One backward pass
/// per output element; all zeros when f does not depend on the arguments.
template <class F, class T>
std::vector<Tensor<T>> jacobian(F f, const std::vector<Tensor<T>>& xs) {
  return detail::jacobian<T>(Function<T>(f), xs);
}
/// The Jacobian of f for a function of one tensor: shape f(x).shape + x.shape, element
/// [out..., in...] = d f[out...] / d x[in...]. f may return any shape.
template <class F, class T>
Tensor<T> jacobian(F f, const Tensor<T>& x) {
  return detail::jacobian<T>(detail::of_one<T>(f), {x})[0];
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

}  // namespace tapegrad::functional

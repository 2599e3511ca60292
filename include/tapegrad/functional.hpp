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

namespace tapegrad::functional {

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

/// f(xs) and its gradient with respect to each argument. f must return a single element
/// (ShapeError otherwise). An argument f does not depend on gets zeros.
template <class F, class T>
std::pair<Tensor<T>, std::vector<Tensor<T>>> value_and_grad(F f, const std::vector<Tensor<T>>& xs) {
  return detail::value_and_grad<T>(Function<T>(f), xs);
}
/// f(x) and df/dx for a function of one tensor.
template <class F, class T>
std::pair<Tensor<T>, Tensor<T>> value_and_grad(F f, const Tensor<T>& x) {
  auto [value, grads] = detail::value_and_grad<T>(detail::of_one<T>(f), {x});
  return {value, grads[0]};
}

/// The gradient of a single-element f with respect to each argument.
template <class F, class T>
std::vector<Tensor<T>> grad(F f, const std::vector<Tensor<T>>& xs) {
  return value_and_grad(f, xs).second;
}
/// df/dx, same shape as x.
template <class F, class T>
Tensor<T> grad(F f, const Tensor<T>& x) {
  return value_and_grad(f, x).second;
}

/// For each argument x_i, the Jacobian of f: shape f(xs).shape + x_i.shape, element
/// [out..., in...] = d f[out...] / d x_i[in...]. One backward pass per output element.
template <class F, class T>
std::vector<Tensor<T>> jacobian(F f, const std::vector<Tensor<T>>& xs) {
  return detail::jacobian<T>(Function<T>(f), xs);
}
template <class F, class T>
Tensor<T> jacobian(F f, const Tensor<T>& x) {
  return detail::jacobian<T>(detail::of_one<T>(f), {x})[0];
}

/// The Hessian of a single-element f of one tensor: shape x.shape + x.shape. Built from
/// backward(create_graph) and one more backward pass per element of x.
template <class F, class T>
Tensor<T> hessian(F f, const Tensor<T>& x) {
  return detail::hessian<T>(detail::of_one<T>(f), x);
}

/// The Hessian-vector product H v of a single-element f at x, without forming H: two
/// backward passes. v must have x's shape (ShapeError otherwise).
template <class F, class T>
Tensor<T> hvp(F f, const Tensor<T>& x, const Tensor<T>& v) {
  return detail::hvp<T>(detail::of_one<T>(f), x, v);
}

}  // namespace tapegrad::functional

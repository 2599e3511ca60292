#include "tapegrad/functional.hpp"

#include <optional>
#include <string>

#include "core/shape.hpp"
#include "core/sweep.hpp"
#include "tapegrad/error.hpp"
#include "tapegrad/ops.hpp"
#include "tapegrad/tape.hpp"

namespace tapegrad::functional::detail {

namespace {

template <class T>
std::vector<Tensor<T>> leaf_copies(const std::vector<Tensor<T>>& xs) {
  std::vector<Tensor<T>> leaves;
  for (const auto& x : xs) leaves.emplace_back(xt::xarray<T>(x.value()), requires_grad);
  return leaves;
}

template <class T>
void require_single(const char* who, const Tensor<T>& y) {
  if (y.size() != 1) {
    throw ShapeError(std::string(who) + ": f must return a single element, got shape " +
                     shape_to_string(y.shape()));
  }
}

template <class T>
Tensor<T> grad_or_zeros(const Tensor<T>& x) {
  return x.has_grad() ? Tensor<T>(xt::xarray<T>(x.grad()))
                      : Tensor<T>(xt::xarray<T>(xt::zeros<T>(x.shape())));
}

// backward() from y into the helper's own leaves only (see tapegrad::detail::backward_into).
template <class T>
void backward_into(const Tensor<T>& y, const std::vector<Tensor<T>>& leaves,
                   BackwardMode mode = BackwardMode{}) {
  tapegrad::detail::backward_into(y, Tensor<T>(xt::xarray<T>(xt::ones<T>(y.shape()))), mode,
                                  leaves);
}
template <class T>
void backward_into(const Tensor<T>& y, xt::xarray<T>&& seed, const std::vector<Tensor<T>>& leaves,
                   BackwardMode mode) {
  tapegrad::detail::backward_into(y, Tensor<T>(std::move(seed)), mode, leaves);
}

template <class T>
Tensor<T> zeros_like_tensor(const Shape& shape) {
  return Tensor<T>(xt::xarray<T>(xt::zeros<T>(shape)));
}

// The double-vjp trick: backward(create_graph) from y seeded with a leaf u records
// g_i(u) = u^T J_i, linear in u, so differentiating g_i with respect to u gives columns of
// J_i. gs[i] is empty (no tensor) where no gradient reached leaf i or it does not depend on u.
template <class T>
struct Linearization {
  Tensor<T> u;
  std::vector<std::optional<Tensor<T>>> gs;
};

template <class T>
Linearization<T> linearize(const Tensor<T>& y, const std::vector<Tensor<T>>& leaves) {
  Linearization<T> lin{Tensor<T>(xt::xarray<T>(xt::ones<T>(y.shape())), requires_grad), {}};
  lin.gs.resize(leaves.size());
  if (!y.requires_grad()) return lin;
  tapegrad::detail::backward_into(y, lin.u, create_graph, leaves);
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    if (!leaves[i].has_grad()) continue;
    const Tensor<T> g = leaves[i].grad_tensor();
    if (g.requires_grad()) lin.gs[i] = g;
  }
  return lin;
}

}  // namespace

template <class T>
std::pair<Tensor<T>, std::vector<Tensor<T>>> value_and_grad(const Function<T>& f,
                                                            const std::vector<Tensor<T>>& xs) {
  auto leaves = leaf_copies(xs);
  Tape tape;
  const Tensor<T> y = f(leaves);
  require_single("value_and_grad", y);
  if (y.requires_grad()) backward_into(y, leaves);
  std::vector<Tensor<T>> grads;
  for (const auto& leaf : leaves) grads.push_back(grad_or_zeros(leaf));
  return {y.detach(), grads};
}

template <class T>
std::pair<Tensor<T>, std::vector<Tensor<T>>> vjp(const Function<T>& f,
                                                 const std::vector<Tensor<T>>& xs,
                                                 const Tensor<T>& v) {
  auto leaves = leaf_copies(xs);
  Tape tape;
  const Tensor<T> y = f(leaves);
  if (v.shape() != y.shape()) {
    throw ShapeError("vjp: v has shape " + shape_to_string(v.shape()) + " but f(x) has shape " +
                     shape_to_string(y.shape()));
  }
  if (y.requires_grad()) backward_into(y, xt::xarray<T>(v.value()), leaves, BackwardMode{});
  std::vector<Tensor<T>> products;
  for (const auto& leaf : leaves) products.push_back(grad_or_zeros(leaf));
  return {y.detach(), products};
}

template <class T>
std::pair<Tensor<T>, Tensor<T>> jvp(const Function<T>& f, const std::vector<Tensor<T>>& xs,
                                    const std::vector<Tensor<T>>& vs, bool one_argument) {
  if (vs.size() != xs.size()) {
    throw ShapeError("jvp: " + std::to_string(vs.size()) + " tangents v for " +
                     std::to_string(xs.size()) + " arguments");
  }
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (vs[i].shape() == xs[i].shape()) continue;
    const std::string which = one_argument ? "v" : "v[" + std::to_string(i) + "]";
    const std::string argument = one_argument ? "x" : "argument " + std::to_string(i);
    throw ShapeError("jvp: " + which + " has shape " + shape_to_string(vs[i].shape()) + " but " +
                     argument + " has shape " + shape_to_string(xs[i].shape()));
  }
  auto leaves = leaf_copies(xs);
  Tape tape;
  const Tensor<T> y = f(leaves);
  const auto lin = linearize(y, leaves);
  std::optional<Tensor<T>> dot;  // <g(u), v>, summed over the arguments
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!lin.gs[i]) continue;
    const Tensor<T> term = sum(*lin.gs[i] * vs[i].detach());
    dot = dot ? *dot + term : term;
  }
  if (!dot || !dot->requires_grad()) return {y.detach(), zeros_like_tensor<T>(y.shape())};
  backward_into(*dot, std::vector<Tensor<T>>{lin.u});
  return {y.detach(), grad_or_zeros(lin.u)};
}

namespace {

// Row `out` of every Jacobian from one backward pass seeded with a one-hot at `out`.
template <class T>
void jacobian_reverse(const Tensor<T>& y, std::vector<Tensor<T>>& leaves,
                      std::vector<xt::xarray<T>>& jacobians) {
  for (std::size_t out = 0; out < y.size(); ++out) {
    for (auto& leaf : leaves) leaf.zero_grad();
    xt::xarray<T> pick = xt::zeros<T>(y.shape());
    pick.data()[out] = T(1);
    backward_into(y, std::move(pick), leaves, retain_graph);
    for (std::size_t i = 0; i < leaves.size(); ++i) {
      if (!leaves[i].has_grad()) continue;
      std::copy(leaves[i].grad().begin(), leaves[i].grad().end(),
                jacobians[i].data() + out * leaves[i].size());
    }
  }
}

// Column k of J_i as d g_i(u)[k] / du: one pass over the create_graph records per input element.
template <class T>
void jacobian_forward(const Tensor<T>& y, const std::vector<Tensor<T>>& leaves,
                      std::vector<xt::xarray<T>>& jacobians) {
  auto lin = linearize(y, leaves);
  const std::vector<Tensor<T>> only_u{lin.u};
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    if (!lin.gs[i]) continue;
    const std::size_t n = leaves[i].size();
    for (std::size_t k = 0; k < n; ++k) {
      lin.u.zero_grad();
      xt::xarray<T> pick = xt::zeros<T>(leaves[i].shape());
      pick.data()[k] = T(1);
      backward_into(*lin.gs[i], std::move(pick), only_u, retain_graph);
      if (!lin.u.has_grad()) continue;
      const auto& column = lin.u.grad();
      for (std::size_t out = 0; out < y.size(); ++out)
        jacobians[i].data()[out * n + k] = column.data()[out];
    }
  }
}

}  // namespace

template <class T>
std::vector<Tensor<T>> jacobian(const Function<T>& f, const std::vector<Tensor<T>>& xs,
                                JacobianMode mode) {
  auto leaves = leaf_copies(xs);
  Tape tape;
  const Tensor<T> y = f(leaves);
  std::vector<xt::xarray<T>> jacobians;
  std::size_t inputs = 0;
  for (const auto& x : xs) {
    jacobians.push_back(
        xt::zeros<T>(tapegrad::detail::concat_shapes("jacobian", y.shape(), x.shape())));
    inputs += x.size();
  }
  const bool automatic = mode == JacobianMode::Auto;
  if (automatic) mode = inputs < y.size() ? JacobianMode::Forward : JacobianMode::Reverse;
  if (y.requires_grad()) {
    if (mode == JacobianMode::Forward) {
      try {
        jacobian_forward(y, leaves, jacobians);
      } catch (const TapeError&) {
        if (!automatic) throw;
        // An op whose backward cannot be differentiated (once_differentiable); reverse mode
        // needs first derivatives only. Run afresh: the failed sweep may have left partial
        // gradients behind.
        return jacobian<T>(f, xs, JacobianMode::Reverse);
      }
    } else {
      jacobian_reverse(y, leaves, jacobians);
    }
  }
  std::vector<Tensor<T>> result;
  for (auto& j : jacobians) result.emplace_back(std::move(j));
  return result;
}

template <class T>
Tensor<T> hessian(const Function<T>& f, const Tensor<T>& x) {
  auto leaves = leaf_copies(std::vector<Tensor<T>>{x});
  auto& leaf = leaves[0];
  Tape tape;
  const Tensor<T> y = f(leaves);
  require_single("hessian", y);
  xt::xarray<T> h = xt::zeros<T>(tapegrad::detail::concat_shapes("hessian", x.shape(), x.shape()));
  if (!y.requires_grad()) return Tensor<T>(std::move(h));
  backward_into(y, leaves, create_graph);
  if (!leaf.has_grad()) return Tensor<T>(std::move(h));
  const Tensor<T> gradient = leaf.grad_tensor();
  if (!gradient.requires_grad()) return Tensor<T>(std::move(h));  // f is linear in x
  for (std::size_t row = 0; row < x.size(); ++row) {
    leaf.zero_grad();
    xt::xarray<T> pick = xt::zeros<T>(x.shape());
    pick.data()[row] = T(1);
    backward_into(gradient, std::move(pick), leaves, retain_graph);
    if (leaf.has_grad())
      std::copy(leaf.grad().begin(), leaf.grad().end(), h.data() + row * x.size());
  }
  return Tensor<T>(std::move(h));
}

template <class T>
Tensor<T> hvp(const Function<T>& f, const Tensor<T>& x, const Tensor<T>& v) {
  if (v.shape() != x.shape()) {
    throw ShapeError("hvp: v has shape " + shape_to_string(v.shape()) + " but x has shape " +
                     shape_to_string(x.shape()));
  }
  auto leaves = leaf_copies(std::vector<Tensor<T>>{x});
  auto& leaf = leaves[0];
  Tape tape;
  const Tensor<T> y = f(leaves);
  require_single("hvp", y);
  if (!y.requires_grad()) return Tensor<T>(xt::xarray<T>(xt::zeros<T>(x.shape())));
  backward_into(y, leaves, create_graph);
  if (!leaf.has_grad()) return Tensor<T>(xt::xarray<T>(xt::zeros<T>(x.shape())));
  const Tensor<T> gradient = leaf.grad_tensor();
  leaf.zero_grad();
  if (!gradient.requires_grad()) return Tensor<T>(xt::xarray<T>(xt::zeros<T>(x.shape())));
  backward_into(sum(gradient * v.detach()), leaves);  // d(g . v)/dx = H v
  return grad_or_zeros(leaf);
}

#define TAPEGRAD_INSTANTIATE(T)                                                                   \
  template std::pair<Tensor<T>, std::vector<Tensor<T>>> value_and_grad(                           \
      const Function<T>&, const std::vector<Tensor<T>>&);                                         \
  template std::pair<Tensor<T>, std::vector<Tensor<T>>> vjp(                                      \
      const Function<T>&, const std::vector<Tensor<T>>&, const Tensor<T>&);                       \
  template std::pair<Tensor<T>, Tensor<T>> jvp(const Function<T>&, const std::vector<Tensor<T>>&, \
                                               const std::vector<Tensor<T>>&, bool);              \
  template std::vector<Tensor<T>> jacobian(const Function<T>&, const std::vector<Tensor<T>>&,     \
                                           JacobianMode);                                         \
  template Tensor<T> hessian(const Function<T>&, const Tensor<T>&);                               \
  template Tensor<T> hvp(const Function<T>&, const Tensor<T>&, const Tensor<T>&);

TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad::functional::detail

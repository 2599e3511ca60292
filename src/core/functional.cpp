#include "tapegrad/functional.hpp"

#include <string>

#include "core/shape.hpp"
#include "core/sweep.hpp"
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
  tapegrad::detail::backward_into(y, Tensor<T>(xt::xarray<T>(xt::ones<T>(y.shape()))), mode, leaves);
}
template <class T>
void backward_into(const Tensor<T>& y, xt::xarray<T>&& seed, const std::vector<Tensor<T>>& leaves,
                   BackwardMode mode) {
  tapegrad::detail::backward_into(y, Tensor<T>(std::move(seed)), mode, leaves);
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
std::vector<Tensor<T>> jacobian(const Function<T>& f, const std::vector<Tensor<T>>& xs) {
  auto leaves = leaf_copies(xs);
  Tape tape;
  const Tensor<T> y = f(leaves);
  std::vector<xt::xarray<T>> jacobians;
  for (const auto& x : xs) jacobians.push_back(xt::zeros<T>(tapegrad::detail::concat_shapes("jacobian", y.shape(), x.shape())));
  if (y.requires_grad()) {
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
    if (leaf.has_grad()) std::copy(leaf.grad().begin(), leaf.grad().end(), h.data() + row * x.size());
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

#define TAPEGRAD_INSTANTIATE(T)                                                         \
  template std::pair<Tensor<T>, std::vector<Tensor<T>>> value_and_grad(                 \
      const Function<T>&, const std::vector<Tensor<T>>&);                               \
  template std::vector<Tensor<T>> jacobian(const Function<T>&, const std::vector<Tensor<T>>&); \
  template Tensor<T> hessian(const Function<T>&, const Tensor<T>&);                     \
  template Tensor<T> hvp(const Function<T>&, const Tensor<T>&, const Tensor<T>&);

TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad::functional::detail

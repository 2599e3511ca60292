// Reductions: sum, mean, max along an axis, logsumexp.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include <xtensor/xmath.hpp>

#include "core/backward_context.hpp"
#include "core/recording.hpp"
#include "core/shape.hpp"
#include "ops/kernels.hpp"
#include "tapegrad/ops.hpp"

namespace tapegrad {

using detail::Attrs;
using detail::AxisWalk;
using detail::BackwardContext;
using detail::constant;
using detail::dropped_shape;
using detail::kept_shape;
using detail::make_result;
using detail::normalize_axes;

namespace {

// The gradient of a reduction, put back in x's shape: reshape g to the kept shape, then
// broadcast. attrs.shape() holds the kept shape.
template <class T>
Tensor<T> expand_reduced(const Tensor<T>& g, const Shape& kept, const Shape& full) {
  return broadcast_to(reshape(g, kept), full);
}

}  // namespace

template <class T>
Tensor<T> sum(const Tensor<T>& x) {
  // A plain loop over the data: xtensor's iterator steps through strides, several times
  // slower on a large array.
  T total = 0;
  const T* data = x.value().data();
  for (std::size_t i = 0, n = x.size(); i < n; ++i) total += data[i];
  return make_result<T>("sum", xt::xarray<T>(total), x, [](BackwardContext<T>& c) {
    c.add(0, broadcast_to(c.grad(), c.input(0).shape()));
  });
}

template <class T>
Tensor<T> sum(const Tensor<T>& x, const Axes& axes, bool keepdims) {
  const auto norm = normalize_axes("sum", axes, x.dim());
  Attrs attrs;
  attrs.shape() = kept_shape("sum", x.shape(), norm);
  auto value = detail::reduce_to(x.value(), attrs.shape());
  if (!keepdims) value->value.reshape(dropped_shape(x.shape(), norm));
  return make_result<T>(
      "sum", std::move(value), x,
      [](BackwardContext<T>& c) {
        c.add(0, expand_reduced(c.grad(), c.attrs().shape(), c.input(0).shape()));
      },
      std::move(attrs));
}

template <class T>
Tensor<T> mean(const Tensor<T>& x) {
  if (x.size() == 0) throw ValueError("mean: the tensor " + shape_to_string(x.shape()) + " is empty");
  return affine(sum(x), 1.0 / static_cast<double>(x.size()));
}

template <class T>
Tensor<T> mean(const Tensor<T>& x, const Axes& axes, bool keepdims) {
  std::size_t count = 1;
  for (auto axis : normalize_axes("mean", axes, x.dim())) count *= x.shape()[axis];
  if (count == 0) throw ValueError("mean: no elements along the given axes of " + shape_to_string(x.shape()));
  return affine(sum(x, axes, keepdims), 1.0 / static_cast<double>(count));
}

template <class T>
Tensor<T> max(const Tensor<T>& x, std::ptrdiff_t axis, bool keepdims) {
  const std::size_t a = detail::normalize_axis("max", axis, x.dim());
  if (x.shape()[a] == 0) {
    throw ValueError("max: axis " + std::to_string(axis) + " of " + shape_to_string(x.shape()) +
                     " is empty");
  }
  Attrs attrs;
  attrs.shape() = kept_shape("max", x.shape(), {a});
  attrs.axis = static_cast<std::ptrdiff_t>(a);
  auto value = detail::max_along(x.value(), a);
  if (!keepdims) value->value.reshape(dropped_shape(x.shape(), {a}));
  return make_result<T>(
      "max", std::move(value), x,
      [](BackwardContext<T>& c) {
        // The gradient goes to the first position of each maximum, or of the first NaN,
        // which the forward returned (as PyTorch).
        const auto& v = c.input(0).value();
        const AxisWalk walk(v.shape(), static_cast<std::size_t>(c.attrs().axis));
        xt::xarray<T> mask = xt::zeros<T>(v.shape());
        for (std::size_t o = 0; o < walk.outer; ++o) {
          for (std::size_t i = 0; i < walk.inner; ++i) {
            const std::size_t base = o * walk.extent * walk.inner + i;
            std::size_t best = base;
            for (std::size_t k = 1; k < walk.extent; ++k) {
              const std::size_t at = base + k * walk.inner;
              const T candidate = v.data()[at], current = v.data()[best];
              if (current != current) break;
              if (candidate > current || candidate != candidate) best = at;
            }
            mask.data()[best] = T(1);
          }
        }
        c.add(0, mul(expand_reduced(c.grad(), c.attrs().shape(), v.shape()),
                     constant<T>(std::move(mask))));
      },
      std::move(attrs));
}

template <class T>
Tensor<T> logsumexp(const Tensor<T>& x, std::ptrdiff_t axis, bool keepdims) {
  const std::size_t a = detail::normalize_axis("logsumexp", axis, x.dim());
  Attrs attrs;
  attrs.shape() = kept_shape("logsumexp", x.shape(), {a});
  // An empty row gives log 0 = -inf, as in NumPy and PyTorch.
  const xt::xarray<T> m = detail::softmax_shift(x.value(), a);
  xt::xarray<T> value = m + xt::log(detail::reduce_to(xt::xarray<T>(xt::exp(x.value() - m)), attrs.shape())->value);
  if (!keepdims) value.reshape(dropped_shape(x.shape(), {a}));
  return make_result<T>(
      "logsumexp", std::move(value), x,
      [](BackwardContext<T>& c) {
        const auto& kept = c.attrs().shape();
        const auto x = c.input(0);
        const auto softmax_x = exp(sub(x, expand_reduced(c.output(), kept, x.shape())));
        c.add(0, mul(expand_reduced(c.grad(), kept, x.shape()), softmax_x));
      },
      std::move(attrs));
}

#define TAPEGRAD_INSTANTIATE(T)                                            \
  template Tensor<T> sum(const Tensor<T>&);                                \
  template Tensor<T> sum(const Tensor<T>&, const Axes&, bool);             \
  template Tensor<T> mean(const Tensor<T>&);                               \
  template Tensor<T> mean(const Tensor<T>&, const Axes&, bool);            \
  template Tensor<T> max(const Tensor<T>&, std::ptrdiff_t, bool);          \
  template Tensor<T> logsumexp(const Tensor<T>&, std::ptrdiff_t, bool);

TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad

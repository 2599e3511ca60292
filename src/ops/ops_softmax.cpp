// softmax and log_softmax: primitives with their own backward, for numerical stability.
#include <xtensor/xmath.hpp>

#include "core/backward_context.hpp"
#include "core/recording.hpp"
#include "core/shape.hpp"
#include "ops/kernels.hpp"
#include "tapegrad/ops.hpp"

namespace tapegrad {

using detail::Attrs;
using detail::BackwardContext;
using detail::make_result;

namespace {

// x - max(x) along `axis` (see softmax_shift).
template <class T>
xt::xarray<T> shifted(const xt::xarray<T>& x, std::size_t axis) {
  return x - detail::softmax_shift(x, axis);
}

// The sum along `axis`, kept at extent 1 (0 for an empty axis).
template <class T>
xt::xarray<T> sum_kept(const xt::xarray<T>& x, std::size_t axis) {
  Shape kept = x.shape();
  kept[axis] = 1;
  return std::move(detail::reduce_to(x, kept)->value);
}

}  // namespace

template <class T>
Tensor<T> softmax(const Tensor<T>& x, std::ptrdiff_t axis) {
  const std::size_t a = detail::normalize_axis("softmax", axis, x.dim());
  xt::xarray<T> value = x.value();  // empty stays empty, however large its other extents
  if (x.size() > 0) {
    xt::xarray<T> e = xt::exp(shifted(x.value(), a));
    value = e / sum_kept(e, a);
  }
  Attrs attrs;
  attrs.axis = static_cast<std::ptrdiff_t>(a);
  return make_result<T>(
      "softmax", std::move(value), x,
      [](BackwardContext<T>& c) {
        const Axes along{c.attrs().axis};
        const auto y = c.output();
        const auto g = c.grad();
        c.add(0, mul(y, sub(g, sum(mul(g, y), along, true))));
      },
      std::move(attrs));
}

template <class T>
Tensor<T> log_softmax(const Tensor<T>& x, std::ptrdiff_t axis) {
  const std::size_t a = detail::normalize_axis("log_softmax", axis, x.dim());
  xt::xarray<T> value = x.value();  // empty stays empty, however large its other extents
  if (x.size() > 0) {
    xt::xarray<T> s = shifted(x.value(), a);
    value = s - xt::log(sum_kept(xt::xarray<T>(xt::exp(s)), a));
  }
  Attrs attrs;
  attrs.axis = static_cast<std::ptrdiff_t>(a);
  return make_result<T>(
      "log_softmax", std::move(value), x,
      [](BackwardContext<T>& c) {
        const Axes along{c.attrs().axis};
        const auto g = c.grad();
        c.add(0, sub(g, mul(exp(c.output()), sum(g, along, true))));
      },
      std::move(attrs));
}

template Tensor<float> softmax(const Tensor<float>&, std::ptrdiff_t);
template Tensor<double> softmax(const Tensor<double>&, std::ptrdiff_t);
template Tensor<float> log_softmax(const Tensor<float>&, std::ptrdiff_t);
template Tensor<double> log_softmax(const Tensor<double>&, std::ptrdiff_t);

}  // namespace tapegrad

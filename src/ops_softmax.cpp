// softmax and log_softmax: primitives with their own backward, for numerical stability.
#include <xtensor/xmath.hpp>
#include <xtensor/xreducer.hpp>

#include "autograd.hpp"
#include "tapegrad/ops.hpp"

namespace tapegrad {

using detail::Attrs;
using detail::BackwardContext;
using detail::make_result;

namespace {

// x - max(x) along `axis`, with rows of infinities shifted by 0 instead of inf - inf.
template <class T>
xt::xarray<T> shifted(const xt::xarray<T>& x, std::size_t axis) {
  xt::xarray<T> m = xt::amax(x, {axis}, xt::keep_dims | xt::evaluation_strategy::immediate);
  m = xt::where(xt::isfinite(m), m, T(0));
  return x - m;
}

template <class T>
xt::xarray<T> sum_kept(const xt::xarray<T>& x, std::size_t axis) {
  return xt::sum(x, {axis}, xt::keep_dims | xt::evaluation_strategy::immediate);
}

}  // namespace

template <class T>
Tensor<T> softmax(const Tensor<T>& x, std::ptrdiff_t axis) {
  const std::size_t a = detail::normalize_axis("softmax", axis, x.dim());
  xt::xarray<T> e = xt::exp(shifted(x.value(), a));
  xt::xarray<T> value = e / sum_kept(e, a);
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
  xt::xarray<T> s = shifted(x.value(), a);
  xt::xarray<T> value = s - xt::log(sum_kept(xt::xarray<T>(xt::exp(s)), a));
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

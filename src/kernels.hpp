// Elementwise loops for the ops' forward values. xtensor's expression machinery costs more
// than the arithmetic on the small arrays of a typical model, so the hot ops use these
// plain loops: one flat loop when the shapes agree, a strided loop when they broadcast.
#pragma once

#include <cstddef>

#include <xtensor/xarray.hpp>

#include "autograd.hpp"

namespace tapegrad::detail {

template <class T, class F>
xt::xarray<T> map_unary(const xt::xarray<T>& x, F f) {
  xt::xarray<T> y = xt::xarray<T>::from_shape(x.shape());
  const T* in = x.data();
  T* out = y.data();
  const std::size_t n = y.size();
  for (std::size_t i = 0; i < n; ++i) out[i] = f(in[i]);
  return y;
}

template <class T, class F>
xt::xarray<T> map_binary(const char* op, const xt::xarray<T>& a, const xt::xarray<T>& b, F f) {
  if (a.shape() == b.shape()) {
    xt::xarray<T> y = xt::xarray<T>::from_shape(a.shape());
    const T* pa = a.data();
    const T* pb = b.data();
    T* out = y.data();
    const std::size_t n = y.size();
    for (std::size_t i = 0; i < n; ++i) out[i] = f(pa[i], pb[i]);
    return y;
  }
  const Shape shape = broadcast_shapes(op, a.shape(), b.shape());
  const std::size_t dim = shape.size();
  // Element strides of a and b over the result's index space: 0 along broadcast axes.
  Shape stride_a(dim, 0), stride_b(dim, 0);
  std::size_t sa = 1, sb = 1;
  for (std::size_t i = dim; i-- > 0;) {
    const std::size_t ia = i + a.dimension() - dim;  // wraps when a has fewer axes
    const std::size_t ib = i + b.dimension() - dim;
    if (i + a.dimension() >= dim) {
      stride_a[i] = a.shape()[ia] == 1 ? 0 : sa;
      sa *= a.shape()[ia];
    }
    if (i + b.dimension() >= dim) {
      stride_b[i] = b.shape()[ib] == 1 ? 0 : sb;
      sb *= b.shape()[ib];
    }
  }
  xt::xarray<T> y = xt::xarray<T>::from_shape(shape);
  if (y.size() == 0) return y;
  T* out = y.data();
  const T* pa = a.data();
  const T* pb = b.data();
  const std::size_t inner = shape[dim - 1];
  const std::size_t inner_a = stride_a[dim - 1];
  const std::size_t inner_b = stride_b[dim - 1];
  Shape index(dim, 0);
  std::size_t offset_a = 0, offset_b = 0;
  for (std::size_t done = 0; done < y.size(); done += inner) {
    for (std::size_t j = 0; j < inner; ++j) {
      *out++ = f(pa[offset_a + j * inner_a], pb[offset_b + j * inner_b]);
    }
    // Advance the index over the outer axes, like an odometer.
    for (std::size_t i = dim - 1; i-- > 0;) {
      offset_a += stride_a[i];
      offset_b += stride_b[i];
      if (++index[i] < shape[i]) break;
      offset_a -= stride_a[i] * shape[i];
      offset_b -= stride_b[i] * shape[i];
      index[i] = 0;
    }
  }
  return y;
}

}  // namespace tapegrad::detail

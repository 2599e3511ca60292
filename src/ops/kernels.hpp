// Elementwise loops for the ops' forward values. xtensor's expression machinery costs more
// than the arithmetic on the small arrays of a typical model, so the hot ops use these
// plain loops: one flat loop when the shapes agree, a strided loop when they broadcast.
// Each returns a new node with the result written in place.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <memory>

#include <xtensor/xarray.hpp>

#include "core/node_pool.hpp"
#include "core/shape.hpp"

namespace tapegrad::detail {

template <class T, class F>
std::shared_ptr<Node<T>> map_unary(const xt::xarray<T>& x, F f) {
  auto node = new_node_of_shape<T>(x.shape());
  xt::xarray<T>& y = node->value;
  const T* in = x.data();
  T* out = y.data();
  const std::size_t n = y.size();
  for (std::size_t i = 0; i < n; ++i) out[i] = f(in[i]);
  return node;
}

/// Calls f(k, offset_a, offset_b) for every element k of `shape` in row-major order, with
/// the offsets of the elements of two arrays read through the given strides.
template <class F>
void walk(const Shape& shape, const Shape& stride_a, const Shape& stride_b, F f) {
  const std::size_t total = element_count(shape);
  if (total == 0) return;
  if (shape.empty()) {
    f(std::size_t{0}, std::size_t{0}, std::size_t{0});
    return;
  }
  const std::size_t dim = shape.size();
  const std::size_t inner = shape[dim - 1];
  const std::size_t inner_a = stride_a[dim - 1];
  const std::size_t inner_b = stride_b[dim - 1];
  Shape index(dim, 0);
  std::size_t offset_a = 0, offset_b = 0;
  for (std::size_t k = 0; k < total; k += inner) {
    for (std::size_t j = 0; j < inner; ++j) f(k + j, offset_a + j * inner_a, offset_b + j * inner_b);
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
}

template <class T, class F>
std::shared_ptr<Node<T>> map_binary(const char* op, const xt::xarray<T>& a,
                                    const xt::xarray<T>& b, F f) {
  if (a.shape() == b.shape()) {
    auto node = new_node_of_shape<T>(a.shape());
    xt::xarray<T>& y = node->value;
    const T* pa = a.data();
    const T* pb = b.data();
    T* out = y.data();
    const std::size_t n = y.size();
    for (std::size_t i = 0; i < n; ++i) out[i] = f(pa[i], pb[i]);
    return node;
  }
  const Shape shape = broadcast_shapes(op, a.shape(), b.shape());
  auto node = new_node_of_shape<T>(shape);
  xt::xarray<T>& y = node->value;
  T* out = y.data();
  const T* pa = a.data();
  const T* pb = b.data();
  walk(shape, broadcast_strides(a.shape(), shape), broadcast_strides(b.shape(), shape),
       [&](std::size_t k, std::size_t ia, std::size_t ib) { out[k] = f(pa[ia], pb[ib]); });
  return node;
}

/// x broadcast to `shape` (x's shape must broadcast to it).
template <class T>
std::shared_ptr<Node<T>> expand_to(const xt::xarray<T>& x, const Shape& shape) {
  auto node = new_node_of_shape<T>(shape);
  xt::xarray<T>& y = node->value;
  T* out = y.data();
  const T* in = x.data();
  const Shape none(shape.size(), 0);
  walk(shape, broadcast_strides(x.shape(), shape), none,
       [&](std::size_t k, std::size_t i, std::size_t) { out[k] = in[i]; });
  return node;
}

/// The sum of x down to `shape`, which must broadcast to x's shape (the adjoint of
/// expand_to).
template <class T>
std::shared_ptr<Node<T>> reduce_to(const xt::xarray<T>& x, const Shape& shape) {
  auto node = new_node_of_shape<T>(shape);
  xt::xarray<T>& y = node->value;
  std::fill(y.begin(), y.end(), T(0));
  T* out = y.data();
  const T* in = x.data();
  const Shape none(x.dimension(), 0);
  walk(x.shape(), broadcast_strides(shape, x.shape()), none,
       [&](std::size_t k, std::size_t o, std::size_t) { out[o] += in[k]; });
  return node;
}

/// The largest element of x along `axis`, in x's shape with that axis kept at extent 1; -inf
/// where the axis is empty, NaN where a NaN is among the elements (as PyTorch's max).
/// (xtensor's immediate reducers read through a null pointer on empty input.)
template <class T>
std::shared_ptr<Node<T>> max_along(const xt::xarray<T>& x, std::size_t axis) {
  Shape kept = x.shape();
  kept[axis] = 1;
  auto node = new_node_of_shape<T>(kept);
  T* out = node->value.data();
  const T* in = x.data();
  const AxisWalk walk(x.shape(), axis);
  const std::size_t outer = walk.outer, extent = walk.extent, inner = walk.inner;
  for (std::size_t o = 0; o < outer; ++o) {
    for (std::size_t i = 0; i < inner; ++i) {
      T best = -std::numeric_limits<T>::infinity();
      for (std::size_t k = 0; k < extent; ++k) {
        const T v = in[(o * extent + k) * inner + i];
        if (v > best || v != v) best = v;
        if (best != best) break;
      }
      out[o * inner + i] = best;
    }
  }
  return node;
}

/// The shift that makes exp(x - shift) safe along `axis` (softmax, logsumexp): the maximum,
/// or 0 where it is not finite (a row of -inf or +inf, or an empty row), which would give
/// inf - inf. Kept shape, as max_along.
template <class T>
xt::xarray<T> softmax_shift(const xt::xarray<T>& x, std::size_t axis) {
  xt::xarray<T> m = std::move(max_along(x, axis)->value);
  for (T& v : m) {
    if (!std::isfinite(v)) v = T(0);
  }
  return m;
}

}  // namespace tapegrad::detail

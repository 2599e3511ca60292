// Loops the ops' forward kernels share (broadcast, reduce, max along an axis). xtensor's
// expression machinery costs more than the arithmetic on the small arrays of a typical
// model, so the hot ops use plain loops that write into the buffer they are given.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <xtensor/xarray.hpp>

#include "core/node_pool.hpp"
#include "core/shape.hpp"

namespace tapegrad::detail {

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
    for (std::size_t j = 0; j < inner; ++j)
      f(k + j, offset_a + j * inner_a, offset_b + j * inner_b);
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

/// x broadcast to `shape` (x's shape must broadcast to it), written to `out`.
template <class T>
void expand_into(const xt::xarray<T>& x, const Shape& shape, T* out) {
  const T* in = x.data();
  const Shape none(shape.size(), 0);
  walk(shape, broadcast_strides(x.shape(), shape), none,
       [&](std::size_t k, std::size_t i, std::size_t) { out[k] = in[i]; });
}

/// The sum of x down to `shape`, which must broadcast to x's shape (the adjoint of
/// expand_into), written to `out` (element_count(shape) elements).
template <class T>
void reduce_into(const xt::xarray<T>& x, const Shape& shape, T* out) {
  const std::size_t count = element_count(shape);
  std::fill(out, out + count, T(0));
  const T* in = x.data();
  const std::size_t row = x.dimension() == 0 ? 0 : x.shape().back();
  if (row > 0 && count == row && !shape.empty() && shape.back() == row) {
    // Rows summed into one (a bias's gradient): row after row, in the order of the walk below.
    for (std::size_t i = 0, n = x.size(); i < n; i += row) {
      for (std::size_t j = 0; j < row; ++j) out[j] += in[i + j];
    }
    return;
  }
  const Shape into = broadcast_strides(shape, x.shape());
  // Trailing axes summed whole (a convolution's bias gradient: (N, O, H, W) to (O, 1, 1)):
  // each contiguous block of x adds up in a register, then into its one output element.
  std::size_t kept = x.dimension(), block = 1;
  while (kept > 0 && into[kept - 1] == 0) block *= x.shape()[--kept];
  if (block >= 8) {
    const Shape outer(x.shape().begin(), x.shape().begin() + static_cast<std::ptrdiff_t>(kept));
    const Shape outer_into(into.begin(), into.begin() + static_cast<std::ptrdiff_t>(kept));
    walk(outer, outer_into, Shape(kept, 0), [&](std::size_t k, std::size_t o, std::size_t) {
      // Eight running sums, lane j % 8 each, so that the compiler keeps them in vector
      // registers: one sum would wait for each addition before the next (no -ffast-math here
      // to reorder it). The order is fixed, so the result is the same on every run.
      const T* run = in + k * block;
      T lanes[8] = {};
      std::size_t j = 0;
      for (; j + 8 <= block; j += 8) {
        for (std::size_t t = 0; t < 8; ++t) lanes[t] += run[j + t];
      }
      T total = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) +
                ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
      for (; j < block; ++j) total += run[j];
      out[o] += total;
    });
    return;
  }
  const Shape none(x.dimension(), 0);
  walk(x.shape(), into, none, [&](std::size_t k, std::size_t o, std::size_t) { out[o] += in[k]; });
}

/// An array seen as rows: `n` elements in rows of `row`.
struct Rows {
  std::uint64_t n, row;
};

/// When `small` is one row of `big` (aligned at the right, its trailing extents equal big's
/// and the leading ones 1 or absent), big as rows of small's elements: then reducing big to
/// small (reduce_into) and expanding small to big (expand_into) are the plain loops below, in
/// the same order. Otherwise nothing.
inline std::optional<Rows> as_rows(const Shape& big, const Shape& small) {
  if (small.size() > big.size()) return std::nullopt;
  const std::size_t lead = big.size() - small.size();
  const auto extent = [&](std::size_t i) { return i < lead ? std::size_t{1} : small[i - lead]; };
  std::size_t split = big.size();
  while (split > 0 && extent(split - 1) == big[split - 1]) --split;
  for (std::size_t i = 0; i < split; ++i) {
    if (extent(i) != 1) return std::nullopt;
  }
  std::size_t row = 1;
  for (std::size_t i = split; i < big.size(); ++i) row *= big[i];
  return Rows{element_count(big), row};
}

/// The rows of x summed into one row: reduce_into for shapes as_rows accepts.
template <class T>
void sum_rows(const T* x, const Rows& rows, T* out) {
  std::fill(out, out + rows.row, T(0));
  for (std::uint64_t i = 0; i < rows.n; i += rows.row) {
    for (std::uint64_t j = 0; j < rows.row; ++j) out[j] += x[i + j];
  }
}

/// One row repeated: expand_into for shapes as_rows accepts.
template <class T>
void repeat_rows(const T* x, const Rows& rows, T* out) {
  if (rows.row ==
      1) {  // one number (a gradient seed spread over an array): no copy call per element
    std::fill(out, out + rows.n, x[0]);
    return;
  }
  for (std::uint64_t i = 0; i < rows.n; i += rows.row) std::copy(x, x + rows.row, out + i);
}

/// reduce_into a new array of `shape`.
template <class T>
xt::xarray<T> reduce_to(const xt::xarray<T>& x, const Shape& shape) {
  auto y = xt::xarray<T>::from_shape(shape);
  reduce_into(x, shape, y.data());
  return y;
}

/// The largest element of x along `axis`, written to `out` in x's shape with that axis kept
/// at extent 1; -inf where the axis is empty, NaN where a NaN is among the elements (as
/// PyTorch's max). (xtensor's immediate reducers read through a null pointer on empty input.)
template <class T>
void max_into(const xt::xarray<T>& x, std::size_t axis, T* out) {
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
}

/// The shift that makes exp(x - shift) safe along `axis` (softmax, logsumexp): the maximum,
/// or 0 where it is not finite (a row of -inf or +inf, or an empty row), which would give
/// inf - inf. Kept shape, as max_into.
template <class T>
xt::xarray<T> softmax_shift(const xt::xarray<T>& x, std::size_t axis) {
  Shape kept = x.shape();
  kept[axis] = 1;
  auto m = xt::xarray<T>::from_shape(kept);
  max_into(x, axis, m.data());
  for (T& v : m) {
    if (!std::isfinite(v)) v = T(0);
  }
  return m;
}

}  // namespace tapegrad::detail

// Shape arithmetic, the one place for it: element counts, axes, broadcasting, reduced
// shapes. (The public helpers, shape_to_string, checked_size and unravel_index, are declared
// in tapegrad/error.hpp and defined in shape.cpp.) A product of extents that the caller
// chose is checked here (product_fits) before anything is allocated or walked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tapegrad/error.hpp"

namespace tapegrad::detail {

/// The most elements an array may have: checked_size refuses more (PTRDIFF_MAX bytes of
/// doubles, whatever T).
inline constexpr std::size_t kMaxElements = static_cast<std::size_t>(PTRDIFF_MAX) / sizeof(double);

/// The one place where a product of extents is checked (checked_size, checked_product and
/// the convolutions' geometry use it): sets `product` to the product of shape[from, to) and
/// returns true if it is at most kMaxElements, 0 if an extent in the range is 0; returns
/// false otherwise, including for every product that overflows std::size_t. One compare and
/// one overflow test per extent: cheap enough for every op.
inline bool product_fits(const Shape& shape, std::size_t from, std::size_t to,
                         std::size_t& product) {
  std::size_t p = 1;
  bool fits = true;
  for (std::size_t i = from; i < to; ++i) {
    if (shape[i] == 0) {
      product = 0;
      return true;
    }
    fits = fits && !__builtin_mul_overflow(p, shape[i], &p) && p <= kMaxElements;
  }
  product = p;
  return fits;
}

/// The product of the extents of shape[from, to), checked by product_fits: throws ShapeError
/// naming `op`, the axes and the shape if it does not fit (a merged extent, as flatten makes,
/// or the batch of a batched product).
std::size_t checked_product(const char* op, const Shape& shape, std::size_t from, std::size_t to);

/// The product of the extents of shape[from, to) (1 for an empty range). Unchecked: for
/// shapes of arrays that exist (a Tensor's shape has passed checked_size) and ranges that
/// include their last 0, or after checked_size; otherwise checked_product.
inline std::size_t extent_product(const Shape& shape, std::size_t from, std::size_t to) {
  std::size_t product = 1;
  for (std::size_t i = from; i < to; ++i) product *= shape[i];
  return product;
}

/// The number of elements of an array of `shape` (1 for `()`). Unchecked, as extent_product.
inline std::size_t element_count(const Shape& shape) {
  return extent_product(shape, 0, shape.size());
}

/// The extents around one axis, to walk a row-major array as [outer][extent][inner].
struct AxisWalk {
  std::size_t outer, extent, inner;
  AxisWalk(const Shape& shape, std::size_t axis)
      : outer(extent_product(shape, 0, axis)),
        extent(shape[axis]),
        inner(extent_product(shape, axis + 1, shape.size())) {}
};

/// Resolves a possibly negative axis against `dimension`; throws ValueError naming `op`.
std::size_t normalize_axis(const char* op, std::ptrdiff_t axis, std::size_t dimension);

/// The axes resolved (normalize_axis), sorted and distinct; throws ValueError naming `op` for
/// an axis out of range or given twice.
std::vector<std::size_t> normalize_axes(const char* op, const std::vector<std::ptrdiff_t>& axes,
                                        std::size_t dimension);

/// `shape` with the (resolved) `axes` kept at extent 1, as a reduction with keepdims gives.
/// Checked (checked_size, naming `op`): reducing an empty axis of (0, n, m) can leave n * m
/// elements, more than fit.
Shape kept_shape(const char* op, const Shape& shape, const std::vector<std::size_t>& axes);

/// `shape` without the (resolved, sorted) `axes`, as a reduction without keepdims gives.
Shape dropped_shape(const Shape& shape, const std::vector<std::size_t>& axes);

/// `a`'s axes, then `b`'s (the shape of a Jacobian or Hessian); checked (checked_size,
/// naming `op`).
Shape concat_shapes(const char* op, const Shape& a, const Shape& b);

/// The shape that NumPy broadcasting gives `a` and `b`; throws ShapeError naming `op`.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);

/// True if `from` broadcasts to `to` under NumPy's rules.
bool broadcastable(const Shape& from, const Shape& to);

/// Element strides of an array of shape `from` read as if broadcast to `to` (NumPy rules,
/// `from` must broadcast to `to`): 0 along broadcast axes.
inline Shape broadcast_strides(const Shape& from, const Shape& to) {
  const std::size_t dim = to.size();
  const std::size_t lead = dim - from.size();
  Shape strides(dim, 0);
  std::size_t stride = 1;
  for (std::size_t i = dim; i-- > lead;) {
    const std::size_t extent = from[i - lead];
    strides[i] = extent == 1 ? 0 : stride;
    stride *= extent;
  }
  return strides;
}

}  // namespace tapegrad::detail

// Indexing: select, slice and the multi-axis index, written over narrow and reshape, and the
// one pair of op blocks they need of their own (see ops/op.hpp): a slice with a step and its
// adjoint, each the other's backward.
#include <algorithm>
#include <optional>
#include <string>

#include "ops/op.hpp"
#include "tapegrad/ops.hpp"

namespace tapegrad {

using detail::BackwardContext;
using detail::extent_product;
using detail::Gradients;
using detail::Inputs;

namespace {

// Where the elements taken lie along the axis: start, start + step, ...
struct Stride {
  std::size_t axis, start, step;
};

template <class T>
Tensor<T> strided_slice(const Tensor<T>& x, const Stride& s, const Shape& out_shape);
template <class T>
Tensor<T> slice_scatter(const Tensor<T>& g, const Stride& s, const Shape& out_shape);

// y = x[..., start::step, ...] along an axis (y's extent there says how many).
// dx = slice_scatter(g): g placed back at those positions in zeros.
struct StridedSlice {
  static constexpr const char* name = "slice";
  using Attrs = Stride;
  template <class T>
  static void forward(const Inputs<T>& in, const Attrs& s, xt::xarray<T>& out) {
    const auto& x = in[0];
    const std::size_t extent = x.shape()[s.axis], taken = out.shape()[s.axis];
    const std::size_t outer = extent_product(x.shape(), 0, s.axis);
    const std::size_t inner = extent_product(x.shape(), s.axis + 1, x.dimension());
    for (std::size_t o = 0; o < outer; ++o) {
      for (std::size_t k = 0; k < taken; ++k) {
        std::copy_n(x.data() + (o * extent + s.start + k * s.step) * inner, inner,
                    out.data() + (o * taken + k) * inner);
      }
    }
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& s) {
    return slice_scatter(c.grad(), s, c.input(0).shape());
  }
};

// y = zeros of a larger extent along an axis, with x at start, start + step, ...: the adjoint
// of slice.  dx = slice(g) at the same positions.
struct SliceScatter {
  static constexpr const char* name = "slice_scatter";
  using Attrs = Stride;
  template <class T>
  static void forward(const Inputs<T>& in, const Attrs& s, xt::xarray<T>& out) {
    const auto& x = in[0];
    const std::size_t extent = out.shape()[s.axis], taken = x.shape()[s.axis];
    const std::size_t outer = extent_product(x.shape(), 0, s.axis);
    const std::size_t inner = extent_product(x.shape(), s.axis + 1, x.dimension());
    std::fill(out.data(), out.data() + out.size(), T(0));
    for (std::size_t o = 0; o < outer; ++o) {
      for (std::size_t k = 0; k < taken; ++k) {
        std::copy_n(x.data() + (o * taken + k) * inner, inner,
                    out.data() + (o * extent + s.start + k * s.step) * inner);
      }
    }
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& s) {
    return strided_slice(c.grad(), s, c.input(0).shape());
  }
};

template <class T>
Tensor<T> strided_slice(const Tensor<T>& x, const Stride& s, const Shape& out_shape) {
  return detail::apply_shaped<StridedSlice>(out_shape, s, x);
}

template <class T>
Tensor<T> slice_scatter(const Tensor<T>& g, const Stride& s, const Shape& out_shape) {
  return detail::apply_shaped<SliceScatter>(out_shape, s, g);
}

// Python's rule for a bound of a slice with a positive step: absent is the default, negative
// counts from the end, and the result is clamped to [0, extent].
std::size_t slice_bound(std::optional<std::ptrdiff_t> bound, std::size_t extent,
                        std::size_t absent) {
  if (!bound) return absent;
  const auto n = static_cast<std::ptrdiff_t>(extent);
  const std::ptrdiff_t b =
      *bound < 0 ? std::max<std::ptrdiff_t>(*bound, -n) + n : std::min(*bound, n);
  return static_cast<std::size_t>(b);
}

std::string optional_to_string(std::optional<std::ptrdiff_t> bound) {
  return bound ? std::to_string(*bound) : std::string();
}

// The position `index` along an axis of `extent` as a count from the start, Python's way;
// ValueError naming `op` and `what` (the axis, the entry) when it is out of range.
std::size_t position_in(const char* op, const std::string& what, std::ptrdiff_t index,
                        std::size_t extent, const Shape& shape) {
  const auto n = static_cast<std::ptrdiff_t>(extent);
  if (index < -n || index >= n) {
    throw ValueError(
        std::string(op) + ": index " + std::to_string(index) + " is out of range for " + what +
        " of extent " + std::to_string(extent) + " in a tensor of shape " + shape_to_string(shape) +
        " (valid: " +
        (n == 0 ? std::string("none") : std::to_string(-n) + " to " + std::to_string(n - 1)) + ")");
  }
  return static_cast<std::size_t>(index < 0 ? index + n : index);
}

}  // namespace
TAPEGRAD_REGISTER_OP(StridedSlice)
TAPEGRAD_REGISTER_OP(SliceScatter)

template <class T>
Tensor<T> select(const Tensor<T>& x, std::ptrdiff_t axis, std::ptrdiff_t index) {
  const std::size_t a = detail::normalize_axis("select", axis, x.dim());
  const std::size_t i =
      position_in("select", "axis " + std::to_string(a), index, x.shape()[a], x.shape());
  Shape dropped = x.shape();
  dropped.erase(dropped.begin() + static_cast<std::ptrdiff_t>(a));
  return reshape(narrow(x, static_cast<std::ptrdiff_t>(a), i, 1), dropped);
}

template <class T>
Tensor<T> slice(const Tensor<T>& x, std::ptrdiff_t axis, std::optional<std::ptrdiff_t> start,
                std::optional<std::ptrdiff_t> stop, std::ptrdiff_t step) {
  const std::size_t a = detail::normalize_axis("slice", axis, x.dim());
  if (step < 1) {
    throw ValueError("slice: the step must be at least 1, got " + std::to_string(step) +
                     " (slice [" + optional_to_string(start) + ":" + optional_to_string(stop) +
                     ":" + std::to_string(step) + "] of axis " + std::to_string(a) + " of " +
                     shape_to_string(x.shape()) + "); PyTorch takes no negative step either");
  }
  const std::size_t extent = x.shape()[a];
  const std::size_t first = slice_bound(start, extent, 0);
  const std::size_t last = slice_bound(stop, extent, extent);
  const auto stride = static_cast<std::size_t>(step);
  const std::size_t taken = last > first ? (last - first - 1) / stride + 1 : 0;
  // One element, or a step of 1: a contiguous range.
  if (stride == 1 || taken <= 1)
    return narrow(x, static_cast<std::ptrdiff_t>(a), taken == 0 ? 0 : first, taken);
  Shape out_shape = x.shape();
  out_shape[a] = taken;
  return strided_slice(x, Stride{a, first, stride}, out_shape);
}

template <class T>
Tensor<T> index(const Tensor<T>& x, const std::vector<Index>& indices) {
  if (indices.size() > x.dim()) {
    throw ValueError("index: " + std::to_string(indices.size()) + " entries for a tensor of " +
                     std::to_string(x.dim()) + " axes, shape " + shape_to_string(x.shape()));
  }
  // Positions are checked against x's own axes first, so that an error names the entry the
  // caller wrote, not an axis of an intermediate result.
  for (std::size_t k = 0; k < indices.size(); ++k) {
    if (indices[k].is_position()) {
      position_in("index", "entry " + std::to_string(k) + " (axis " + std::to_string(k) + ")",
                  indices[k].position(), x.shape()[k], x.shape());
    } else if (indices[k].range().step < 1) {
      throw ValueError("index: entry " + std::to_string(k) + " (axis " + std::to_string(k) +
                       ") has step " + std::to_string(indices[k].range().step) +
                       "; the step must be at least 1");
    }
  }
  Tensor<T> y = x;
  std::ptrdiff_t axis = 0;  // y's axis that the next entry applies to
  for (const Index& entry : indices) {
    if (entry.is_position()) {
      y = select(y, axis, entry.position());
    } else {
      const Slice& r = entry.range();
      y = slice(y, axis, r.start, r.stop, r.step);
      ++axis;
    }
  }
  return y;
}

template <class T>
Tensor<T> Tensor<T>::select(std::ptrdiff_t axis, std::ptrdiff_t index) const {
  return tapegrad::select(*this, axis, index);
}

template <class T>
Tensor<T> Tensor<T>::slice(std::ptrdiff_t axis, std::optional<std::ptrdiff_t> start,
                           std::optional<std::ptrdiff_t> stop, std::ptrdiff_t step) const {
  return tapegrad::slice(*this, axis, start, stop, step);
}

template <class T>
Tensor<T> Tensor<T>::index(const std::vector<Index>& indices) const {
  return tapegrad::index(*this, indices);
}

#define TAPEGRAD_INSTANTIATE(T)                                                             \
  template Tensor<T> select(const Tensor<T>&, std::ptrdiff_t, std::ptrdiff_t);              \
  template Tensor<T> slice(const Tensor<T>&, std::ptrdiff_t, std::optional<std::ptrdiff_t>, \
                           std::optional<std::ptrdiff_t>, std::ptrdiff_t);                  \
  template Tensor<T> index(const Tensor<T>&, const std::vector<Index>&);                    \
  template Tensor<T> Tensor<T>::select(std::ptrdiff_t, std::ptrdiff_t) const;               \
  template Tensor<T> Tensor<T>::slice(std::ptrdiff_t, std::optional<std::ptrdiff_t>,        \
                                      std::optional<std::ptrdiff_t>, std::ptrdiff_t) const; \
  template Tensor<T> Tensor<T>::index(const std::vector<Index>&) const;

TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad

// Shape arithmetic: element counts, axes, broadcasting, reduced shapes; and the public
// helpers of error.hpp.
#include "core/shape.hpp"

#include <algorithm>
#include <cstdint>
#include <sstream>
#include <string>

namespace tapegrad {

std::string shape_to_string(const Shape& shape) {
  std::ostringstream out;
  out << '(';
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out << ", ";
    out << shape[i];
  }
  if (shape.size() == 1) out << ',';
  out << ')';
  return out.str();
}

std::size_t checked_size(const char* op, const Shape& shape) {
  std::size_t size = 1;
  bool wrapped = false;
  for (const std::size_t extent : shape) wrapped |= __builtin_mul_overflow(size, extent, &size);
  if (!wrapped && size != 0 && size <= detail::kMaxElements) return size;  // the common case
  // The extents after the last 0 set the strides of the axes before it: xtensor computes
  // them (in a signed long) even for an array of no element.
  std::size_t last_zero = shape.size();
  while (last_zero > 0 && shape[last_zero - 1] != 0) --last_zero;
  if (last_zero == 0) {
    throw ShapeError(std::string(op) + ": the shape " + shape_to_string(shape) +
                     " has more elements than fit in memory (over " +
                     std::to_string(detail::kMaxElements) + ")");
  }
  std::size_t strides = 1;
  for (std::size_t i = last_zero; i < shape.size(); ++i) {
    if (__builtin_mul_overflow(strides, shape[i], &strides) || strides > PTRDIFF_MAX) {
      throw ShapeError(std::string(op) + ": the shape " + shape_to_string(shape) +
                       " has no elements, but the extents after its last 0 multiply to more "
                       "than " +
                       std::to_string(PTRDIFF_MAX) + ", the largest stride");
    }
  }
  return 0;
}

std::vector<std::size_t> unravel_index(std::size_t flat, const Shape& shape) {
  const std::size_t size = checked_size("unravel_index", shape);
  if (flat >= size) {
    throw ValueError("unravel_index: position " + std::to_string(flat) + " is outside shape " +
                     shape_to_string(shape) + " of " + std::to_string(size) + " element(s)");
  }
  std::vector<std::size_t> position(shape.size());
  for (std::size_t i = shape.size(); i-- > 0;) {
    position[i] = flat % shape[i];
    flat /= shape[i];
  }
  return position;
}

namespace detail {

std::size_t checked_product(const char* op, const Shape& shape, std::size_t from, std::size_t to) {
  std::size_t product = 0;
  if (!product_fits(shape, from, to, product)) {
    throw ShapeError(std::string(op) + ": the extents of axes " + std::to_string(from) + " to " +
                     std::to_string(to - 1) + " of the shape " + shape_to_string(shape) +
                     " multiply to more than fit in memory (over " + std::to_string(kMaxElements) +
                     ")");
  }
  return product;
}

std::size_t normalize_axis(const char* op, std::ptrdiff_t axis, std::size_t dimension) {
  const auto dim = static_cast<std::ptrdiff_t>(dimension);
  if (axis < -dim || axis >= dim) {
    throw ValueError(std::string(op) + ": axis " + std::to_string(axis) +
                     " is out of range for a tensor of " + std::to_string(dimension) +
                     " dimension(s)");
  }
  return static_cast<std::size_t>(axis < 0 ? axis + dim : axis);
}

std::vector<std::size_t> normalize_axes(const char* op, const std::vector<std::ptrdiff_t>& axes,
                                        std::size_t dimension) {
  std::vector<std::size_t> result;
  for (auto axis : axes) result.push_back(normalize_axis(op, axis, dimension));
  std::sort(result.begin(), result.end());
  if (std::adjacent_find(result.begin(), result.end()) != result.end()) {
    throw ValueError(std::string(op) + ": an axis is given twice");
  }
  return result;
}

Shape kept_shape(const char* op, const Shape& shape, const std::vector<std::size_t>& axes) {
  Shape kept = shape;
  for (auto axis : axes) kept[axis] = 1;
  checked_size(op, kept);
  return kept;
}

Shape dropped_shape(const Shape& shape, const std::vector<std::size_t>& axes) {
  Shape dropped;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (!std::binary_search(axes.begin(), axes.end(), i)) dropped.push_back(shape[i]);
  }
  return dropped;
}

Shape concat_shapes(const char* op, const Shape& a, const Shape& b) {
  Shape s = a;
  s.insert(s.end(), b.begin(), b.end());
  checked_size(op, s);
  return s;
}

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  const std::size_t n = std::max(a.size(), b.size());
  Shape result(n);
  for (std::size_t i = 0; i < n; ++i) {
    // Align from the right, as NumPy does.
    const std::size_t ea = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const std::size_t eb = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (ea != eb && ea != 1 && eb != 1) {
      throw ShapeError(std::string(op) + ": shapes " + shape_to_string(a) + " and " +
                       shape_to_string(b) + " cannot be broadcast together");
    }
    result[i] = ea == 1 ? eb : ea;
  }
  checked_size(op, result);  // extents of 0 elsewhere can leave the others' product unchecked
  return result;
}

bool broadcastable(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  const std::size_t lead = to.size() - from.size();
  for (std::size_t i = 0; i < from.size(); ++i) {
    if (from[i] != 1 && from[i] != to[lead + i]) return false;
  }
  return true;
}

}  // namespace detail

}  // namespace tapegrad

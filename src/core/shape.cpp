// Shape arithmetic shared by the ops: axes, broadcasting.
#include "core/shape.hpp"

#include <algorithm>
#include <string>

#include "tapegrad/error.hpp"

namespace tapegrad::detail {

std::size_t normalize_axis(const char* op, std::ptrdiff_t axis, std::size_t dimension) {
  const auto dim = static_cast<std::ptrdiff_t>(dimension);
  if (axis < -dim || axis >= dim) {
    throw ValueError(std::string(op) + ": axis " + std::to_string(axis) +
                     " is out of range for a tensor of " + std::to_string(dimension) +
                     " dimension(s)");
  }
  return static_cast<std::size_t>(axis < 0 ? axis + dim : axis);
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

}  // namespace tapegrad::detail

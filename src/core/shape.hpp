// Shape arithmetic shared by the ops and the core: axes, broadcasting. (The public helpers,
// shape_to_string, checked_size and unravel_index, are declared in tapegrad/error.hpp.)
#pragma once

#include <cstddef>

#include "tapegrad/error.hpp"

namespace tapegrad::detail {

/// Resolves a possibly negative axis against `dimension`; throws ValueError naming `op`.
std::size_t normalize_axis(const char* op, std::ptrdiff_t axis, std::size_t dimension);

/// The shape that NumPy broadcasting gives `a` and `b`; throws ShapeError naming `op`.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);

}  // namespace tapegrad::detail

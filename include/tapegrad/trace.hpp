// The recorded graph as Graphviz DOT, for teaching and debugging.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "tapegrad/tensor.hpp"

namespace tapegrad {

/// @addtogroup autograd
/// @{

/// The part of the live tape that `result` depends on, as a Graphviz DOT digraph: one box
/// per tensor and one arrow from each input of a record to its result. Render with
/// `dot -Tpng graph.dot -o graph.png`.
///
/// A box shows the tensor's name if `names` gives one (names are matched by node; quotes,
/// backslashes and line breaks in them are escaped, as in op names), else the op that made
/// it, else "leaf" or "constant"; then its shape; then its value and its gradient, flattened
/// in row-major order, when they have at most `max_elements` elements. Leaves that require
/// grad are filled yellow. Only the tape that recorded `result` is walked: an input recorded
/// on an enclosing tape, on a destroyed tape, with no tape, or by a record its tape released
/// (see Tape) is drawn without its own inputs and labelled "from an enclosing tape", "from a
/// destroyed tape", "computed without a tape" or "released by a backward()" (or by its name).
/// Throws TapeError if `result` was not recorded (a leaf or a constant), its tape is gone
/// (destroyed, or another thread's), or its own record was released.
template <class T>
std::string graph_dot(const Tensor<T>& result,
                      const std::vector<std::pair<std::string, Tensor<T>>>& names = {},
                      std::size_t max_elements = 6);

/// @}

}  // namespace tapegrad

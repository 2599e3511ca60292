// The recorded graph as Graphviz DOT, for teaching and debugging.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "tapegrad/tensor.hpp"

namespace tapegrad {

/// The part of the live tape that `result` depends on, as a Graphviz DOT digraph: one box
/// per tensor (its name if given, else the op that made it; its shape; its value and its
/// gradient when they have at most `max_elements` elements) and one arrow per input. Render
/// with `dot -Tpng graph.dot -o graph.png`. Throws TapeError if `result` was not recorded
/// or its tape is gone.
template <class T>
std::string graph_dot(const Tensor<T>& result,
                      const std::vector<std::pair<std::string, Tensor<T>>>& names = {},
                      std::size_t max_elements = 6);

}  // namespace tapegrad

// The one-dimensional function of the minimize_1d demo, shared by the demo and the test that
// checks its compiled descent against the eager one.
#pragma once

#include "tapegrad/tapegrad.hpp"

namespace examples {

/// y = (x + 1)^2 - 1, at its minimum -1 at x = -1.
template <class T>
tapegrad::Tensor<T> minimize_1d_function(const tapegrad::Tensor<T>& x) {
  return square(x + 1.0) - 1.0;
}

}  // namespace examples

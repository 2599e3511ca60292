// The gradient-descent article's two-dimensional function, shared by the minimize_2d demo and the
// test that checks its compiled descent against the eager one.
#pragma once

#include "tapegrad/tapegrad.hpp"

namespace examples {

/// f(x, y) = -(e^-(x^2+y^2) - 2 e^-((x-1)^2+(y-1)^2)) / 2 at v = (x, y), shape (2,): a
/// tensor of shape ().
template <class T>
tapegrad::Tensor<T> minimize_2d_function(const tapegrad::Tensor<T>& v) {
  const auto x = narrow(v, 0, 0, 1), y = narrow(v, 0, 1, 1);
  return sum(-0.5 * (exp(-square(x) - square(y)) - 2.0 * exp(-square(x - 1.0) - square(y - 1.0))));
}

}  // namespace examples

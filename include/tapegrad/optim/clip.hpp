// Gradient clipping.
#pragma once

#include <vector>

#include "tapegrad/tensor.hpp"

namespace tapegrad::optim {

/// Scales all gradients together so that their joint 2-norm is at most max_norm, as
/// PyTorch's clip_grad_norm_ does. The norm is sqrt(sum of grad^2 over every element of
/// every gradient), computed in double. When it is larger than max_norm, every gradient is
/// multiplied in place by max_norm / (norm + 1e-6); otherwise (a NaN norm included) nothing
/// changes. Parameters without a gradient are skipped. Returns the norm before clipping.
/// Throws ValueError for a max_norm that is not positive and finite. T is float or double.
template <class T>
double clip_grad_norm(std::vector<Tensor<T>>& parameters, double max_norm);

}  // namespace tapegrad::optim

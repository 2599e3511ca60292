// Gradient clipping.
#pragma once

#include <vector>

#include "tapegrad/tensor.hpp"

namespace tapegrad::optim {

/// Scales all gradients together so that their joint 2-norm is at most max_norm (scale
/// max_norm / (norm + 1e-6) when the norm is larger, as PyTorch does). Returns the norm
/// before clipping. Parameters without a gradient are skipped. Throws ValueError for a
/// max_norm that is not positive and finite.
template <class T>
double clip_grad_norm(std::vector<Tensor<T>>& parameters, double max_norm);

}  // namespace tapegrad::optim

// Losses, composed from ops: their gradients come from the tape like everything else.
// Each takes the output first and the target second, requires equal shapes (no silent
// broadcasting of (N,) against (N, 1)) and throws ShapeError naming itself otherwise.
#pragma once

#include <cstddef>
#include <vector>

#include "tapegrad/tensor.hpp"

namespace tapegrad::nn {

/// Mean squared error: mean((y - t)^2) over all elements.
template <class T>
Tensor<T> mse(const Tensor<T>& output, const Tensor<T>& target);

/// The seeds' cost E = sum((t - y)^2) / (2N). N is the number of samples: the first extent
/// of a 2-d or higher output of shape (N, outputs, ...); a 0-d or 1-d output is one sample
/// (N = 1), so E = 1/2 sum (t - o)^2 as in seed 003.
template <class T>
Tensor<T> half_sse(const Tensor<T>& output, const Tensor<T>& target);

/// Binary cross-entropy on probabilities p in [0, 1]:
/// -mean(t ln p + (1 - t) ln(1 - p)), each log clamped at -100 (as PyTorch does) so that
/// p = 0 or 1 exactly gives a finite loss and a finite gradient.
template <class T>
Tensor<T> binary_cross_entropy(const Tensor<T>& probabilities, const Tensor<T>& target);

/// Binary cross-entropy on logits z (p = sigmoid(z)), computed stably as
/// mean(softplus(z) - t z).
template <class T>
Tensor<T> binary_cross_entropy_with_logits(const Tensor<T>& logits, const Tensor<T>& target);

/// Softmax cross-entropy: logits of shape (N, C), one integer label in [0, C) per row:
/// -mean_i log_softmax(z)[i, label_i]. Throws ShapeError if the label count is not N and
/// ValueError for a label out of range.
template <class T>
Tensor<T> cross_entropy(const Tensor<T>& logits, const std::vector<std::size_t>& labels);

/// Negative log-likelihood of log-probabilities (N, C): -mean_i logp[i, label_i].
template <class T>
Tensor<T> nll_loss(const Tensor<T>& log_probabilities, const std::vector<std::size_t>& labels);

}  // namespace tapegrad::nn

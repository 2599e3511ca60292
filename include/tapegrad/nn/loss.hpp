// Losses, composed from ops: their gradients come from the tape like everything else.
// Each returns a 0-d tensor (shape ()). The elementwise losses take the output first and the
// target second, require equal shapes (no silent broadcasting of (N,) against (N, 1)) and
// throw ShapeError naming themselves otherwise; cross_entropy and nll_loss take labels.
#pragma once

#include <cstddef>
#include <vector>

#include "tapegrad/tensor.hpp"

namespace tapegrad::nn {

/// @addtogroup nn
/// @{

/// Mean squared error: mean((y - t)^2) over all elements, for output y and target t of
/// equal shape; result of shape (). Throws ShapeError if the shapes differ and ValueError
/// if they have no elements.
template <class T>
Tensor<T> mse(const Tensor<T>& output, const Tensor<T>& target);

/// The source articles' cost E = sum((t - y)^2) / (2N), shape (). N is the number of samples: the
/// first extent of a 2-d or higher output of shape (N, outputs, ...); a 0-d or 1-d output is
/// one sample (N = 1), so E = 1/2 sum (t - o)^2 as in the worked-BP article. Throws ShapeError if
/// the shapes differ and ValueError if the output has no elements.
template <class T>
Tensor<T> half_sse(const Tensor<T>& output, const Tensor<T>& target);

/// Binary cross-entropy on probabilities p in [0, 1] (not checked):
/// -mean(t ln p + (1 - t) ln(1 - p)), shape (). The arguments of both logs are clamped
/// below, so p = 0 or 1 exactly gives a finite loss, and a finite gradient whatever the
/// gradient flowing in (0 through a clamped argument): in double at e^-100, so each log is at
/// least -100 as in PyTorch; in float at its smallest normal number (about e^-87.3), where
/// 1 / p still fits. Throws ShapeError if the shapes differ and ValueError if they have no
/// elements.
template <class T>
Tensor<T> binary_cross_entropy(const Tensor<T>& probabilities, const Tensor<T>& target);

/// Binary cross-entropy on logits z (p = sigmoid(z)), computed stably as
/// mean(softplus(z) - t z); shape (). Throws ShapeError if the shapes differ and ValueError
/// if they have no elements.
template <class T>
Tensor<T> binary_cross_entropy_with_logits(const Tensor<T>& logits, const Tensor<T>& target);

/// Softmax cross-entropy: logits z of shape (N, C), one integer label in [0, C) per row:
/// -(1/N) sum_i log_softmax(z)[i, label_i], shape (). Throws ShapeError if z is not 2-d or
/// the label count is not N, and ValueError if N = 0 or a label is >= C.
template <class T>
Tensor<T> cross_entropy(const Tensor<T>& logits, const std::vector<std::size_t>& labels);

/// Softmax cross-entropy against class probabilities (PyTorch's cross_entropy with a
/// floating-point target; a name of its own, since `cross_entropy(z, {2, 0})` must keep
/// meaning labels): logits z and target p both of shape (N, C):
/// -(1/N) sum_i sum_c p[i, c] log_softmax(z)[i, c], shape (). A one-hot p gives the same
/// number as the label form; unlike a label list, p is a tensor, so a compiled step
/// (tapegrad::compile) reads each batch's targets. Throws ShapeError if z is not 2-d or p's
/// shape differs, and ValueError if N = 0.
template <class T>
Tensor<T> cross_entropy_with_probabilities(const Tensor<T>& logits, const Tensor<T>& target);

/// Negative log-likelihood of log-probabilities logp of shape (N, C) (not checked), one
/// integer label in [0, C) per row: -(1/N) sum_i logp[i, label_i], shape (). Throws
/// ShapeError if logp is not 2-d or the label count is not N, and ValueError if N = 0 or a
/// label is >= C.
template <class T>
Tensor<T> nll_loss(const Tensor<T>& log_probabilities, const std::vector<std::size_t>& labels);

/// @}

}  // namespace tapegrad::nn

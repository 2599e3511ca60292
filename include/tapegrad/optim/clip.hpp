// Gradient clipping.
#pragma once

#include <vector>

#include "tapegrad/tensor.hpp"

namespace tapegrad::optim {

/// @addtogroup optim
/// @{

/// Scales all gradients together so that their joint 2-norm is at most max_norm, as
/// PyTorch's clip_grad_norm_ does. The norm is sqrt(sum of grad^2 over every element of
/// every gradient), computed in double (finite gradients whose squares overflow are summed
/// again scaled by the largest |element|, so their norm stays finite). When it is larger
/// than max_norm, every gradient is multiplied in place by max_norm / (norm + 1e-6) (the
/// product taken in double, so a float gradient is not zeroed by a scale below float's
/// range); otherwise nothing changes. max_norm = inf only measures the norm, max_norm = 0
/// zeroes the gradients, as in PyTorch. Parameters without a gradient are skipped. Returns
/// the norm before clipping.
///
/// A NaN or infinite gradient element makes the norm NaN or inf. Then the gradients are
/// never scaled (PyTorch would multiply them by max_norm / inf = 0, which turns the
/// infinite elements into NaN and hides the rest): with error_if_nonfinite (the default,
/// unlike PyTorch's False) it throws ValueError naming the norm, the first parameter with
/// a non-finite gradient element, that element and its flat index; without, it returns the
/// non-finite norm, so the caller can skip the step as a loss scaler does.
///
/// Throws ValueError `clip_grad_norm: max_norm must be a number >= 0 (inf allowed), got -1`
/// for a negative or NaN max_norm, and ShapeError `clip_grad_norm: parameter 1 has shape
/// (2, 3) but its gradient has shape (3,); ...` for a gradient changed through
/// mutable_grad() to another shape than its parameter's (nothing is clipped then). T is
/// float or double. The list is read only (the tensors
/// are handles: their gradients change in place), so `net.parameters()` and
/// `optimizer.parameters()` can be passed directly.
template <class T>
double clip_grad_norm(const std::vector<Tensor<T>>& parameters, double max_norm,
                      bool error_if_nonfinite = true);

/// Clamps every gradient element to [-clip_value, clip_value] in place, as PyTorch's
/// clip_grad_value_ does; NaN elements stay NaN. Parameters without a gradient are skipped.
/// Throws ValueError `clip_grad_value: clip_value must be a number >= 0 (inf allowed), got -1`
/// for a negative or NaN clip_value, and ShapeError for a gradient of another shape than its
/// parameter's, as clip_grad_norm() does. T is float or double.
template <class T>
void clip_grad_value(const std::vector<Tensor<T>>& parameters, double clip_value);
/// @}

}  // namespace tapegrad::optim

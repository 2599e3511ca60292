// Dropout: the function and the module (a layer that behaves differently in training).
#pragma once

#include <string>

#include "tapegrad/nn/module.hpp"
#include "tapegrad/random.hpp"

namespace tapegrad::nn {

/// @addtogroup nn
/// @{

/// Inverted dropout, as torch.nn.functional.dropout: in training, each element of x is
/// kept with probability 1 - p and scaled by 1 / (1 - p), or zeroed with probability p, so
/// the expected value is x; y = x * mask, where mask is a constant tensor (no gradient) of
/// x's shape holding 0 or 1 / (1 - p), drawn from `random` (one uniform() per element, kept
/// when it is >= p, in row-major order).  dx = g * mask.
///
/// The identity (x itself, nothing drawn) when `training` is false or p == 0; zeros of x's
/// shape (x * 0, nothing drawn) when p == 1, as PyTorch. Throws ValueError naming p unless
/// 0 <= p <= 1, and TapeError when called in training with 0 < p < 1 inside compile():
/// a compiled step would replay the mask drawn at compile time for ever (compile a step in
/// evaluation mode, or train with backward()).
template <class T>
Tensor<T> dropout(const Tensor<T>& x, double p, bool training, Generator& random);

/// A layer applying dropout(input, p, is_training(), generator): zeroes elements in training
/// mode only, the identity after eval(). No parameters or buffers.
template <class T = double>
class Dropout : public Module<T> {
 public:
  /// Dropout with probability p (PyTorch's default 0.5) drawing from the calling thread's
  /// default_generator() at each forward(). Throws ValueError unless 0 <= p <= 1.
  explicit Dropout(double p = 0.5);
  /// The same, drawing from `random` (not owned: it must outlive the layer).
  Dropout(double p, Generator& random);
  /// dropout(input, p(), is_training(), generator): input's shape, any shape.
  Tensor<T> forward(const Tensor<T>& input) override;
  /// The probability of zeroing an element.
  double p() const { return p_; }
  /// "Dropout".
  std::string type_name() const override { return "Dropout"; }
  /// As PyTorch: "p=0.25, inplace=False".
  std::string extra_repr() const override;

 private:
  double p_;
  Generator* random_;  // null: the default_generator() of the thread calling forward()
};

extern template class Dropout<float>;
extern template class Dropout<double>;

/// @}

}  // namespace tapegrad::nn

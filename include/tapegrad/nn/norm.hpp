// Normalisation: batch norm and layer norm, the functions and the modules.
#pragma once

#include <optional>
#include <string>

#include "tapegrad/nn/module.hpp"

namespace tapegrad::nn {

/// @addtogroup nn
/// @{

/// Batch normalisation, as torch.nn.functional.batch_norm, composed of graph ops (its
/// gradient is theirs). x has shape (N, C), (N, C, L) or (N, C, H, W); the statistics are
/// per channel c, over every axis but 1 (n = N L or N H W values each):
///
///     y = (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c
///
/// In training, mean_c and var_c are the batch's mean and *biased* variance (divided by n),
/// and the running statistics, when given, are updated in place, outside the tape (no
/// gradient flows into them), with the *unbiased* variance (divided by n - 1):
///
///     running_mean = (1 - momentum) running_mean + momentum mean_c
///     running_var  = (1 - momentum) running_var  + momentum var_c n / (n - 1)
///
/// In evaluation (training false), mean_c and var_c are running_mean and running_var
/// (required then), and nothing is changed. weight and bias (shape (C,)) are optional: each
/// one left out is 1 or 0. An input with no values per channel (N = 0, or an extent 0 among
/// L, H, W) gives an empty result and leaves the running statistics unchanged, as PyTorch.
///
/// Throws ValueError if eps is negative or not finite or momentum is outside [0, 1] (a NaN
/// included: it would fill the running statistics with NaN unseen).
/// Throws ShapeError unless x is 2-d, 3-d or 4-d and every given (C,) tensor has x's channel
/// count; ValueError "batch_norm: Expected more than 1 value per channel when training, got
/// input size (1, 3)" when training with n == 1 (a variance from one value), as PyTorch, and
/// when evaluating without running statistics; TapeError when training inside compile()
/// (a replay would not update the running statistics, or would update them from
/// compile-time values): compile an evaluation step, or train with backward().
template <class T>
Tensor<T> batch_norm(const Tensor<T>& x, const std::optional<Tensor<T>>& running_mean,
                     const std::optional<Tensor<T>>& running_var,
                     const std::optional<Tensor<T>>& weight, const std::optional<Tensor<T>>& bias,
                     bool training, double momentum = 0.1, double eps = 1e-5);

/// Layer normalisation, as torch.nn.functional.layer_norm, composed of graph ops: the
/// statistics are taken over the last k axes of x, whose extents must be
/// `normalized_shape` (k of them, k >= 1), separately for every position of the leading
/// axes:
///
///     y = (x - mean) / sqrt(var + eps) * weight + bias      (var biased, divided by the count)
///
/// weight and bias, of shape normalized_shape, are optional (1 and 0). The same in training
/// and evaluation. Leading extents of 0 give an empty result; so does a normalized_shape
/// with an extent 0 (y is then x times weight plus bias, all empty). Throws ValueError if eps
/// is negative or not finite. Throws ShapeError if
/// normalized_shape is empty, is not x's trailing shape, or weight or bias has another shape.
template <class T>
Tensor<T> layer_norm(const Tensor<T>& x, const Shape& normalized_shape,
                     const std::optional<Tensor<T>>& weight = std::nullopt,
                     const std::optional<Tensor<T>>& bias = std::nullopt, double eps = 1e-5);

/// What BatchNorm1d and BatchNorm2d share (PyTorch's _BatchNorm): parameters "weight"
/// (initialised to ones) and "bias" (zeros) of shape (num_features,) when affine; buffers
/// "running_mean" (zeros), "running_var" (ones) of shape (num_features,) and
/// "num_batches_tracked" (0, shape (), a BufferKind::count saved as int64), as PyTorch's
/// defaults. Running statistics are always tracked (PyTorch's track_running_stats=True);
/// momentum is a number (PyTorch's momentum=None, a cumulative average, is not offered).
///
/// forward() in training mode: batch_norm(input, running_mean, running_var, weight, bias,
/// true, momentum, eps), then num_batches_tracked += 1 (a call that throws changes nothing);
/// in evaluation mode: batch_norm with training false (running statistics used, nothing
/// changed). Errors as batch_norm, and ShapeError for an input of another number of axes
/// than the subclass takes.
template <class T = double>
class BatchNormBase : public Module<T> {
 public:
  /// Tensor<T> forward (see the class comment).
  Tensor<T> forward(const Tensor<T>& input) override;
  /// C, the number of channels.
  std::size_t num_features() const { return num_features_; }
  /// eps added to the variance.
  double eps() const { return eps_; }
  /// The running statistics' momentum.
  double momentum() const { return momentum_; }
  /// Whether the layer has weight and bias.
  bool affine() const { return affine_; }
  /// The running mean, shape (C,).
  const Tensor<T>& running_mean() const { return running_mean_; }
  /// The running (unbiased) variance, shape (C,).
  const Tensor<T>& running_var() const { return running_var_; }
  /// The number of training forward() calls so far (or as loaded), a 0-d tensor.
  const Tensor<T>& num_batches_tracked() const { return num_batches_tracked_; }
  /// As PyTorch: "32, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True".
  std::string extra_repr() const override;

 protected:
  /// Registers the parameters and buffers. Throws ValueError if num_features is 0, momentum
  /// is not in [0, 1] or eps is negative or not finite.
  /// `name` ("BatchNorm1d") names the layer in those errors.
  BatchNormBase(const char* name, std::size_t num_features, double eps, double momentum,
                bool affine);
  /// Throws ShapeError unless the input's number of axes suits the subclass.
  virtual void check_input(const Tensor<T>& input) const = 0;

 private:
  std::size_t num_features_;
  double eps_, momentum_;
  bool affine_;
  Tensor<T> weight_, bias_, running_mean_, running_var_, num_batches_tracked_;
};

/// Batch normalisation of (N, C) or (N, C, L) input, as torch.nn.BatchNorm1d (see
/// BatchNormBase for parameters, buffers and modes). Prints as
/// `BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)`.
template <class T = double>
class BatchNorm1d : public BatchNormBase<T> {
 public:
  /// num_features C; PyTorch's defaults eps 1e-5, momentum 0.1, affine true.
  explicit BatchNorm1d(std::size_t num_features, double eps = 1e-5, double momentum = 0.1,
                       bool affine = true)
      : BatchNormBase<T>("BatchNorm1d", num_features, eps, momentum, affine) {}
  /// "BatchNorm1d".
  std::string type_name() const override { return "BatchNorm1d"; }

 protected:
  /// ShapeError unless 2-d or 3-d, naming the shape (as PyTorch's "expected 2D or 3D input").
  void check_input(const Tensor<T>& input) const override;
};

/// Batch normalisation of (N, C, H, W) input, as torch.nn.BatchNorm2d (see BatchNormBase).
/// Prints as `BatchNorm2d(32, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)`.
template <class T = double>
class BatchNorm2d : public BatchNormBase<T> {
 public:
  /// num_features C; PyTorch's defaults eps 1e-5, momentum 0.1, affine true.
  explicit BatchNorm2d(std::size_t num_features, double eps = 1e-5, double momentum = 0.1,
                       bool affine = true)
      : BatchNormBase<T>("BatchNorm2d", num_features, eps, momentum, affine) {}
  /// "BatchNorm2d".
  std::string type_name() const override { return "BatchNorm2d"; }

 protected:
  /// ShapeError unless 4-d, naming the shape (as PyTorch's "expected 4D input").
  void check_input(const Tensor<T>& input) const override;
};

/// Layer normalisation over the trailing `normalized_shape` of its input, as
/// torch.nn.LayerNorm: layer_norm(input, normalized_shape, weight, bias, eps). Parameters
/// "weight" (ones) and "bias" (zeros) of shape normalized_shape when elementwise_affine, as
/// PyTorch; no buffers; the same in training and evaluation. Prints as
/// `LayerNorm((8,), eps=1e-05, elementwise_affine=True)`.
template <class T = double>
class LayerNorm : public Module<T> {
 public:
  /// Throws ValueError if normalized_shape is empty or eps is negative or not finite.
  explicit LayerNorm(const Shape& normalized_shape, double eps = 1e-5,
                     bool elementwise_affine = true);
  /// layer_norm(input, normalized_shape(), weight, bias, eps()); errors as layer_norm.
  Tensor<T> forward(const Tensor<T>& input) override;
  /// The trailing extents normalised over.
  const Shape& normalized_shape() const { return normalized_shape_; }
  /// eps added to the variance.
  double eps() const { return eps_; }
  /// Whether the layer has weight and bias.
  bool elementwise_affine() const { return affine_; }
  /// "LayerNorm".
  std::string type_name() const override { return "LayerNorm"; }
  /// As PyTorch: "(8,), eps=1e-05, elementwise_affine=True".
  std::string extra_repr() const override;

 private:
  Shape normalized_shape_;
  double eps_;
  bool affine_;
  Tensor<T> weight_, bias_;
};

extern template class BatchNormBase<float>;
extern template class BatchNormBase<double>;
extern template class BatchNorm1d<float>;
extern template class BatchNorm1d<double>;
extern template class BatchNorm2d<float>;
extern template class BatchNorm2d<double>;
extern template class LayerNorm<float>;
extern template class LayerNorm<double>;

/// @}

}  // namespace tapegrad::nn

// The convolution and pooling layers: Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d and
// Flatten, modules over the ops of ops.hpp's "Convolution and pooling" section (NCHW).
#pragma once

#include <cstddef>
#include <string>

#include "tapegrad/nn/module.hpp"
#include "tapegrad/ops.hpp"
#include "tapegrad/random.hpp"

namespace tapegrad::nn {

/// @addtogroup nn
/// @{

/// The settings of a Conv2d layer that are not its geometry, builder style:
/// `Conv2dLayerOptions().bias(false).generator(g)`.
class Conv2dLayerOptions {
 public:
  /// With a bias (default) or without.
  Conv2dLayerOptions& bias(bool on) {
    bias_ = on;
    return *this;
  }
  /// The generator the initial values are drawn from (default: the thread's
  /// default_generator()). Not owned: it must outlive the options.
  Conv2dLayerOptions& generator(Generator& random) {
    generator_ = &random;
    return *this;
  }

  /// Whether the layer gets a bias.
  bool has_bias() const { return bias_; }
  /// The generator set with generator(), or else the calling thread's default_generator().
  Generator& random() const { return generator_ ? *generator_ : default_generator(); }

 private:
  bool bias_ = true;
  Generator* generator_ = nullptr;
};

/// A 2-d convolution layer, y = conv2d(x, weight, bias, options) (see conv2d): x of shape
/// (N, C, H, W) or (C, H, W), weight of shape (O, C, kh, kw), bias of shape (O,). The same
/// layout as torch.nn.Conv2d, so io::save_torch_state writes the weight as it is.
/// Initialised as PyTorch's Conv2d: weight and bias each drawn uniformly from
/// [-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = C kh kw, weight first, from the options'
/// generator. (PyTorch's kaiming_uniform_(a=sqrt(5)) on the weight is that same bound.)
/// Parameters: "weight", and "bias" unless disabled. No groups, no padding modes other than
/// zeros.
template <class T = double>
class Conv2d : public Module<T> {
 public:
  /// Makes the weight (out_channels, in_channels, kh, kw) and the bias (out_channels,).
  /// Throws ValueError if a channel count is 0 or a kernel size below 1, and as conv2d for
  /// the geometry's values (stride and dilation at least 1, padding at least 0).
  Conv2d(std::size_t in_channels, std::size_t out_channels, Size2 kernel_size,
         const Conv2dOptions& options = Conv2dOptions(),
         const Conv2dLayerOptions& layer = Conv2dLayerOptions());
  /// conv2d(input, weight, bias, options). Throws ShapeError naming the layer unless the
  /// input is 3-d or 4-d with in_channels channels; ValueError if the kernel is larger than
  /// the padded input.
  Tensor<T> forward(const Tensor<T>& input) override;

  /// The number of input channels C.
  std::size_t in_channels() const { return in_; }
  /// The number of output channels O.
  std::size_t out_channels() const { return out_; }
  /// The kernel size (kh, kw).
  const Size2& kernel_size() const { return kernel_; }
  /// The geometry.
  const Conv2dOptions& options() const { return options_; }
  /// The weight, shape (O, C, kh, kw).
  const Tensor<T>& weight() const { return weight_; }
  /// The bias, shape (O,). Throws ValueError for a layer without one.
  const Tensor<T>& bias() const;
  /// Whether the layer has a bias.
  bool has_bias() const { return has_bias_; }
  /// "Conv2d".
  std::string type_name() const override { return "Conv2d"; }
  /// As PyTorch: "1, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)" (padding and
  /// dilation shown only when not the default, and ", bias=False" without a bias).
  std::string extra_repr() const override;

 private:
  std::size_t in_, out_;
  Size2 kernel_;
  Conv2dOptions options_;
  bool has_bias_;
  Tensor<T> weight_, bias_;
};

/// A 2-d transposed convolution layer, y = conv_transpose2d(x, weight, bias, options) (see
/// conv_transpose2d): x of shape (N, C_in, H, W) or (C_in, H, W), weight of shape (C_in,
/// C_out, kh, kw), bias of shape (C_out,). The same layout as torch.nn.ConvTranspose2d, so
/// io::save_torch_state writes the weight as it is. Initialised as PyTorch's: weight and bias
/// each drawn uniformly from [-1/sqrt(fan_in), 1/sqrt(fan_in)) with PyTorch's fan_in of this
/// weight, C_out kh kw (its second extent times the kernel), weight first, from the options'
/// generator. Parameters: "weight", and "bias" unless disabled. No groups.
template <class T = double>
class ConvTranspose2d : public Module<T> {
 public:
  /// Makes the weight (in_channels, out_channels, kh, kw) and the bias (out_channels,).
  /// Throws ValueError if a channel count is 0 or a kernel size below 1, and as
  /// conv_transpose2d for the geometry's values (stride and dilation at least 1, padding at
  /// least 0, output padding at least 0 and below the stride).
  ConvTranspose2d(std::size_t in_channels, std::size_t out_channels, Size2 kernel_size,
                  const ConvTranspose2dOptions& options = ConvTranspose2dOptions(),
                  const Conv2dLayerOptions& layer = Conv2dLayerOptions());
  /// conv_transpose2d(input, weight, bias, options). Throws ShapeError naming the layer
  /// unless the input is 3-d or 4-d with in_channels channels.
  Tensor<T> forward(const Tensor<T>& input) override;

  /// The number of input channels C_in.
  std::size_t in_channels() const { return in_; }
  /// The number of output channels C_out.
  std::size_t out_channels() const { return out_; }
  /// The kernel size (kh, kw).
  const Size2& kernel_size() const { return kernel_; }
  /// The geometry.
  const ConvTranspose2dOptions& options() const { return options_; }
  /// The weight, shape (C_in, C_out, kh, kw).
  const Tensor<T>& weight() const { return weight_; }
  /// The bias, shape (C_out,). Throws ValueError for a layer without one.
  const Tensor<T>& bias() const;
  /// Whether the layer has a bias.
  bool has_bias() const { return has_bias_; }
  /// "ConvTranspose2d".
  std::string type_name() const override { return "ConvTranspose2d"; }
  /// As PyTorch: "16, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1),
  /// output_padding=(1, 1)" (padding, output padding and dilation shown only when not the
  /// default, and ", bias=False" without a bias).
  std::string extra_repr() const override;

 private:
  std::size_t in_, out_;
  Size2 kernel_;
  ConvTranspose2dOptions options_;
  bool has_bias_;
  Tensor<T> weight_, bias_;
};

/// max_pool2d(input, options) as a module (no parameters).
template <class T = double>
class MaxPool2d : public Module<T> {
 public:
  /// A pool of these options (see Pool2dOptions: the stride defaults to the kernel size).
  /// Throws ValueError as max_pool2d does for the options' values.
  explicit MaxPool2d(const Pool2dOptions& options);
  /// max_pool2d(input, options()).
  Tensor<T> forward(const Tensor<T>& input) override { return max_pool2d(input, options_); }
  /// The options.
  const Pool2dOptions& options() const { return options_; }
  /// "MaxPool2d".
  std::string type_name() const override { return "MaxPool2d"; }
  /// As PyTorch: "kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False" (each
  /// size as given: one number, or a pair "(3, 2)").
  std::string extra_repr() const override;

 private:
  Pool2dOptions options_;
};

/// avg_pool2d(input, options) as a module (no parameters; the zero padding counted, as
/// PyTorch's default count_include_pad=True).
template <class T = double>
class AvgPool2d : public Module<T> {
 public:
  /// A pool of these options. Throws ValueError as avg_pool2d does for the options' values.
  explicit AvgPool2d(const Pool2dOptions& options);
  /// avg_pool2d(input, options()).
  Tensor<T> forward(const Tensor<T>& input) override { return avg_pool2d(input, options_); }
  /// The options.
  const Pool2dOptions& options() const { return options_; }
  /// "AvgPool2d".
  std::string type_name() const override { return "AvgPool2d"; }
  /// As PyTorch: "kernel_size=2, stride=2, padding=0".
  std::string extra_repr() const override;

 private:
  Pool2dOptions options_;
};

/// adaptive_avg_pool2d(input, output_size) as a module; only the output size 1x1 is
/// supported.
template <class T = double>
class AdaptiveAvgPool2d : public Module<T> {
 public:
  /// Throws ValueError for an output size other than 1x1.
  explicit AdaptiveAvgPool2d(Size2 output_size);
  /// adaptive_avg_pool2d(input, output_size()).
  Tensor<T> forward(const Tensor<T>& input) override {
    return adaptive_avg_pool2d(input, output_size_);
  }
  /// The output size.
  const Size2& output_size() const { return output_size_; }
  /// "AdaptiveAvgPool2d".
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
  /// As PyTorch: "output_size=1" or "output_size=(1, 1)", as given.
  std::string extra_repr() const override { return "output_size=" + output_size_.to_string(); }

 private:
  Size2 output_size_;
};

/// flatten(input, start_dim, end_dim) as a module; the defaults (1, -1) keep the batch axis,
/// as torch.nn.Flatten.
template <class T = double>
class Flatten : public Module<T> {
 public:
  /// Merges the axes start_dim..end_dim (both included; negative count from the end).
  explicit Flatten(std::ptrdiff_t start_dim = 1, std::ptrdiff_t end_dim = -1)
      : start_(start_dim), end_(end_dim) {}
  /// flatten(input, start_dim, end_dim).
  Tensor<T> forward(const Tensor<T>& input) override { return flatten(input, start_, end_); }
  /// "Flatten".
  std::string type_name() const override { return "Flatten"; }
  /// As PyTorch: "start_dim=1, end_dim=-1".
  std::string extra_repr() const override {
    return "start_dim=" + std::to_string(start_) + ", end_dim=" + std::to_string(end_);
  }

 private:
  std::ptrdiff_t start_, end_;
};

extern template class Conv2d<float>;
extern template class Conv2d<double>;
extern template class ConvTranspose2d<float>;
extern template class ConvTranspose2d<double>;
extern template class MaxPool2d<float>;
extern template class MaxPool2d<double>;
extern template class AvgPool2d<float>;
extern template class AvgPool2d<double>;
extern template class AdaptiveAvgPool2d<float>;
extern template class AdaptiveAvgPool2d<double>;
extern template class Flatten<float>;
extern template class Flatten<double>;

/// @}

}  // namespace tapegrad::nn

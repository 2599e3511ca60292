#include "tapegrad/nn/conv.hpp"

#include <cmath>
#include <string>

#include "tapegrad/nn/init.hpp"

namespace tapegrad::nn {

namespace {

// Both values of a size at least `least`, else ValueError naming the layer.
void require_at_least(const char* layer, const char* what, const Size2& s, std::int64_t least) {
  if (s.h() < least || s.w() < least) {
    throw ValueError(std::string(layer) + ": " + what + " must be at least " +
                     std::to_string(least) + ", got " + s.to_pair_string());
  }
}

void check_geometry(const char* layer, const Size2& stride, const Size2& padding,
                    const Size2& dilation) {
  require_at_least(layer, "the stride", stride, 1);
  require_at_least(layer, "the padding", padding, 0);
  require_at_least(layer, "the dilation", dilation, 1);
}

void check_pool(const char* layer, const Pool2dOptions& options) {
  require_at_least(layer, "the kernel size", options.kernel(), 1);
  check_geometry(layer, options.stride(), options.padding(), options.dilation());
  const Size2& k = options.kernel();
  const Size2& p = options.padding();
  if (p.h() > k.h() / 2 || p.w() > k.w() / 2) {
    throw ValueError(std::string(layer) + ": the padding " + p.to_pair_string() +
                     " must be at most half the kernel size " + k.to_pair_string() +
                     " (as PyTorch)");
  }
}

// The checks both convolution layers make of their channel counts and kernel.
void check_layer(const char* layer, std::size_t in, std::size_t out, const Size2& kernel) {
  if (in == 0 || out == 0) {
    throw ValueError(std::string(layer) + ": channel counts must be positive, got " +
                     std::to_string(in) + " -> " + std::to_string(out));
  }
  require_at_least(layer, "the kernel size", kernel, 1);
}

// A parameter of `shape` drawn uniformly from [-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's
// reset_parameters of its convolutions, whose kaiming_uniform_(a = sqrt(5)) has the bound
// gain sqrt(3 / fan_in) with gain sqrt(2 / (1 + 5)), i.e. 1 / sqrt(fan_in); the bias too.
template <class T>
Tensor<T> drawn_parameter(const Shape& shape, std::size_t fan_in, const Conv2dLayerOptions& layer) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  xt::xarray<T> values = xt::xarray<T>::from_shape(shape);
  Init::uniform(-bound, bound).fill(values, layer.random());
  return Tensor<T>(std::move(values));
}

// A convolution layer's input: (N, in, H, W) or (in, H, W), else ShapeError naming the layer.
template <class T>
void check_input(const char* layer, std::size_t in, std::size_t out, const Tensor<T>& input) {
  const bool batched = input.dim() == 4;
  if ((input.dim() != 3 && !batched) || input.shape()[batched ? 1 : 0] != in) {
    throw ShapeError(std::string(layer) + "(" + std::to_string(in) + ", " + std::to_string(out) +
                     "): the input has shape " + shape_to_string(input.shape()) +
                     "; expected (N, " + std::to_string(in) + ", H, W) or (" + std::to_string(in) +
                     ", H, W)");
  }
}

// PyTorch's _ConvNd.extra_repr, with the sizes stored as pairs: padding, dilation and output
// padding shown only when not the default.
std::string conv_repr(std::size_t in, std::size_t out, const Size2& kernel,
                      const Conv2dOptions& geometry, const Size2& output_padding, bool has_bias) {
  std::string s = std::to_string(in) + ", " + std::to_string(out) +
                  ", kernel_size=" + kernel.to_pair_string() +
                  ", stride=" + geometry.stride().to_pair_string();
  const Size2& p = geometry.padding();
  const Size2& d = geometry.dilation();
  if (p.h() != 0 || p.w() != 0) s += ", padding=" + p.to_pair_string();
  if (d.h() != 1 || d.w() != 1) s += ", dilation=" + d.to_pair_string();
  if (output_padding.h() != 0 || output_padding.w() != 0)
    s += ", output_padding=" + output_padding.to_pair_string();
  if (!has_bias) s += ", bias=False";
  return s;
}

}  // namespace

template <class T>
Conv2d<T>::Conv2d(std::size_t in_channels, std::size_t out_channels, Size2 kernel_size,
                  const Conv2dOptions& options, const Conv2dLayerOptions& layer)
    : in_(in_channels),
      out_(out_channels),
      kernel_(kernel_size),
      options_(options),
      has_bias_(layer.has_bias()) {
  check_layer("Conv2d", in_, out_, kernel_);
  check_geometry("Conv2d", options.stride(), options.padding(), options.dilation());
  const auto kh = static_cast<std::size_t>(kernel_.h()), kw = static_cast<std::size_t>(kernel_.w());
  checked_size("Conv2d", {out_, in_, kh, kw});
  // PyTorch's fan_in of an (O, C, kh, kw) weight: C kh kw.
  weight_ = this->register_parameter("weight",
                                     drawn_parameter<T>({out_, in_, kh, kw}, in_ * kh * kw, layer));
  if (has_bias_)
    bias_ = this->register_parameter("bias", drawn_parameter<T>({out_}, in_ * kh * kw, layer));
}

template <class T>
Tensor<T> Conv2d<T>::forward(const Tensor<T>& input) {
  check_input("Conv2d", in_, out_, input);
  return has_bias_ ? conv2d(input, weight_, bias_, options_) : conv2d(input, weight_, options_);
}

template <class T>
const Tensor<T>& Conv2d<T>::bias() const {
  if (!has_bias_) throw ValueError("Conv2d: this layer was made without a bias");
  return bias_;
}

template <class T>
std::string Conv2d<T>::extra_repr() const {
  return conv_repr(in_, out_, kernel_, options_, Size2(0), has_bias_);
}

template <class T>
ConvTranspose2d<T>::ConvTranspose2d(std::size_t in_channels, std::size_t out_channels,
                                    Size2 kernel_size, const ConvTranspose2dOptions& options,
                                    const Conv2dLayerOptions& layer)
    : in_(in_channels),
      out_(out_channels),
      kernel_(kernel_size),
      options_(options),
      has_bias_(layer.has_bias()) {
  check_layer("ConvTranspose2d", in_, out_, kernel_);
  check_geometry("ConvTranspose2d", options.stride(), options.padding(), options.dilation());
  require_at_least("ConvTranspose2d", "the output padding", options.output_padding(), 0);
  const Size2& s = options.stride();
  const Size2& out_pad = options.output_padding();
  if (out_pad.h() >= s.h() || out_pad.w() >= s.w()) {
    throw ValueError("ConvTranspose2d: the output padding " + out_pad.to_pair_string() +
                     " must be below the stride " + s.to_pair_string() +
                     " (PyTorch also takes one below the dilation; tapegrad does not)");
  }
  const auto kh = static_cast<std::size_t>(kernel_.h()), kw = static_cast<std::size_t>(kernel_.w());
  checked_size("ConvTranspose2d", {in_, out_, kh, kw});
  // PyTorch's fan_in of a (C_in, C_out, kh, kw) weight is its second extent times the
  // kernel: C_out kh kw.
  weight_ = this->register_parameter(
      "weight", drawn_parameter<T>({in_, out_, kh, kw}, out_ * kh * kw, layer));
  if (has_bias_)
    bias_ = this->register_parameter("bias", drawn_parameter<T>({out_}, out_ * kh * kw, layer));
}

template <class T>
Tensor<T> ConvTranspose2d<T>::forward(const Tensor<T>& input) {
  check_input("ConvTranspose2d", in_, out_, input);
  return has_bias_ ? conv_transpose2d(input, weight_, bias_, options_)
                   : conv_transpose2d(input, weight_, options_);
}

template <class T>
const Tensor<T>& ConvTranspose2d<T>::bias() const {
  if (!has_bias_) throw ValueError("ConvTranspose2d: this layer was made without a bias");
  return bias_;
}

template <class T>
std::string ConvTranspose2d<T>::extra_repr() const {
  return conv_repr(in_, out_, kernel_, options_.convolution(), options_.output_padding(),
                   has_bias_);
}

template <class T>
MaxPool2d<T>::MaxPool2d(const Pool2dOptions& options) : options_(options) {
  check_pool("MaxPool2d", options_);
}

template <class T>
std::string MaxPool2d<T>::extra_repr() const {
  return "kernel_size=" + options_.kernel().to_string() +
         ", stride=" + options_.stride().to_string() +
         ", padding=" + options_.padding().to_string() +
         ", dilation=" + options_.dilation().to_string() + ", ceil_mode=False";
}

template <class T>
AvgPool2d<T>::AvgPool2d(const Pool2dOptions& options) : options_(options) {
  check_pool("AvgPool2d", options_);
  const Size2& d = options_.dilation();
  if (d.h() != 1 || d.w() != 1) {
    throw ValueError("AvgPool2d: no dilation (PyTorch's AvgPool2d has none), got " +
                     d.to_pair_string());
  }
}

template <class T>
std::string AvgPool2d<T>::extra_repr() const {
  return "kernel_size=" + options_.kernel().to_string() +
         ", stride=" + options_.stride().to_string() +
         ", padding=" + options_.padding().to_string();
}

template <class T>
AdaptiveAvgPool2d<T>::AdaptiveAvgPool2d(Size2 output_size) : output_size_(output_size) {
  if (output_size.h() != 1 || output_size.w() != 1) {
    throw ValueError("AdaptiveAvgPool2d: only the output size 1x1 is supported, got " +
                     output_size.to_pair_string());
  }
}

template class Conv2d<float>;
template class Conv2d<double>;
template class ConvTranspose2d<float>;
template class ConvTranspose2d<double>;
template class MaxPool2d<float>;
template class MaxPool2d<double>;
template class AvgPool2d<float>;
template class AvgPool2d<double>;
template class AdaptiveAvgPool2d<float>;
template class AdaptiveAvgPool2d<double>;
template class Flatten<float>;
template class Flatten<double>;

}  // namespace tapegrad::nn

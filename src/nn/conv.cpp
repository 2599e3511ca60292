#include "tapegrad/nn/conv.hpp"

#include <cmath>
#include <string>

#include "tapegrad/nn/init.hpp"

namespace tapegrad::nn {

namespace {

// Both values of a size at least `least`, else ValueError naming the layer.
void require_at_least(const char* layer, const char* what, const Size2& s, std::int64_t least) {
  if (s.h() < least || s.w() < least) {
    throw ValueError(std::string(layer) + ": " + what + " must be at least " + std::to_string(least) + ", got " +
                     s.to_pair_string());
  }
}

void check_geometry(const char* layer, const Size2& stride, const Size2& padding, const Size2& dilation) {
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
                     " must be at most half the kernel size " + k.to_pair_string() + " (as PyTorch)");
  }
}

}  // namespace

template <class T>
Conv2d<T>::Conv2d(std::size_t in_channels, std::size_t out_channels, Size2 kernel_size, const Conv2dOptions& options,
                  const Conv2dLayerOptions& layer)
    : in_(in_channels), out_(out_channels), kernel_(kernel_size), options_(options), has_bias_(layer.has_bias()) {
  if (in_ == 0 || out_ == 0) {
    throw ValueError("Conv2d: channel counts must be positive, got " + std::to_string(in_) + " -> " +
                     std::to_string(out_));
  }
  require_at_least("Conv2d", "the kernel size", kernel_, 1);
  check_geometry("Conv2d", options.stride(), options.padding(), options.dilation());
  const auto kh = static_cast<std::size_t>(kernel_.h()), kw = static_cast<std::size_t>(kernel_.w());
  checked_size("Conv2d", {out_, in_, kh, kw});
  // PyTorch's reset_parameters: kaiming_uniform_(a = sqrt(5)) gives the bound
  // gain sqrt(3 / fan_in) with gain sqrt(2 / (1 + 5)), i.e. 1 / sqrt(fan_in); the bias too.
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_ * kh * kw));
  const Init init = Init::uniform(-bound, bound);
  xt::xarray<T> w = xt::xarray<T>::from_shape({out_, in_, kh, kw});
  init.fill(w, layer.random());
  weight_ = this->register_parameter("weight", Tensor<T>(std::move(w)));
  if (has_bias_) {
    xt::xarray<T> b = xt::xarray<T>::from_shape({out_});
    init.fill(b, layer.random());
    bias_ = this->register_parameter("bias", Tensor<T>(std::move(b)));
  }
}

template <class T>
Tensor<T> Conv2d<T>::forward(const Tensor<T>& input) {
  const bool batched = input.dim() == 4;
  if ((input.dim() != 3 && !batched) || input.shape()[batched ? 1 : 0] != in_) {
    throw ShapeError("Conv2d(" + std::to_string(in_) + ", " + std::to_string(out_) + "): the input has shape " +
                     shape_to_string(input.shape()) + "; expected (N, " + std::to_string(in_) + ", H, W) or (" +
                     std::to_string(in_) + ", H, W)");
  }
  return has_bias_ ? conv2d(input, weight_, bias_, options_) : conv2d(input, weight_, options_);
}

template <class T>
const Tensor<T>& Conv2d<T>::bias() const {
  if (!has_bias_) throw ValueError("Conv2d: this layer was made without a bias");
  return bias_;
}

template <class T>
std::string Conv2d<T>::extra_repr() const {
  // PyTorch's _ConvNd.extra_repr, with the sizes stored as pairs.
  std::string s = std::to_string(in_) + ", " + std::to_string(out_) + ", kernel_size=" + kernel_.to_pair_string() +
                  ", stride=" + options_.stride().to_pair_string();
  const Size2& p = options_.padding();
  const Size2& d = options_.dilation();
  if (p.h() != 0 || p.w() != 0) s += ", padding=" + p.to_pair_string();
  if (d.h() != 1 || d.w() != 1) s += ", dilation=" + d.to_pair_string();
  if (!has_bias_) s += ", bias=False";
  return s;
}

template <class T>
ConvTranspose2d<T>::ConvTranspose2d(std::size_t in_channels, std::size_t out_channels, Size2 kernel_size,
                                    const ConvTranspose2dOptions& options, const Conv2dLayerOptions& layer)
    : in_(in_channels), out_(out_channels), kernel_(kernel_size), options_(options), has_bias_(layer.has_bias()) {
  if (in_ == 0 || out_ == 0) {
    throw ValueError("ConvTranspose2d: channel counts must be positive, got " + std::to_string(in_) + " -> " +
                     std::to_string(out_));
  }
  require_at_least("ConvTranspose2d", "the kernel size", kernel_, 1);
  check_geometry("ConvTranspose2d", options.stride(), options.padding(), options.dilation());
  require_at_least("ConvTranspose2d", "the output padding", options.output_padding(), 0);
  const Size2& s = options.stride();
  const Size2& out_pad = options.output_padding();
  if (out_pad.h() >= s.h() || out_pad.w() >= s.w()) {
    throw ValueError("ConvTranspose2d: the output padding " + out_pad.to_pair_string() + " must be below the stride " +
                     s.to_pair_string() + " (PyTorch also takes one below the dilation; tapegrad does not)");
  }
  const auto kh = static_cast<std::size_t>(kernel_.h()), kw = static_cast<std::size_t>(kernel_.w());
  checked_size("ConvTranspose2d", {in_, out_, kh, kw});
  // PyTorch's fan_in of a (C_in, C_out, kh, kw) weight is its second extent times the
  // kernel: C_out kh kw; kaiming_uniform_(a = sqrt(5)) then bounds at 1 / sqrt(fan_in).
  const double bound = 1.0 / std::sqrt(static_cast<double>(out_ * kh * kw));
  const Init init = Init::uniform(-bound, bound);
  xt::xarray<T> w = xt::xarray<T>::from_shape({in_, out_, kh, kw});
  init.fill(w, layer.random());
  weight_ = this->register_parameter("weight", Tensor<T>(std::move(w)));
  if (has_bias_) {
    xt::xarray<T> b = xt::xarray<T>::from_shape({out_});
    init.fill(b, layer.random());
    bias_ = this->register_parameter("bias", Tensor<T>(std::move(b)));
  }
}

template <class T>
Tensor<T> ConvTranspose2d<T>::forward(const Tensor<T>& input) {
  const bool batched = input.dim() == 4;
  if ((input.dim() != 3 && !batched) || input.shape()[batched ? 1 : 0] != in_) {
    throw ShapeError("ConvTranspose2d(" + std::to_string(in_) + ", " + std::to_string(out_) +
                     "): the input has shape " + shape_to_string(input.shape()) + "; expected (N, " +
                     std::to_string(in_) + ", H, W) or (" + std::to_string(in_) + ", H, W)");
  }
  return has_bias_ ? conv_transpose2d(input, weight_, bias_, options_) : conv_transpose2d(input, weight_, options_);
}

template <class T>
const Tensor<T>& ConvTranspose2d<T>::bias() const {
  if (!has_bias_) throw ValueError("ConvTranspose2d: this layer was made without a bias");
  return bias_;
}

template <class T>
std::string ConvTranspose2d<T>::extra_repr() const {
  // PyTorch's _ConvNd.extra_repr, with the sizes stored as pairs.
  std::string s = std::to_string(in_) + ", " + std::to_string(out_) + ", kernel_size=" + kernel_.to_pair_string() +
                  ", stride=" + options_.stride().to_pair_string();
  const Size2& p = options_.padding();
  const Size2& op = options_.output_padding();
  const Size2& d = options_.dilation();
  if (p.h() != 0 || p.w() != 0) s += ", padding=" + p.to_pair_string();
  if (d.h() != 1 || d.w() != 1) s += ", dilation=" + d.to_pair_string();
  if (op.h() != 0 || op.w() != 0) s += ", output_padding=" + op.to_pair_string();
  if (!has_bias_) s += ", bias=False";
  return s;
}

template <class T>
MaxPool2d<T>::MaxPool2d(const Pool2dOptions& options) : options_(options) {
  check_pool("MaxPool2d", options_);
}

template <class T>
std::string MaxPool2d<T>::extra_repr() const {
  return "kernel_size=" + options_.kernel().to_string() + ", stride=" + options_.stride().to_string() +
         ", padding=" + options_.padding().to_string() + ", dilation=" + options_.dilation().to_string() +
         ", ceil_mode=False";
}

template <class T>
AvgPool2d<T>::AvgPool2d(const Pool2dOptions& options) : options_(options) {
  check_pool("AvgPool2d", options_);
  const Size2& d = options_.dilation();
  if (d.h() != 1 || d.w() != 1) {
    throw ValueError("AvgPool2d: no dilation (PyTorch's AvgPool2d has none), got " + d.to_pair_string());
  }
}

template <class T>
std::string AvgPool2d<T>::extra_repr() const {
  return "kernel_size=" + options_.kernel().to_string() + ", stride=" + options_.stride().to_string() +
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

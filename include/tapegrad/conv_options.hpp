// The settings of the convolution and pooling ops (ops.hpp): a size given as one number or
// a pair, and the builder-style options of conv2d, im2col and the pools.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>

namespace tapegrad {

/// @addtogroup conv
/// @{

/// A size along the two spatial axes (height, width), given as one number for both or as a
/// pair {h, w}, as PyTorch takes an int or a tuple. It remembers which, so that a module
/// prints it as PyTorch would (`2` or `(2, 3)`). Negative values are kept as given and refused
/// by the function they are passed to (ValueError).
class Size2 {
 public:
  /// The same number for height and width.
  template <class I, class = std::enable_if_t<std::is_integral_v<I>>>
  Size2(I both)  // NOLINT: `stride(2)` reads as PyTorch's stride=2
      : h_(static_cast<std::int64_t>(both)), w_(static_cast<std::int64_t>(both)), pair_(false) {}
  /// Height and width: `{3, 2}`.
  template <class I, class J,
            class = std::enable_if_t<std::is_integral_v<I> && std::is_integral_v<J>>>
  Size2(I h, J w)
      : h_(static_cast<std::int64_t>(h)), w_(static_cast<std::int64_t>(w)), pair_(true) {}

  /// The height's value.
  std::int64_t h() const { return h_; }
  /// The width's value.
  std::int64_t w() const { return w_; }
  /// Whether it was given as a pair.
  bool is_pair() const { return pair_; }
  /// "(h, w)" always, as PyTorch prints a Conv2d's sizes (which it stores as tuples).
  std::string to_pair_string() const {
    return "(" + std::to_string(h_) + ", " + std::to_string(w_) + ")";
  }
  /// "h" if given as one number, else "(h, w)": as PyTorch prints a pool's sizes.
  std::string to_string() const { return pair_ ? to_pair_string() : std::to_string(h_); }

 private:
  std::int64_t h_, w_;
  bool pair_;
};

/// The geometry of conv2d and im2col, builder style:
/// `Conv2dOptions().stride(2).padding(1).dilation(1)`, each taking one number or a pair
/// {h, w}. Defaults as PyTorch: stride 1, padding 0, dilation 1. (No groups: every output
/// channel sees every input channel.)
class Conv2dOptions {
 public:
  /// The step between windows (each at least 1).
  Conv2dOptions& stride(Size2 s) {
    stride_ = s;
    return *this;
  }
  /// Zeros added on both sides of each spatial axis (each at least 0).
  Conv2dOptions& padding(Size2 p) {
    padding_ = p;
    return *this;
  }
  /// The spacing between a window's taps (each at least 1; 1 is a dense window).
  Conv2dOptions& dilation(Size2 d) {
    dilation_ = d;
    return *this;
  }

  /// The stride.
  const Size2& stride() const { return stride_; }
  /// The padding.
  const Size2& padding() const { return padding_; }
  /// The dilation.
  const Size2& dilation() const { return dilation_; }

 private:
  Size2 stride_{1}, padding_{0}, dilation_{1};
};

/// The geometry of conv_transpose2d, builder style:
/// `ConvTranspose2dOptions().stride(2).padding(1).output_padding(1)`, each taking one number
/// or a pair {h, w}. Defaults as PyTorch: stride 1, padding 0, output padding 0, dilation 1.
/// The stride, padding and dilation are those of the convolution whose transpose this is:
/// conv2d with them maps conv_transpose2d's output size back to its input size.
class ConvTranspose2dOptions {
 public:
  /// The convolution's stride (each at least 1): the output grows by this much per input step.
  ConvTranspose2dOptions& stride(Size2 s) {
    stride_ = s;
    return *this;
  }
  /// The convolution's padding (each at least 0): cut from both sides of the output.
  ConvTranspose2dOptions& padding(Size2 p) {
    padding_ = p;
    return *this;
  }
  /// Rows and columns added at the bottom and right of the output (each at least 0 and
  /// below the stride): the convolution maps several sizes to one, this picks among them.
  ConvTranspose2dOptions& output_padding(Size2 p) {
    output_padding_ = p;
    return *this;
  }
  /// The convolution's dilation (each at least 1).
  ConvTranspose2dOptions& dilation(Size2 d) {
    dilation_ = d;
    return *this;
  }

  /// The stride.
  const Size2& stride() const { return stride_; }
  /// The padding.
  const Size2& padding() const { return padding_; }
  /// The output padding.
  const Size2& output_padding() const { return output_padding_; }
  /// The dilation.
  const Size2& dilation() const { return dilation_; }
  /// The convolution's geometry, without the output padding.
  Conv2dOptions convolution() const {
    return Conv2dOptions().stride(stride_).padding(padding_).dilation(dilation_);
  }

 private:
  Size2 stride_{1}, padding_{0}, output_padding_{0}, dilation_{1};
};

/// The window of max_pool2d and avg_pool2d, builder style:
/// `Pool2dOptions(2)`, `Pool2dOptions({3, 2}).stride(1).padding(1)`. The stride defaults to
/// the kernel size (as PyTorch), the padding to 0 and the dilation to 1. The padding may be
/// at most half the kernel size along each axis (as PyTorch). There is no ceil_mode: the
/// output size is always rounded down (PyTorch's default ceil_mode=False).
class Pool2dOptions {
 public:
  /// A window of `kernel` (one number or {kh, kw}).
  explicit Pool2dOptions(Size2 kernel) : kernel_(kernel), stride_(kernel) {}
  /// The step between windows (default: the kernel size).
  Pool2dOptions& stride(Size2 s) {
    stride_ = s;
    return *this;
  }
  /// Padding on both sides of each spatial axis: -inf for max_pool2d, 0 for avg_pool2d.
  Pool2dOptions& padding(Size2 p) {
    padding_ = p;
    return *this;
  }
  /// The spacing between a window's taps (max_pool2d only; avg_pool2d takes 1, as PyTorch).
  Pool2dOptions& dilation(Size2 d) {
    dilation_ = d;
    return *this;
  }

  /// The kernel size.
  const Size2& kernel() const { return kernel_; }
  /// The stride (the kernel size unless set).
  const Size2& stride() const { return stride_; }
  /// The padding.
  const Size2& padding() const { return padding_; }
  /// The dilation.
  const Size2& dilation() const { return dilation_; }
  /// The same geometry as Conv2dOptions (for im2col).
  Conv2dOptions window() const {
    return Conv2dOptions().stride(stride_).padding(padding_).dilation(dilation_);
  }

 private:
  Size2 kernel_, stride_, padding_{0}, dilation_{1};
};

/// @}

}  // namespace tapegrad

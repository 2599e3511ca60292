// softmax and log_softmax, one block each (see ops/op.hpp): primitives with their own
// backward, for numerical stability.
#include <xtensor/xmath.hpp>

#include "ops/op.hpp"
#include "tapegrad/ops.hpp"

namespace tapegrad {

using detail::BackwardContext;
using detail::Gradients;
using detail::Inputs;

namespace {

// x - max(x) along `axis` (see softmax_shift).
template <class T>
xt::xarray<T> shifted(const xt::xarray<T>& x, std::size_t axis) {
  return x - detail::softmax_shift(x, axis);
}

// The sum along `axis`, kept at extent 1 (0 for an empty axis).
template <class T>
xt::xarray<T> sum_kept(const xt::xarray<T>& x, std::size_t axis) {
  Shape kept = x.shape();
  kept[axis] = 1;
  return detail::reduce_to(x, kept);
}

// What softmax and log_softmax share: an axis, and y of x's shape.
struct AlongAxis {
  struct Attrs {
    std::size_t axis;
  };
  template <class T>
  static const Shape& shape(const Inputs<T>& in, const Attrs&, Shape&) {
    return in[0].shape();
  }
};

}  // namespace

namespace {
// y = e^x / sum(e^x) along an axis (shifted by the maximum).  dx = y (g - sum(g y)).
struct Softmax : AlongAxis {
  static constexpr const char* name = "softmax";
  template <class T>
  static void forward(const Inputs<T>& in, const Attrs& a, xt::xarray<T>& out) {
    if (out.size() == 0) return;  // empty stays empty, however large its other extents
    xt::xarray<T> e = xt::exp(shifted(in[0], a.axis));
    xt::noalias(out) = e / sum_kept(e, a.axis);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& a) {
    const Axes along{static_cast<std::ptrdiff_t>(a.axis)};
    const auto y = c.output();
    const auto g = c.grad();
    return mul(y, sub(g, sum(mul(g, y), along, true)));
  }
};
}  // namespace
TAPEGRAD_REGISTER_OP(Softmax)

template <class T>
Tensor<T> softmax(const Tensor<T>& x, std::ptrdiff_t axis) {
  return detail::apply<Softmax>({detail::normalize_axis("softmax", axis, x.dim())}, x);
}

namespace {
// y = x - log(sum(e^x)) along an axis (shifted by the maximum).  dx = g - e^y sum(g).
struct LogSoftmax : AlongAxis {
  static constexpr const char* name = "log_softmax";
  template <class T>
  static void forward(const Inputs<T>& in, const Attrs& a, xt::xarray<T>& out) {
    if (out.size() == 0) return;  // empty stays empty, however large its other extents
    xt::xarray<T> s = shifted(in[0], a.axis);
    xt::noalias(out) = s - xt::log(sum_kept(xt::xarray<T>(xt::exp(s)), a.axis));
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& a) {
    const Axes along{static_cast<std::ptrdiff_t>(a.axis)};
    const auto g = c.grad();
    return sub(g, mul(exp(c.output()), sum(g, along, true)));
  }
};
}  // namespace
TAPEGRAD_REGISTER_OP(LogSoftmax)

template <class T>
Tensor<T> log_softmax(const Tensor<T>& x, std::ptrdiff_t axis) {
  return detail::apply<LogSoftmax>({detail::normalize_axis("log_softmax", axis, x.dim())}, x);
}

template Tensor<float> softmax(const Tensor<float>&, std::ptrdiff_t);
template Tensor<double> softmax(const Tensor<double>&, std::ptrdiff_t);
template Tensor<float> log_softmax(const Tensor<float>&, std::ptrdiff_t);
template Tensor<double> log_softmax(const Tensor<double>&, std::ptrdiff_t);

}  // namespace tapegrad

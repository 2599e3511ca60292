// Reductions, one block each (see ops/op.hpp): sum, max along an axis, logsumexp; mean is
// a sum scaled.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <xtensor/xmath.hpp>

#include "ops/op.hpp"
#include "tapegrad/ops.hpp"

namespace tapegrad {

using detail::AxisWalk;
using detail::BackwardContext;
using detail::dropped_shape;
using detail::Gradients;
using detail::Inputs;
using detail::kept_shape;
using detail::NoAttrs;
using detail::normalize_axes;

namespace {
// The gradient of a reduction, put back in x's shape: reshape g to the kept shape (the
// reduced axes at extent 1), then broadcast.
template <class T>
Tensor<T> expand_reduced(const Tensor<T>& g, const Shape& kept, const Shape& full) {
  return broadcast_to(reshape(g, kept), full);
}
}  // namespace

namespace {
// y = the sum of all elements of x (0-d).  dx = g broadcast to x's shape.
struct SumAll {
  static constexpr const char* name = "sum";
  using Attrs = NoAttrs;
  template <class T>
  static const Shape& shape(const Inputs<T>&, const Attrs&, Shape& scratch) {
    return scratch = Shape{};
  }
  template <class T>
  static void forward(const Inputs<T>& in, const Attrs&, xt::xarray<T>& out) {
    // A plain loop over the data (xtensor's iterator steps through strides, several times
    // slower on a large array), the one a compiled step runs.
    detail::sum_rows(in[0].data(), detail::Rows{in[0].size(), 1}, out.data());
  }
  // A compiled step: the same loop on raw buffers (one row of one element).
  using Raw = detail::Rows;
  template <class T>
  static std::optional<Raw> raw(const Inputs<T>& in, const Attrs&, const Shape&) {
    return Raw{in[0].size(), 1};
  }
  template <class T>
  static void raw_forward(const T* x, const T*, T* y, const Raw& rows) {
    detail::sum_rows(x, rows, y);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    return broadcast_to(c.grad(), c.input(0).shape());
  }
};
}  // namespace
TAPEGRAD_REGISTER_OP(SumAll)

template <class T>
Tensor<T> sum(const Tensor<T>& x) {
  return detail::apply<SumAll>(x);
}

namespace {
// y = the sum of x over some axes (kept at extent 1 or dropped).  dx = g broadcast back.
struct SumAlong {
  static constexpr const char* name = "sum";
  struct Attrs {
    Shape kept;
  };  // x's shape with the summed axes at extent 1
  template <class T>
  static void forward(const Inputs<T>& in, const Attrs& a, xt::xarray<T>& out) {
    detail::reduce_into(in[0], a.kept, out.data());
  }
  // A compiled step: leading axes summed (a bias's gradient) are one loop on raw buffers.
  using Raw = detail::Rows;
  template <class T>
  static std::optional<Raw> raw(const Inputs<T>& in, const Attrs& a, const Shape&) {
    return detail::as_rows(in[0].shape(), a.kept);
  }
  template <class T>
  static void raw_forward(const T* x, const T*, T* y, const Raw& rows) {
    detail::sum_rows(x, rows, y);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& a) {
    return expand_reduced(c.grad(), a.kept, c.input(0).shape());
  }
};
}  // namespace
TAPEGRAD_REGISTER_OP(SumAlong)

template <class T>
Tensor<T> sum(const Tensor<T>& x, const Axes& axes, bool keepdims) {
  const auto norm = normalize_axes("sum", axes, x.dim());
  Shape kept = kept_shape("sum", x.shape(), norm);
  const Shape shape = keepdims ? kept : dropped_shape(x.shape(), norm);
  return detail::apply_shaped<SumAlong>(shape, {std::move(kept)}, x);
}

template <class T>
Tensor<T> mean(const Tensor<T>& x) {
  if (x.size() == 0)
    throw ValueError("mean: the tensor " + shape_to_string(x.shape()) + " is empty");
  return affine(sum(x), 1.0 / static_cast<double>(x.size()));
}

template <class T>
Tensor<T> mean(const Tensor<T>& x, const Axes& axes, bool keepdims) {
  std::size_t count = 1;
  for (auto axis : normalize_axes("mean", axes, x.dim())) count *= x.shape()[axis];
  if (count == 0)
    throw ValueError("mean: no elements along the given axes of " + shape_to_string(x.shape()));
  return affine(sum(x, axes, keepdims), 1.0 / static_cast<double>(count));
}

namespace detail {

namespace {
// y = 1 at the first position of the largest element along an axis (or of the first NaN,
// which max returns), 0 elsewhere; x's shape. A mask: no gradient.
struct MaxMask {
  static constexpr const char* name = "max_mask";
  struct Attrs {
    std::size_t axis;
  };
  template <class T>
  static const Shape& shape(const Inputs<T>& in, const Attrs&, Shape&) {
    return in[0].shape();
  }
  template <class T>
  static void forward(const Inputs<T>& in, const Attrs& a, xt::xarray<T>& out) {
    const auto& v = in[0];
    std::fill(out.data(), out.data() + out.size(), T(0));
    const AxisWalk walk(v.shape(), a.axis);
    for (std::size_t o = 0; o < walk.outer; ++o) {
      for (std::size_t i = 0; i < walk.inner; ++i) {
        const std::size_t base = o * walk.extent * walk.inner + i;
        std::size_t best = base;
        for (std::size_t k = 1; k < walk.extent; ++k) {
          const std::size_t at = base + k * walk.inner;
          const T candidate = v.data()[at], current = v.data()[best];
          if (current != current) break;
          if (candidate > current || candidate != candidate) best = at;
        }
        if (walk.extent > 0) out.data()[best] = T(1);
      }
    }
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>&, const Attrs&) {
    return {};
  }
};
}  // namespace
TAPEGRAD_REGISTER_OP(MaxMask)

template <class T>
Tensor<T> max_mask(const Tensor<T>& x, std::size_t axis) {
  return apply<MaxMask>({axis}, x);
}

}  // namespace detail

namespace {
// What the reductions along one axis (max, logsumexp) share: the axis, x's shape with it at
// extent 1 (for the backward), and the result's shape, that one or with the axis dropped.
struct AlongOneAxis {
  struct Attrs {
    Shape kept;
    std::size_t axis;
  };
  struct Shapes {
    Attrs attrs;
    Shape result;
  };
  template <class T>
  static Shapes shapes(const char* op, const Tensor<T>& x, std::size_t axis, bool keepdims) {
    Shape kept = kept_shape(op, x.shape(), {axis});
    Shape result = keepdims ? kept : dropped_shape(x.shape(), {axis});
    return {{std::move(kept), axis}, std::move(result)};
  }
};

// y = the largest element along an axis (the first NaN if there is one).  dx = g at the
// first position of each maximum (or of that NaN), as PyTorch; 0 elsewhere.
struct MaxAlong : AlongOneAxis {
  static constexpr const char* name = "max";
  template <class T>
  static void forward(const Inputs<T>& in, const Attrs& a, xt::xarray<T>& out) {
    detail::max_into(in[0], a.axis, out.data());
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& a) {
    const auto x = c.input(0);
    return mul(expand_reduced(c.grad(), a.kept, x.shape()), detail::max_mask(x, a.axis));
  }
};
}  // namespace
TAPEGRAD_REGISTER_OP(MaxAlong)

template <class T>
Tensor<T> max(const Tensor<T>& x, std::ptrdiff_t axis, bool keepdims) {
  const std::size_t a = detail::normalize_axis("max", axis, x.dim());
  if (x.shape()[a] == 0) {
    throw ValueError("max: axis " + std::to_string(axis) + " of " + shape_to_string(x.shape()) +
                     " is empty");
  }
  auto shapes = MaxAlong::shapes("max", x, a, keepdims);
  return detail::apply_shaped<MaxAlong>(shapes.result, std::move(shapes.attrs), x);
}

namespace {
// y = log(sum(exp(x))) along an axis, shifted by the maximum so that exp never overflows; an
// empty row gives log 0 = -inf, as in NumPy and PyTorch.  dx = g softmax(x).
struct LogSumExp : AlongOneAxis {
  static constexpr const char* name = "logsumexp";
  template <class T>
  static void forward(const Inputs<T>& in, const Attrs& a, xt::xarray<T>& out) {
    const xt::xarray<T> m = detail::softmax_shift(in[0], a.axis);
    const xt::xarray<T> sums = detail::reduce_to(xt::xarray<T>(xt::exp(in[0] - m)), a.kept);
    T* y = out.data();
    for (std::size_t i = 0, n = out.size(); i < n; ++i)
      y[i] = m.data()[i] + std::log(sums.data()[i]);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& a) {
    const auto x = c.input(0);
    const auto softmax_x = exp(sub(x, expand_reduced(c.output(), a.kept, x.shape())));
    return mul(expand_reduced(c.grad(), a.kept, x.shape()), softmax_x);
  }
};
}  // namespace
TAPEGRAD_REGISTER_OP(LogSumExp)

template <class T>
Tensor<T> logsumexp(const Tensor<T>& x, std::ptrdiff_t axis, bool keepdims) {
  const std::size_t a = detail::normalize_axis("logsumexp", axis, x.dim());
  auto shapes = LogSumExp::shapes("logsumexp", x, a, keepdims);
  return detail::apply_shaped<LogSumExp>(shapes.result, std::move(shapes.attrs), x);
}

#define TAPEGRAD_INSTANTIATE(T)                                   \
  template Tensor<T> sum(const Tensor<T>&);                       \
  template Tensor<T> sum(const Tensor<T>&, const Axes&, bool);    \
  template Tensor<T> mean(const Tensor<T>&);                      \
  template Tensor<T> mean(const Tensor<T>&, const Axes&, bool);   \
  template Tensor<T> max(const Tensor<T>&, std::ptrdiff_t, bool); \
  template Tensor<T> logsumexp(const Tensor<T>&, std::ptrdiff_t, bool);

TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad

// Elementwise ops: each forward, then its backward rule, in one block.
#include <cmath>
#include <functional>

#include <xtensor/xmath.hpp>
#include <xtensor/xoperation.hpp>

#include "core/backward_context.hpp"
#include "core/recording.hpp"
#include "ops/kernels.hpp"
#include "tapegrad/ops.hpp"

namespace tapegrad {

using detail::Attrs;
using detail::BackwardContext;
using detail::constant;
using detail::make_result;

namespace {

using detail::map_binary;
using detail::map_unary;


}  // namespace

// ---- two operands ----

template <class T>
Tensor<T> add(const Tensor<T>& a, const Tensor<T>& b) {
  return make_result<T>("add", map_binary("add", a.value(), b.value(), std::plus<T>()), a, b, [](BackwardContext<T>& c) {
    const auto g = c.grad();
    c.add(0, sum_to(g, c.input(0).shape()));
    c.add(1, sum_to(g, c.input(1).shape()));
  });
}

template <class T>
Tensor<T> sub(const Tensor<T>& a, const Tensor<T>& b) {
  return make_result<T>("sub", map_binary("sub", a.value(), b.value(), std::minus<T>()), a, b, [](BackwardContext<T>& c) {
    const auto g = c.grad();
    c.add(0, sum_to(g, c.input(0).shape()));
    if (c.needs(1)) c.add(1, sum_to(neg(g), c.input(1).shape()));
  });
}

template <class T>
Tensor<T> mul(const Tensor<T>& a, const Tensor<T>& b) {
  return make_result<T>("mul", map_binary("mul", a.value(), b.value(), std::multiplies<T>()), a, b, [](BackwardContext<T>& c) {
    const auto g = c.grad();
    const auto x = c.input(0);
    const auto y = c.input(1);
    if (c.needs(0)) c.add(0, sum_to(mul(g, y), x.shape()));
    if (c.needs(1)) c.add(1, sum_to(mul(g, x), y.shape()));
  });
}

template <class T>
Tensor<T> div(const Tensor<T>& a, const Tensor<T>& b) {
  return make_result<T>("div", map_binary("div", a.value(), b.value(), std::divides<T>()), a, b, [](BackwardContext<T>& c) {
    const auto g = c.grad();
    const auto b = c.input(1);
    if (c.needs(0)) c.add(0, sum_to(div(g, b), c.input(0).shape()));
    if (c.needs(1)) c.add(1, sum_to(neg(div(mul(g, c.output()), b)), b.shape()));
  });
}

template <class T>
Tensor<T> div(const Tensor<T>& x, double s) {
  Attrs attrs;
  attrs.scalar = s;
  const T divisor = static_cast<T>(s);
  return make_result<T>(
      "div", map_unary(x.value(), [divisor](T v) { return v / divisor; }), x,
      [](BackwardContext<T>& c) { c.add(0, div(c.grad(), c.attrs().scalar)); },
      std::move(attrs));
}

template <class T>
Tensor<T> div(double s, const Tensor<T>& x) {
  const T dividend = static_cast<T>(s);
  return make_result<T>(
      "div", map_unary(x.value(), [dividend](T v) { return dividend / v; }), x,
      [](BackwardContext<T>& c) {
        c.add(0, neg(div(mul(c.grad(), c.output()), c.input(0))));
      });
}

namespace {

// Weight of `a` in the gradient of max(a, b): 1 where a wins, 0 where b wins, 1/2 on ties.
template <class T>
xt::xarray<T> share_of_first(const xt::xarray<T>& a, const xt::xarray<T>& b, bool larger) {
  xt::xarray<T> wins = larger ? xt::xarray<T>(xt::cast<T>(a > b)) : xt::xarray<T>(xt::cast<T>(a < b));
  return wins + T(0.5) * xt::cast<T>(xt::equal(a, b));
}

template <class T>
void extremum_backward(BackwardContext<T>& c, bool larger) {
  const auto g = c.grad();
  const auto a = c.input(0);
  const auto b = c.input(1);
  const auto share = constant<T>(share_of_first(a.value(), b.value(), larger));
  if (c.needs(0)) c.add(0, sum_to(mul(g, share), a.shape()));
  if (c.needs(1)) c.add(1, sum_to(sub(g, mul(g, share)), b.shape()));
}

}  // namespace

template <class T>
Tensor<T> maximum(const Tensor<T>& a, const Tensor<T>& b) {
  return make_result<T>("maximum",
                        map_binary("maximum", a.value(), b.value(),
                                   [](T x, T y) { return x < y ? y : x; }),
                        a, b,
                        [](BackwardContext<T>& c) { extremum_backward(c, true); });
}

template <class T>
Tensor<T> minimum(const Tensor<T>& a, const Tensor<T>& b) {
  return make_result<T>("minimum",
                        map_binary("minimum", a.value(), b.value(),
                                   [](T x, T y) { return y < x ? y : x; }),
                        a, b,
                        [](BackwardContext<T>& c) { extremum_backward(c, false); });
}

// ---- one operand ----

template <class T>
Tensor<T> neg(const Tensor<T>& x) {
  return make_result<T>("neg", map_unary(x.value(), [](T v) { return -v; }), x,
                        [](BackwardContext<T>& c) { c.add(0, neg(c.grad())); });
}

template <class T>
Tensor<T> affine(const Tensor<T>& x, double scale, double shift) {
  Attrs attrs;
  attrs.scalar = scale;
  const T a = static_cast<T>(scale);
  const T b = static_cast<T>(shift);
  return make_result<T>(
      "affine", map_unary(x.value(), [a, b](T v) { return a * v + b; }), x,
      [](BackwardContext<T>& c) { c.add(0, affine(c.grad(), c.attrs().scalar)); },
      std::move(attrs));
}

template <class T>
Tensor<T> pow(const Tensor<T>& x, double p) {
  Attrs attrs;
  attrs.scalar = p;
  return make_result<T>(
      "pow", xt::pow(x.value(), static_cast<T>(p)), x,
      [](BackwardContext<T>& c) {
        const double p = c.attrs().scalar;
        const auto x = c.input(0);
        if (p == 0) {
          c.add(0, constant<T>(xt::zeros<T>(x.shape())));
        } else {
          c.add(0, mul(c.grad(), affine(pow(x, p - 1), p)));
        }
      },
      std::move(attrs));
}

template <class T>
Tensor<T> exp(const Tensor<T>& x) {
  return make_result<T>("exp", map_unary(x.value(), [](T v) { return std::exp(v); }), x,
                        [](BackwardContext<T>& c) { c.add(0, mul(c.grad(), c.output())); });
}

template <class T>
Tensor<T> log(const Tensor<T>& x) {
  return make_result<T>("log", map_unary(x.value(), [](T v) { return std::log(v); }), x,
                        [](BackwardContext<T>& c) { c.add(0, div(c.grad(), c.input(0))); });
}

template <class T>
Tensor<T> sqrt(const Tensor<T>& x) {
  return make_result<T>("sqrt", xt::sqrt(x.value()), x, [](BackwardContext<T>& c) {
    c.add(0, affine(div(c.grad(), c.output()), 0.5));
  });
}

template <class T>
Tensor<T> abs(const Tensor<T>& x) {
  return make_result<T>("abs", xt::abs(x.value()), x, [](BackwardContext<T>& c) {
    c.add(0, mul(c.grad(), constant<T>(xt::sign(c.input(0).value()))));
  });
}

template <class T>
Tensor<T> square(const Tensor<T>& x) {
  return make_result<T>("square", map_unary(x.value(), [](T v) { return v * v; }), x, [](BackwardContext<T>& c) {
    c.add(0, affine(mul(c.grad(), c.input(0)), 2));
  });
}

template <class T>
Tensor<T> sin(const Tensor<T>& x) {
  return make_result<T>("sin", xt::sin(x.value()), x,
                        [](BackwardContext<T>& c) { c.add(0, mul(c.grad(), cos(c.input(0)))); });
}

template <class T>
Tensor<T> cos(const Tensor<T>& x) {
  return make_result<T>("cos", xt::cos(x.value()), x, [](BackwardContext<T>& c) {
    c.add(0, neg(mul(c.grad(), sin(c.input(0)))));
  });
}

namespace detail {

// The backward of tanh as an op of its own, so that a first-order sweep makes one array
// instead of four. y = g (1 - s^2) for s = tanh(x).
// dg = g' (1 - s^2) (the same op again), ds = -2 g' g s.
template <class T>
Tensor<T> tanh_backward(const Tensor<T>& g, const Tensor<T>& s) {
  return make_result<T>("tanh_backward",
                        map_binary("tanh_backward", g.value(), s.value(),
                                   [](T dy, T y) { return dy * (T(1) - y * y); }),
                        g, s,
                        [](BackwardContext<T>& c) {
                          const auto gg = c.grad();
                          const auto g = c.input(0);
                          const auto s = c.input(1);
                          c.add(0, tanh_backward(gg, s));
                          if (c.needs(1)) c.add(1, affine(mul(mul(gg, g), s), -2));
                        });
}

// The backward of sigmoid as an op of its own. y = g s (1 - s) for s = sigmoid(x).
// dg = g' s (1 - s) (the same op again), ds = g' g (1 - 2 s).
template <class T>
Tensor<T> sigmoid_backward(const Tensor<T>& g, const Tensor<T>& s) {
  return make_result<T>("sigmoid_backward",
                        map_binary("sigmoid_backward", g.value(), s.value(),
                                   [](T dy, T y) { return dy * y * (T(1) - y); }),
                        g, s,
                        [](BackwardContext<T>& c) {
                          const auto gg = c.grad();
                          const auto g = c.input(0);
                          const auto s = c.input(1);
                          c.add(0, sigmoid_backward(gg, s));
                          if (c.needs(1)) c.add(1, mul(mul(gg, g), affine(s, -2, 1)));
                        });
}

// y = g where mask is nonzero, else exactly 0: the backward of ops that are flat on part of
// their domain (relu, clamp). A product g * mask would turn an infinite g there into NaN,
// where PyTorch passes 0. mask is a constant; dg = pass_where(g', mask) (the same op again).
template <class T>
Tensor<T> pass_where(const Tensor<T>& g, const Tensor<T>& mask) {
  return make_result<T>("pass_where",
                        map_binary("pass_where", g.value(), mask.value(),
                                   [](T dy, T m) { return m != T(0) ? dy : T(0); }),
                        g, mask,
                        [](BackwardContext<T>& c) { c.add(0, pass_where(c.grad(), c.input(1))); });
}


// The backward of relu as an op of its own: one pass over g and x, where a mask array and
// pass_where took two and an extra array. y = g where x > 0, else exactly 0 (an infinite g
// included, as PyTorch). dg = relu_backward(g', x) (the same op again); x gets no gradient,
// the op being flat in x wherever it is differentiable.
template <class T>
Tensor<T> relu_backward(const Tensor<T>& g, const Tensor<T>& x) {
  return make_result<T>("relu_backward",
                        map_binary("relu_backward", g.value(), x.value(),
                                   [](T dy, T v) { return v > T(0) ? dy : T(0); }),
                        g, x,
                        [](BackwardContext<T>& c) { c.add(0, relu_backward(c.grad(), c.input(1))); });
}

}  // namespace detail

template <class T>
Tensor<T> tanh(const Tensor<T>& x) {
  return make_result<T>("tanh", map_unary(x.value(), [](T v) { return std::tanh(v); }), x, [](BackwardContext<T>& c) {
    c.add(0, detail::tanh_backward(c.grad(), c.output()));
  });
}

namespace {
// 1 / (1 + e^-x) for x >= 0 and e^x / (1 + e^x) below, so e^|x| never overflows.
template <class T>
T stable_sigmoid(T v) {
  if (v >= 0) return T(1) / (T(1) + std::exp(-v));
  const T e = std::exp(v);
  return e / (T(1) + e);
}
}  // namespace

template <class T>
Tensor<T> sigmoid(const Tensor<T>& x) {
  return make_result<T>("sigmoid", map_unary(x.value(), stable_sigmoid<T>), x, [](BackwardContext<T>& c) {
    c.add(0, detail::sigmoid_backward(c.grad(), c.output()));
  });
}

template <class T>
Tensor<T> relu(const Tensor<T>& x) {
  // max(v, 0) as xtensor's maximum computes it: a NaN gives 0.
  return make_result<T>("relu", map_unary(x.value(), [](T v) { return v > T(0) ? v : T(0); }), x,
                        [](BackwardContext<T>& c) { c.add(0, detail::relu_backward(c.grad(), c.input(0))); });
}

template <class T>
Tensor<T> leaky_relu(const Tensor<T>& x, double slope) {
  Attrs attrs;
  attrs.scalar = slope;
  const T s = static_cast<T>(slope);
  return make_result<T>(
      "leaky_relu", xt::where(x.value() > T(0), x.value(), s * x.value()), x,
      [](BackwardContext<T>& c) {
        const T s = static_cast<T>(c.attrs().scalar);
        const auto& v = c.input(0).value();
        c.add(0, mul(c.grad(), constant<T>(xt::where(v > T(0), T(1), s))));
      },
      std::move(attrs));
}

template <class T>
Tensor<T> softplus(const Tensor<T>& x) {
  const auto& v = x.value();
  return make_result<T>("softplus", xt::maximum(v, T(0)) + xt::log1p(xt::exp(-xt::abs(v))), x,
                        [](BackwardContext<T>& c) {
                          c.add(0, mul(c.grad(), sigmoid(c.input(0))));
                        });
}

template <class T>
Tensor<T> clamp(const Tensor<T>& x, double lo, double hi) {
  if (!(lo <= hi)) {
    throw ValueError("clamp: the lower bound " + std::to_string(lo) +
                     " is above the upper bound " + std::to_string(hi));
  }
  const T l = static_cast<T>(lo);
  const T h = static_cast<T>(hi);
  return make_result<T>("clamp", xt::clip(x.value(), l, h), x, [](BackwardContext<T>& c) {
    // The result equals x exactly where x was inside [lo, hi], bounds included.
    const auto& v = c.input(0).value();
    const auto& y = c.output().value();
    c.add(0, detail::pass_where(c.grad(), constant<T>(xt::cast<T>(xt::equal(v, y)))));
  });
}

#define TAPEGRAD_INSTANTIATE(T)                                                   \
  template Tensor<T> add(const Tensor<T>&, const Tensor<T>&);                     \
  template Tensor<T> sub(const Tensor<T>&, const Tensor<T>&);                     \
  template Tensor<T> mul(const Tensor<T>&, const Tensor<T>&);                     \
  template Tensor<T> div(const Tensor<T>&, const Tensor<T>&);                     \
  template Tensor<T> div(const Tensor<T>&, double);                               \
  template Tensor<T> div(double, const Tensor<T>&);                               \
  template Tensor<T> maximum(const Tensor<T>&, const Tensor<T>&);                 \
  template Tensor<T> minimum(const Tensor<T>&, const Tensor<T>&);                 \
  template Tensor<T> neg(const Tensor<T>&);                                       \
  template Tensor<T> affine(const Tensor<T>&, double, double);                    \
  template Tensor<T> pow(const Tensor<T>&, double);                               \
  template Tensor<T> exp(const Tensor<T>&);                                       \
  template Tensor<T> log(const Tensor<T>&);                                       \
  template Tensor<T> sqrt(const Tensor<T>&);                                      \
  template Tensor<T> abs(const Tensor<T>&);                                       \
  template Tensor<T> square(const Tensor<T>&);                                    \
  template Tensor<T> sin(const Tensor<T>&);                                       \
  template Tensor<T> cos(const Tensor<T>&);                                       \
  template Tensor<T> tanh(const Tensor<T>&);                                      \
  template Tensor<T> sigmoid(const Tensor<T>&);                                   \
  template Tensor<T> relu(const Tensor<T>&);                                      \
  template Tensor<T> leaky_relu(const Tensor<T>&, double);                        \
  template Tensor<T> softplus(const Tensor<T>&);                                  \
  template Tensor<T> clamp(const Tensor<T>&, double, double);

TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad

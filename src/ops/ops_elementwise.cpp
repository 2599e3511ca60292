// Elementwise ops, one block each (see ops/op.hpp): the function of one element, then the
// backward rule. Their documentation is in tapegrad/ops.hpp.
#include <algorithm>
#include <cmath>
#include <string>
#include <xtensor/xmath.hpp>
#include <xtensor/xoperation.hpp>

#include "ops/op.hpp"
#include "tapegrad/ops.hpp"

namespace tapegrad {

using detail::BackwardContext;
using detail::Binary;
using detail::constant;
using detail::Gradients;
using detail::Unary;

namespace detail {
// The backward ops, defined below with the others; declared here for the rules before them.
template <class T>
Tensor<T> tanh_backward(const Tensor<T>& g, const Tensor<T>& s);
template <class T>
Tensor<T> sigmoid_backward(const Tensor<T>& g, const Tensor<T>& s);
template <class T>
Tensor<T> relu_backward(const Tensor<T>& g, const Tensor<T>& x);
template <class T>
Tensor<T> leaky_relu_backward(const Tensor<T>& g, const Tensor<T>& x, double slope);
template <class T>
Tensor<T> clamp_backward(const Tensor<T>& g, const Tensor<T>& x, double lo, double hi);
template <class T>
Tensor<T> gelu_backward(const Tensor<T>& g, const Tensor<T>& x);
template <class T>
Tensor<T> elu_backward(const Tensor<T>& g, const Tensor<T>& x, double alpha);
template <class T>
Tensor<T> sign(const Tensor<T>& x);
template <class T>
Tensor<T> max_share(const Tensor<T>& a, const Tensor<T>& b);
template <class T>
Tensor<T> min_share(const Tensor<T>& a, const Tensor<T>& b);
}  // namespace detail

// ---- two operands (broadcasting: each gradient is summed back to its input's shape) ----

namespace {
// y = a + b.  da = g, db = g.
struct Add : Binary<Add> {
  static constexpr const char* name = "add";
  template <class T>
  static T f(T a, T b) {
    return a + b;
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    Gradients<T> d;
    if (c.needs(0)) d[0] = sum_to(c.grad(), c.input(0).shape());
    if (c.needs(1)) d[1] = sum_to(c.grad(), c.input(1).shape());
    return d;
  }
};
}  // namespace
TAPEGRAD_BINARY_OP(add, Add)

namespace {
// y = a - b.  da = g, db = -g.
struct Sub : Binary<Sub> {
  static constexpr const char* name = "sub";
  template <class T>
  static T f(T a, T b) {
    return a - b;
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    Gradients<T> d;
    if (c.needs(0)) d[0] = sum_to(c.grad(), c.input(0).shape());
    if (c.needs(1)) d[1] = sum_to(neg(c.grad()), c.input(1).shape());
    return d;
  }
};
}  // namespace
TAPEGRAD_BINARY_OP(sub, Sub)

namespace {
// y = a b.  da = g b, db = g a.
struct Mul : Binary<Mul> {
  static constexpr const char* name = "mul";
  template <class T>
  static T f(T a, T b) {
    return a * b;
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    const auto a = c.input(0);
    const auto b = c.input(1);
    Gradients<T> d;
    if (c.needs(0)) d[0] = sum_to(mul(c.grad(), b), a.shape());
    if (c.needs(1)) d[1] = sum_to(mul(c.grad(), a), b.shape());
    return d;
  }
};
}  // namespace
TAPEGRAD_BINARY_OP(mul, Mul)

namespace {
// y = a / b.  da = g / b, db = -g y / b.
struct Div : Binary<Div> {
  static constexpr const char* name = "div";
  template <class T>
  static T f(T a, T b) {
    return a / b;
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    const auto b = c.input(1);
    Gradients<T> d;
    if (c.needs(0)) d[0] = sum_to(div(c.grad(), b), c.input(0).shape());
    if (c.needs(1)) d[1] = sum_to(neg(div(mul(c.grad(), c.output()), b)), b.shape());
    return d;
  }
};
}  // namespace
TAPEGRAD_BINARY_OP(div, Div)

namespace {
// The rule of maximum (larger) and minimum: `share` is a's weight in the gradient, 1 where a
// wins, 0 where b wins, 1/2 on ties (an op, so that it follows the inputs' values).
template <class T>
Gradients<T> extremum_backward(const BackwardContext<T>& c, bool larger) {
  const auto g = c.grad();
  const auto a = c.input(0);
  const auto b = c.input(1);
  const auto share = larger ? detail::max_share(a, b) : detail::min_share(a, b);
  Gradients<T> d;
  if (c.needs(0)) d[0] = sum_to(mul(g, share), a.shape());
  if (c.needs(1)) d[1] = sum_to(sub(g, mul(g, share)), b.shape());
  return d;
}
}  // namespace

namespace {
// y = max(a, b).  da = g where a > b, db = g where b > a; ties split g in half.
struct Maximum : Binary<Maximum> {
  static constexpr const char* name = "maximum";
  template <class T>
  static T f(T a, T b) {
    return a < b ? b : a;
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    return extremum_backward(c, true);
  }
};
}  // namespace
TAPEGRAD_BINARY_OP(maximum, Maximum)

namespace {
// y = min(a, b).  da = g where a < b, db = g where b < a; ties split g in half.
struct Minimum : Binary<Minimum> {
  static constexpr const char* name = "minimum";
  template <class T>
  static T f(T a, T b) {
    return b < a ? b : a;
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    return extremum_backward(c, false);
  }
};
}  // namespace
TAPEGRAD_BINARY_OP(minimum, Minimum)

// ---- one operand and a number ----

namespace {
// y = x / s for a number s (recorded as 'div').  dx = g / s.
struct DivByNumber : Unary<DivByNumber> {
  static constexpr const char* name = "div";
  struct Attrs {
    double divisor;
  };
  template <class T>
  static T f(T x, const Attrs& a) {
    return x / static_cast<T>(a.divisor);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& a) {
    return div(c.grad(), a.divisor);
  }
};
}  // namespace
TAPEGRAD_REGISTER_OP(DivByNumber)

template <class T>
Tensor<T> div(const Tensor<T>& x, double s) {
  return detail::apply<DivByNumber>({s}, x);
}

namespace {
// y = s / x for a number s (recorded as 'div').  dx = -g y / x.
struct NumberDivBy : Unary<NumberDivBy> {
  static constexpr const char* name = "div";
  struct Attrs {
    double dividend;
  };
  template <class T>
  static T f(T x, const Attrs& a) {
    return static_cast<T>(a.dividend) / x;
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs&) {
    return neg(div(mul(c.grad(), c.output()), c.input(0)));
  }
};
}  // namespace
TAPEGRAD_REGISTER_OP(NumberDivBy)

template <class T>
Tensor<T> div(double s, const Tensor<T>& x) {
  return detail::apply<NumberDivBy>({s}, x);
}

namespace {
// y = scale x + shift.  dx = scale g.
struct Affine : Unary<Affine> {
  static constexpr const char* name = "affine";
  struct Attrs {
    double scale, shift;
  };
  template <class T>
  static T f(T x, const Attrs& a) {
    return static_cast<T>(a.scale) * x + static_cast<T>(a.shift);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& a) {
    return affine(c.grad(), a.scale);
  }
};
}  // namespace
TAPEGRAD_REGISTER_OP(Affine)

template <class T>
Tensor<T> affine(const Tensor<T>& x, double scale, double shift) {
  return detail::apply<Affine>({scale, shift}, x);
}

namespace {
// y = x^p.  dx = g p x^(p-1), and 0 for p = 0.
struct Pow : Unary<Pow> {
  static constexpr const char* name = "pow";
  struct Attrs {
    double p;
  };
  template <class T>
  static T f(T x, const Attrs& a) {
    return std::pow(x, static_cast<T>(a.p));
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& a) {
    const auto x = c.input(0);
    if (a.p == 0) return constant<T>(xt::zeros<T>(x.shape()));
    return mul(c.grad(), affine(pow(x, a.p - 1), a.p));
  }
};
}  // namespace
TAPEGRAD_REGISTER_OP(Pow)

template <class T>
Tensor<T> pow(const Tensor<T>& x, double p) {
  return detail::apply<Pow>({p}, x);
}

namespace {
// y = x clamped to [lo, hi].  dx = g where lo <= x <= hi, else exactly 0.
struct Clamp : Unary<Clamp> {
  static constexpr const char* name = "clamp";
  struct Attrs {
    double lo, hi;
  };
  template <class T>
  static T f(T x, const Attrs& a) {  // as xt::clip: a NaN stays NaN
    const T lo = static_cast<T>(a.lo), hi = static_cast<T>(a.hi);
    return x < lo ? lo : (hi < x ? hi : x);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& a) {
    return detail::clamp_backward(c.grad(), c.input(0), a.lo, a.hi);
  }
};
}  // namespace
TAPEGRAD_REGISTER_OP(Clamp)

template <class T>
Tensor<T> clamp(const Tensor<T>& x, double lo, double hi) {
  if (!(lo <= hi)) {
    throw ValueError("clamp: the lower bound " + std::to_string(lo) + " is above the upper bound " +
                     std::to_string(hi));
  }
  return detail::apply<Clamp>({lo, hi}, x);
}

namespace {
// y = x for x > 0, else slope x.  dx = g where x > 0, slope g elsewhere.
struct LeakyRelu : Unary<LeakyRelu> {
  static constexpr const char* name = "leaky_relu";
  struct Attrs {
    double slope;
  };
  template <class T>
  static T f(T x, const Attrs& a) {
    return x > T(0) ? x : static_cast<T>(a.slope) * x;
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& a) {
    return detail::leaky_relu_backward(c.grad(), c.input(0), a.slope);
  }
};
}  // namespace
TAPEGRAD_REGISTER_OP(LeakyRelu)

template <class T>
Tensor<T> leaky_relu(const Tensor<T>& x, double slope) {
  return detail::apply<LeakyRelu>({slope}, x);
}

namespace {
// y = x for x > 0, else alpha (e^x - 1) (expm1: exact near 0, -alpha for large negative x).
// dx = g for x > 0, g alpha e^x elsewhere.
struct Elu : Unary<Elu> {
  static constexpr const char* name = "elu";
  struct Attrs {
    double alpha;
  };
  template <class T>
  static T f(T x, const Attrs& a) {
    return x > T(0) ? x : static_cast<T>(a.alpha) * std::expm1(x);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& a) {
    return detail::elu_backward(c.grad(), c.input(0), a.alpha);
  }
};
}  // namespace
TAPEGRAD_REGISTER_OP(Elu)

template <class T>
Tensor<T> elu(const Tensor<T>& x, double alpha) {
  return detail::apply<Elu>({alpha}, x);
}

// ---- backward ops: the backward of an activation as one op, so that a first-order sweep
// makes one array instead of three or four. Each is its own backward in g. ----

namespace detail {

namespace {
// y = g (1 - s^2) for s = tanh(x).  dg = g' (1 - s^2), ds = -2 g' g s.
struct TanhBackward : Binary<TanhBackward> {
  static constexpr const char* name = "tanh_backward";
  template <class T>
  static T f(T g, T s) {
    return g * (T(1) - s * s);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    const auto g = c.input(0);
    const auto s = c.input(1);
    Gradients<T> d;
    if (c.needs(0)) d[0] = tanh_backward(c.grad(), s);
    if (c.needs(1)) d[1] = affine(mul(mul(c.grad(), g), s), -2);
    return d;
  }
};
}  // namespace
TAPEGRAD_BINARY_OP(tanh_backward, TanhBackward)

namespace {
// y = g s (1 - s) for s = sigmoid(x).  dg = g' s (1 - s), ds = g' g (1 - 2 s).
struct SigmoidBackward : Binary<SigmoidBackward> {
  static constexpr const char* name = "sigmoid_backward";
  template <class T>
  static T f(T g, T s) {
    return g * s * (T(1) - s);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    const auto g = c.input(0);
    const auto s = c.input(1);
    Gradients<T> d;
    if (c.needs(0)) d[0] = sigmoid_backward(c.grad(), s);
    if (c.needs(1)) d[1] = mul(mul(c.grad(), g), affine(s, -2, 1));
    return d;
  }
};
}  // namespace
TAPEGRAD_BINARY_OP(sigmoid_backward, SigmoidBackward)

namespace {
// y = g where lo <= x <= hi, else exactly 0 (an infinite g included, as PyTorch): the
// backward of clamp. dg = clamp_backward(g', x); x gets none, the op being flat in x wherever
// it is differentiable.
struct ClampBackward : Binary<ClampBackward> {
  static constexpr const char* name = "clamp_backward";
  struct Attrs {
    double lo, hi;
  };
  template <class T>
  static T f(T g, T x, const Attrs& a) {
    // Where clamp returned x itself, bounds included (as comparing x with clamp's result).
    return x == Clamp::f(x, Clamp::Attrs{a.lo, a.hi}) ? g : T(0);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& a) {
    Gradients<T> d;
    if (c.needs(0)) d[0] = clamp_backward(c.grad(), c.input(1), a.lo, a.hi);
    return d;
  }
};
}  // namespace
TAPEGRAD_REGISTER_OP(ClampBackward)

template <class T>
Tensor<T> clamp_backward(const Tensor<T>& g, const Tensor<T>& x, double lo, double hi) {
  return apply<ClampBackward>({lo, hi}, g, x);
}

namespace {
// y = g where x > 0, slope g elsewhere: the backward of leaky_relu. dg = the same op on g';
// x gets none.
struct LeakyReluBackward : Binary<LeakyReluBackward> {
  static constexpr const char* name = "leaky_relu_backward";
  struct Attrs {
    double slope;
  };
  template <class T>
  static T f(T g, T x, const Attrs& a) {
    return g * (x > T(0) ? T(1) : static_cast<T>(a.slope));
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& a) {
    Gradients<T> d;
    if (c.needs(0)) d[0] = leaky_relu_backward(c.grad(), c.input(1), a.slope);
    return d;
  }
};
}  // namespace
TAPEGRAD_REGISTER_OP(LeakyReluBackward)

template <class T>
Tensor<T> leaky_relu_backward(const Tensor<T>& g, const Tensor<T>& x, double slope) {
  return apply<LeakyReluBackward>({slope}, g, x);
}

namespace {
// y = g (Phi(x) + x phi(x)), the backward of gelu (Phi, phi: the standard normal CDF and
// density). dg = gelu_backward(g', x); dx = g' g phi(x) (2 - x^2), in tensor ops, with x
// clamped to [-40, 40] there: phi is already 0 beyond (e^-800 underflows), and x^2 of a
// huge x would be Inf, making 0 Inf = NaN.
struct GeluBackward : Binary<GeluBackward> {
  static constexpr const char* name = "gelu_backward";
  template <class T>
  static T f(T g, T x) {
    const T cdf = T(0.5) * std::erfc(-x * T(0.70710678118654752440));         // 1 / sqrt(2)
    const T density = std::exp(T(-0.5) * x * x) * T(0.39894228040143267794);  // 1 / sqrt(2 pi)
    return g * (cdf + x * density);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    const auto g = c.input(0);
    const auto x = c.input(1);
    Gradients<T> d;
    if (c.needs(0)) d[0] = gelu_backward(c.grad(), x);
    if (c.needs(1)) {
      const auto x2 = square(clamp(x, -40, 40));
      const auto density = affine(exp(affine(x2, -0.5)), 0.39894228040143267794);
      d[1] = mul(mul(c.grad(), g), mul(density, affine(x2, -1, 2)));
    }
    return d;
  }
};
}  // namespace
TAPEGRAD_BINARY_OP(gelu_backward, GeluBackward)

namespace {
// y = g where x > 0, g alpha e^x elsewhere: the backward of elu. dg = the same op on g';
// dx = g' g alpha e^x where x < 0 and 0 elsewhere (at x = 0 too, as PyTorch), which is this
// op on g' g masked to x < 0 by relu_backward(g' g, -x).
struct EluBackward : Binary<EluBackward> {
  static constexpr const char* name = "elu_backward";
  struct Attrs {
    double alpha;
  };
  template <class T>
  static T f(T g, T x, const Attrs& a) {
    return x > T(0) ? g : g * (static_cast<T>(a.alpha) * std::exp(x));
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& a) {
    const auto x = c.input(1);
    Gradients<T> d;
    if (c.needs(0)) d[0] = elu_backward(c.grad(), x, a.alpha);
    if (c.needs(1)) {
      d[1] = elu_backward(relu_backward(mul(c.grad(), c.input(0)), neg(x)), x, a.alpha);
    }
    return d;
  }
};
}  // namespace
TAPEGRAD_REGISTER_OP(EluBackward)

template <class T>
Tensor<T> elu_backward(const Tensor<T>& g, const Tensor<T>& x, double alpha) {
  return apply<EluBackward>({alpha}, g, x);
}

// ---- masks: flat functions of their inputs (no gradient), the factors of piecewise rules.

namespace {
// y = the sign of x: -1, 0 (keeping the sign of a zero) or 1; NaN stays NaN (as xt::sign).
struct Sign : Unary<Sign> {
  static constexpr const char* name = "sign";
  template <class T>
  static T f(T x) {
    return std::isnan(x) ? x : x == 0 ? std::copysign(T(0), x) : std::copysign(T(1), x);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>&) {
    return {};
  }
};
}  // namespace
TAPEGRAD_UNARY_OP(sign, Sign)

namespace {
// y = 1 where a > b, 0 where a < b, 1/2 where they are equal (a NaN gives 0): a's share of
// the gradient of maximum(a, b).
struct MaxShare : Binary<MaxShare> {
  static constexpr const char* name = "max_share";
  template <class T>
  static T f(T a, T b) {
    return T(a > b) + T(0.5) * T(a == b);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>&) {
    return {};
  }
};
}  // namespace
TAPEGRAD_BINARY_OP(max_share, MaxShare)

namespace {
// y = 1 where a < b, 0 where a > b, 1/2 where they are equal: a's share of the gradient of
// minimum(a, b).
struct MinShare : Binary<MinShare> {
  static constexpr const char* name = "min_share";
  template <class T>
  static T f(T a, T b) {
    return T(a < b) + T(0.5) * T(a == b);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>&) {
    return {};
  }
};
}  // namespace
TAPEGRAD_BINARY_OP(min_share, MinShare)

namespace {
// y = g where x > 0, else exactly 0 (an infinite g included, as PyTorch): one pass over g
// and x.  dg = relu_backward(g', x); x gets none, the op being flat in x wherever it is
// differentiable.
struct ReluBackward : Binary<ReluBackward> {
  static constexpr const char* name = "relu_backward";
  template <class T>
  static T f(T g, T x) {
    return x > T(0) ? g : T(0);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    return relu_backward(c.grad(), c.input(1));
  }
};
}  // namespace
TAPEGRAD_BINARY_OP(relu_backward, ReluBackward)

}  // namespace detail

// ---- one operand ----

namespace {
// y = -x.  dx = -g.
struct Neg : Unary<Neg> {
  static constexpr const char* name = "neg";
  template <class T>
  static T f(T x) {
    return -x;
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    return neg(c.grad());
  }
};
}  // namespace
TAPEGRAD_UNARY_OP(neg, Neg)

namespace {
// y = e^x.  dx = g y.
struct Exp : Unary<Exp> {
  static constexpr const char* name = "exp";
  template <class T>
  static T f(T x) {
    return std::exp(x);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    return mul(c.grad(), c.output());
  }
};
}  // namespace
TAPEGRAD_UNARY_OP(exp, Exp)

namespace {
// y = ln x.  dx = g / x.
struct Log : Unary<Log> {
  static constexpr const char* name = "log";
  template <class T>
  static T f(T x) {
    return std::log(x);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    return div(c.grad(), c.input(0));
  }
};
}  // namespace
TAPEGRAD_UNARY_OP(log, Log)

namespace {
// y = sqrt(x).  dx = g / (2 y).
struct Sqrt : Unary<Sqrt> {
  static constexpr const char* name = "sqrt";
  template <class T>
  static T f(T x) {
    return std::sqrt(x);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    return affine(div(c.grad(), c.output()), 0.5);
  }
};
}  // namespace
TAPEGRAD_UNARY_OP(sqrt, Sqrt)

namespace {
// y = |x|.  dx = g sign(x) (0 at x = 0).
struct Abs : Unary<Abs> {
  static constexpr const char* name = "abs";
  template <class T>
  static T f(T x) {
    return std::abs(x);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    return mul(c.grad(), detail::sign(c.input(0)));
  }
};
}  // namespace
TAPEGRAD_UNARY_OP(abs, Abs)

namespace {
// y = x^2.  dx = 2 g x.
struct Square : Unary<Square> {
  static constexpr const char* name = "square";
  template <class T>
  static T f(T x) {
    return x * x;
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    return affine(mul(c.grad(), c.input(0)), 2);
  }
};
}  // namespace
TAPEGRAD_UNARY_OP(square, Square)

namespace {
// y = sin x.  dx = g cos x.
struct Sin : Unary<Sin> {
  static constexpr const char* name = "sin";
  template <class T>
  static T f(T x) {
    return std::sin(x);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    return mul(c.grad(), cos(c.input(0)));
  }
};
}  // namespace
TAPEGRAD_UNARY_OP(sin, Sin)

namespace {
// y = cos x.  dx = -g sin x.
struct Cos : Unary<Cos> {
  static constexpr const char* name = "cos";
  template <class T>
  static T f(T x) {
    return std::cos(x);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    return neg(mul(c.grad(), sin(c.input(0))));
  }
};
}  // namespace
TAPEGRAD_UNARY_OP(cos, Cos)

namespace {
// y = tanh x.  dx = g (1 - y^2).
struct Tanh : Unary<Tanh> {
  static constexpr const char* name = "tanh";
  template <class T>
  static T f(T x) {
    return std::tanh(x);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    return detail::tanh_backward(c.grad(), c.output());
  }
};
}  // namespace
TAPEGRAD_UNARY_OP(tanh, Tanh)

namespace {
// y = 1 / (1 + e^-x).  dx = g y (1 - y).
struct Sigmoid : Unary<Sigmoid> {
  static constexpr const char* name = "sigmoid";
  // 1 / (1 + e^-x) for x >= 0 and e^x / (1 + e^x) below, so e^|x| never overflows; both
  // are (x >= 0 ? 1 : e) / (1 + e) with e = e^-|x|, a select instead of a branch that
  // mispredicts on inputs of either sign (the same numbers, to the bit).
  template <class T>
  static T f(T x) {
    const T e = std::exp(-std::abs(x));
    return (x >= 0 ? T(1) : e) / (T(1) + e);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    return detail::sigmoid_backward(c.grad(), c.output());
  }
};
}  // namespace
TAPEGRAD_UNARY_OP(sigmoid, Sigmoid)

namespace {
// y = max(x, 0) (a NaN gives 0, as xtensor's maximum).  dx = g where x > 0, else 0.
struct Relu : Unary<Relu> {
  static constexpr const char* name = "relu";
  template <class T>
  static T f(T x) {
    return x > T(0) ? x : T(0);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    return detail::relu_backward(c.grad(), c.input(0));
  }
};
}  // namespace
TAPEGRAD_UNARY_OP(relu, Relu)

namespace {
// y = ln(1 + e^x), as max(x, 0) + ln(1 + e^-|x|) so that e^x never overflows.
// dx = g sigmoid(x).
struct Softplus : Unary<Softplus> {
  static constexpr const char* name = "softplus";
  template <class T>
  static T f(T x) {
    return (x > T(0) ? x : T(0)) + std::log1p(std::exp(-std::abs(x)));
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    return mul(c.grad(), sigmoid(c.input(0)));
  }
};
}  // namespace
TAPEGRAD_UNARY_OP(softplus, Softplus)

namespace {
// y = erf(x).  dx = g 2/sqrt(pi) e^{-x^2}.
struct Erf : Unary<Erf> {
  static constexpr const char* name = "erf";
  template <class T>
  static T f(T x) {
    return std::erf(x);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    return mul(c.grad(),
               affine(exp(neg(square(c.input(0)))), 1.12837916709551257390));  // 2 / sqrt(pi)
  }
};
}  // namespace
TAPEGRAD_UNARY_OP(erf, Erf)

namespace {
// y = x Phi(x), Phi(x) = erfc(-x / sqrt(2)) / 2: erfc rather than 1 + erf(x / sqrt(2)), which
// cancels to 0 for x below about -8 (and gelu's tail, x Phi(x), is tiny there, not 0).
// dx = gelu_backward(g, x) = g (Phi(x) + x phi(x)).
struct Gelu : Unary<Gelu> {
  static constexpr const char* name = "gelu";
  template <class T>
  static T f(T x) {
    return x * (T(0.5) * std::erfc(-x * T(0.70710678118654752440)));
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    return detail::gelu_backward(c.grad(), c.input(0));
  }
};
}  // namespace
TAPEGRAD_UNARY_OP(gelu, Gelu)

namespace {
// y = x sigmoid(x) (sigmoid's overflow-free form).  dx = g (s + x s (1 - s)), s = sigmoid(x),
// where x s (1 - s) is sigmoid_backward(x, s): the op that makes g s (1 - s), x in g's place.
struct Silu : Unary<Silu> {
  static constexpr const char* name = "silu";
  template <class T>
  static T f(T x) {
    return x * Sigmoid::f(x);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    const auto x = c.input(0);
    const auto s = sigmoid(x);
    return mul(c.grad(), add(s, detail::sigmoid_backward(x, s)));
  }
};
}  // namespace
TAPEGRAD_UNARY_OP(silu, Silu)

#define TAPEGRAD_INSTANTIATE(T)                                \
  template Tensor<T> div(const Tensor<T>&, double);            \
  template Tensor<T> div(double, const Tensor<T>&);            \
  template Tensor<T> affine(const Tensor<T>&, double, double); \
  template Tensor<T> pow(const Tensor<T>&, double);            \
  template Tensor<T> clamp(const Tensor<T>&, double, double);  \
  template Tensor<T> leaky_relu(const Tensor<T>&, double);     \
  template Tensor<T> elu(const Tensor<T>&, double);

TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad

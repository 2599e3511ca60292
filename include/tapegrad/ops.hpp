// The differentiable operations. Each primitive's derivative is written beside it here;
// forward and backward live side by side in src/ops_*.cpp. Composites (sub, div, mean,
// matmul's 1-d cases) are built from primitives and have no backward of their own.
//
// Notation: x, a, b inputs; y the result; g the gradient flowing into y (same shape as y).
// Binary elementwise ops broadcast like NumPy; the gradient of a broadcast input is summed
// back to its shape. Every op throws ShapeError naming itself and the shapes on mismatch.
#pragma once

#include <cstddef>
#include <type_traits>
#include <vector>

#include "tapegrad/tensor.hpp"

namespace tapegrad {

/// Axes of a reduction; negative values count from the end, as in NumPy.
using Axes = std::vector<std::ptrdiff_t>;

// ---- elementwise, two operands (broadcasting) ----

/// y = a + b.  da = g, db = g (each summed to its input's shape).
template <class T> Tensor<T> add(const Tensor<T>& a, const Tensor<T>& b);
/// y = a - b.  da = g, db = -g. (A primitive rather than a + (-b): it is on every loss.)
template <class T> Tensor<T> sub(const Tensor<T>& a, const Tensor<T>& b);
/// y = a * b.  da = g b, db = g a.
template <class T> Tensor<T> mul(const Tensor<T>& a, const Tensor<T>& b);
/// y = a / b, composed as a * b^-1.
template <class T> Tensor<T> div(const Tensor<T>& a, const Tensor<T>& b);
/// y = max(a, b).  da = g where a > b, db = g where b > a; ties split the gradient in half.
template <class T> Tensor<T> maximum(const Tensor<T>& a, const Tensor<T>& b);
/// y = min(a, b).  da = g where a < b, db = g where b < a; ties split the gradient in half.
template <class T> Tensor<T> minimum(const Tensor<T>& a, const Tensor<T>& b);

// ---- elementwise, one operand ----

/// y = -x.  dx = -g.
template <class T> Tensor<T> neg(const Tensor<T>& x);
/// y = scale x + shift for plain numbers scale and shift.  dx = scale g.
/// The operators with a scalar operand (x * 2, 1 - x, x / 4, ...) are this op, so a scalar
/// costs no tensor of its own.
template <class T> Tensor<T> affine(const Tensor<T>& x, double scale, double shift = 0);
/// y = x^p for a constant exponent p.  dx = g p x^(p-1).
template <class T> Tensor<T> pow(const Tensor<T>& x, double p);
/// y = e^x.  dx = g y.
template <class T> Tensor<T> exp(const Tensor<T>& x);
/// y = ln x.  dx = g / x.
template <class T> Tensor<T> log(const Tensor<T>& x);
/// y = sqrt(x).  dx = g / (2 y).
template <class T> Tensor<T> sqrt(const Tensor<T>& x);
/// y = |x|.  dx = g sign(x) (0 at x = 0).
template <class T> Tensor<T> abs(const Tensor<T>& x);
/// y = x^2.  dx = 2 g x.
template <class T> Tensor<T> square(const Tensor<T>& x);
/// y = sin x.  dx = g cos x.
template <class T> Tensor<T> sin(const Tensor<T>& x);
/// y = cos x.  dx = -g sin x.
template <class T> Tensor<T> cos(const Tensor<T>& x);
/// y = tanh x.  dx = g (1 - y^2).
template <class T> Tensor<T> tanh(const Tensor<T>& x);
/// y = 1 / (1 + e^-x), computed without overflow for large |x|.  dx = g y (1 - y).
template <class T> Tensor<T> sigmoid(const Tensor<T>& x);
/// y = max(x, 0).  dx = g where x > 0, else 0.
template <class T> Tensor<T> relu(const Tensor<T>& x);
/// y = x for x > 0, slope x otherwise.  dx = g for x > 0, slope g otherwise.
template <class T> Tensor<T> leaky_relu(const Tensor<T>& x, double slope = 0.01);
/// y = ln(1 + e^x), computed as max(x, 0) + ln(1 + e^-|x|).  dx = g sigmoid(x).
template <class T> Tensor<T> softplus(const Tensor<T>& x);
/// y = min(max(x, lo), hi).  dx = g where lo <= x <= hi, else 0. Throws ValueError if lo > hi.
template <class T> Tensor<T> clamp(const Tensor<T>& x, double lo, double hi);

// ---- reductions ----

/// y = sum of all elements (shape `()`).  dx = g broadcast to x's shape.
template <class T> Tensor<T> sum(const Tensor<T>& x);
/// Sum along the given axes; keepdims keeps them with extent 1.  dx = g broadcast back.
template <class T> Tensor<T> sum(const Tensor<T>& x, const Axes& axes, bool keepdims = false);
/// Mean of all elements, composed as sum(x) / size.
template <class T> Tensor<T> mean(const Tensor<T>& x);
/// Mean along axes, composed as sum(x, axes) / count.
template <class T> Tensor<T> mean(const Tensor<T>& x, const Axes& axes, bool keepdims = false);
/// Maximum along one axis.  dx = g at the first position of the maximum, 0 elsewhere.
template <class T> Tensor<T> max(const Tensor<T>& x, std::ptrdiff_t axis, bool keepdims = false);
/// y = ln sum exp(x) along an axis, computed as m + ln sum exp(x - m), m = max.
/// dx = g exp(x - y) (the softmax of x).
template <class T>
Tensor<T> logsumexp(const Tensor<T>& x, std::ptrdiff_t axis = -1, bool keepdims = false);

// ---- softmax ----

/// y = exp(x - logsumexp(x)) along an axis.  dx = y (g - sum(g y)) along that axis.
template <class T> Tensor<T> softmax(const Tensor<T>& x, std::ptrdiff_t axis = -1);
/// y = x - logsumexp(x) along an axis.  dx = g - softmax(x) sum(g) along that axis.
template <class T> Tensor<T> log_softmax(const Tensor<T>& x, std::ptrdiff_t axis = -1);

// ---- linear algebra ----

/// Matrix product through xt::linalg::dot (OpenBLAS). (m,k) x (k,n) -> (m,n);
/// (k,) x (k,n) -> (n,); (m,k) x (k,) -> (m,); (k,) x (k,) -> ().
/// For 2-d operands: da = g b^T, db = a^T g; the 1-d cases reshape around that.
template <class T> Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b);

// ---- shape ----

/// Reverses the axes (the matrix transpose for 2-d).  dx = transpose(g).
template <class T> Tensor<T> transpose(const Tensor<T>& x);
/// Permutes the axes: y's axis i is x's axis perm[i].  dx = g permuted by the inverse.
template <class T> Tensor<T> transpose(const Tensor<T>& x, const std::vector<std::size_t>& perm);
/// Same elements (row-major order), new shape of the same size.  dx = reshape(g, x's shape).
template <class T> Tensor<T> reshape(const Tensor<T>& x, const Shape& shape);
/// Broadcasts x to a shape, NumPy rules.  dx = sum_to(g, x's shape).
template <class T> Tensor<T> broadcast_to(const Tensor<T>& x, const Shape& shape);
/// Sums x down to a shape it broadcasts to (the adjoint of broadcast_to).
/// dx = broadcast_to(g, x's shape).
template <class T> Tensor<T> sum_to(const Tensor<T>& x, const Shape& shape);
/// Joins tensors along an existing axis; all other extents must agree.
/// Each input's gradient is its slice of g.
template <class T> Tensor<T> concat(const std::vector<Tensor<T>>& parts, std::ptrdiff_t axis = 0);
/// The slice [start, start + length) of x along an axis.  dx = g placed in zeros.
template <class T>
Tensor<T> narrow(const Tensor<T>& x, std::ptrdiff_t axis, std::size_t start, std::size_t length);
/// Rows of x (axis 0) picked by index, repeats allowed: y[i] = x[indices[i]].
/// dx = zeros with g's rows added at their indices (a repeated row gets the sum).
template <class T>
Tensor<T> index_select(const Tensor<T>& x, const std::vector<std::size_t>& indices);
/// The adjoint of index_select: zeros of shape (rows, x's other extents) with x's rows added
/// at the given indices.  dx = index_select(g, indices).
template <class T>
Tensor<T> index_add(const Tensor<T>& x, const std::vector<std::size_t>& indices, std::size_t rows);

// ---- operators, with scalars on either side (converted once to a constant tensor) ----

template <class T> Tensor<T> operator-(const Tensor<T>& x) { return neg(x); }

#define TAPEGRAD_BINARY_OPERATOR(symbol, function)                                        \
  template <class T>                                                                      \
  Tensor<T> operator symbol(const Tensor<T>& a, const Tensor<T>& b) {                     \
    return function(a, b);                                                                \
  }                                                                                       \
  template <class A, class B, class = std::enable_if_t<!std::is_same_v<A, B>>>            \
  Tensor<A> operator symbol(const Tensor<A>&, const Tensor<B>&) {                         \
    static_assert(std::is_same_v<A, B>,                                                   \
                  "tapegrad: cannot mix Tensor<float> and Tensor<double> in one op; "     \
                  "build both operands in one element type");                             \
    return {};                                                                            \
  }

TAPEGRAD_BINARY_OPERATOR(+, add)
TAPEGRAD_BINARY_OPERATOR(-, sub)
TAPEGRAD_BINARY_OPERATOR(*, mul)
TAPEGRAD_BINARY_OPERATOR(/, div)

template <class S>
using EnableIfScalar = std::enable_if_t<std::is_arithmetic_v<S>>;

// Scalars fold into affine(x, scale, shift).
template <class T, class S, class = EnableIfScalar<S>>
Tensor<T> operator+(const Tensor<T>& x, S s) { return affine(x, 1.0, static_cast<double>(s)); }
template <class T, class S, class = EnableIfScalar<S>>
Tensor<T> operator+(S s, const Tensor<T>& x) { return affine(x, 1.0, static_cast<double>(s)); }
template <class T, class S, class = EnableIfScalar<S>>
Tensor<T> operator-(const Tensor<T>& x, S s) { return affine(x, 1.0, -static_cast<double>(s)); }
template <class T, class S, class = EnableIfScalar<S>>
Tensor<T> operator-(S s, const Tensor<T>& x) { return affine(x, -1.0, static_cast<double>(s)); }
template <class T, class S, class = EnableIfScalar<S>>
Tensor<T> operator*(const Tensor<T>& x, S s) { return affine(x, static_cast<double>(s)); }
template <class T, class S, class = EnableIfScalar<S>>
Tensor<T> operator*(S s, const Tensor<T>& x) { return affine(x, static_cast<double>(s)); }
template <class T, class S, class = EnableIfScalar<S>>
Tensor<T> operator/(const Tensor<T>& x, S s) { return affine(x, 1.0 / static_cast<double>(s)); }
/// s / x = s x^-1.
template <class T, class S, class = EnableIfScalar<S>>
Tensor<T> operator/(S s, const Tensor<T>& x) { return affine(pow(x, -1.0), static_cast<double>(s)); }

#undef TAPEGRAD_BINARY_OPERATOR

}  // namespace tapegrad

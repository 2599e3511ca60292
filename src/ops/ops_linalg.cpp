// matmul: one 2-d primitive on OpenBLAS (the GEMM that xt::linalg::dot calls, with its
// transpose flags); the 1-d cases reshape around it.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>

// xblas.hpp declares the CBLAS functions itself (xflens/cxxblas/drivers/cblas.h), so OpenBLAS's
// cblas.h, whose enums clash with those, is not included.
#include <xtensor-blas/xblas.hpp>

#include "ops/op.hpp"
#include "tapegrad/ops.hpp"

namespace tapegrad {

using detail::BackwardContext;
using detail::Gradients;
using detail::Inputs;

namespace {

// The extents of op(a) op(b) (m x k times k x n), where op transposes when its flag is set:
// a is (m, k), or (k, m) when ta; b is (k, n), or (n, k) when tb.
struct Product {
  std::uint32_t m, n, k;
  bool ta, tb;
};

template <class T>
Product product_of(const xt::xarray<T>& a, const xt::xarray<T>& b, bool ta, bool tb) {
  return {static_cast<std::uint32_t>(ta ? a.shape()[1] : a.shape()[0]),
          static_cast<std::uint32_t>(tb ? b.shape()[0] : b.shape()[1]),
          static_cast<std::uint32_t>(ta ? a.shape()[0] : a.shape()[1]), ta, tb};
}

// op(a) op(b) written to `out` (m x n): BLAS reads the operand transposed, so the backward
// pass never copies a transpose. With `add`, out += alpha op(a) op(b) instead (BLAS's
// beta = 1: a weight update folded into its gradient's product, compile_sgd_step); without it
// alpha is 1. (matmul's shape() keeps every extent below 2^31.)
template <class T>
void gemm(const T* a, const T* b, const Product& p, T* out, bool add = false, T alpha = T(1)) {
  const T beta = add ? T(1) : T(0);
  const std::size_t m = p.m, n = p.n, k = p.k;
  if (m == 0 || n == 0 || k == 0) {  // BLAS rejects empty strides
    if (!add) std::fill(out, out + m * n, T(0));
    return;
  }
  // Row-major leading dimensions: the stored row length of each operand.
  const auto lda = static_cast<int>(p.ta ? m : k);
  const auto ldb = static_cast<int>(p.tb ? k : n);
  if (m == 1 || n == 1) {
    // A row times a matrix, or a matrix times a column: GEMV reads the matrix where it lies,
    // where GEMM would first copy (pack) it; at batch 1 and width 1024 that copy was most of
    // the step. The vector operand is contiguous whatever its transpose flag (an extent of 1).
    const bool row = m == 1;
    const T* matrix = row ? b : a;
    const T* vector = row ? a : b;
    // Row: y = op(b)^T x, so b is read transposed unless tb already says so. Column: y = op(a) x.
    const bool transpose = row ? !p.tb : p.ta;
    const int cols = row ? ldb : lda;
    const int rows = static_cast<int>(row ? (p.tb ? n : k) : (p.ta ? k : m));
    const auto flag = transpose ? CblasTrans : CblasNoTrans;
    if constexpr (std::is_same_v<T, double>) {
      cblas_dgemv(CblasRowMajor, flag, rows, cols, alpha, matrix, cols, vector, 1, beta, out, 1);
    } else {
      cblas_sgemv(CblasRowMajor, flag, rows, cols, alpha, matrix, cols, vector, 1, beta, out, 1);
    }
    return;
  }
  if (k == 1) {
    // An outer product (the weight gradient at batch 1): both operands are contiguous
    // vectors. One write-only pass; GER would add to a zeroed array (two passes).
    for (std::size_t i = 0; i < m; ++i) {
      T* row = out + i * n;
      const T xi = a[i];
      if (add) {
        for (std::size_t j = 0; j < n; ++j) row[j] += alpha * (xi * b[j]);
      } else {
        for (std::size_t j = 0; j < n; ++j) row[j] = xi * b[j];
      }
    }
    return;
  }
  // CBLAS straight away: xt::blas::gemm's own checks and stride set-up cost ~400
  // instructions a call, as much as BLAS itself spends on XOR's 4x10 products.
  const auto fa = p.ta ? CblasTrans : CblasNoTrans;
  const auto fb = p.tb ? CblasTrans : CblasNoTrans;
  const auto mi = static_cast<int>(m), ni = static_cast<int>(n), ki = static_cast<int>(k);
  if constexpr (std::is_same_v<T, double>) {
    cblas_dgemm(CblasRowMajor, fa, fb, mi, ni, ki, alpha, a, lda, b, ldb, beta, out, ni);
  } else {
    cblas_sgemm(CblasRowMajor, fa, fb, mi, ni, ki, alpha, a, lda, b, ldb, beta, out, ni);
  }
}

template <class T>
Tensor<T> matmul_2d(const Tensor<T>& a, const Tensor<T>& b, bool ta, bool tb);

namespace {
// y = op_a(a) op_b(b) for 2-d a and b, op transposing when its flag is set.
// With A = op_a(a), B = op_b(b): dA = g B^T and dB = A^T g, written back through the flags:
//   da = g B^T        (ta = 0)  or  B g^T  (ta = 1)
//   db = A^T g        (tb = 0)  or  g^T A  (tb = 1)
struct MatMul {
  static constexpr const char* name = "matmul";
  struct Attrs { bool ta, tb; };
  template <class T>
  static const Shape& shape(const Inputs<T>& in, const Attrs& at, Shape& out) {
    const auto& a = in[0].shape();
    const auto& b = in[1].shape();
    const std::size_t m = at.ta ? a[1] : a[0];
    const std::size_t k = at.ta ? a[0] : a[1];
    const std::size_t n = at.tb ? b[0] : b[1];
    checked_size("matmul", {m, n});  // (m, 0) x (0, n) can ask for more than fits
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX) {
      throw ShapeError("matmul: an extent of " + shape_to_string(a) + " x " + shape_to_string(b) +
                       " exceeds 2^31 - 1, the largest BLAS takes");
    }
    return out = Shape{m, n};
  }
  template <class T>
  static void forward(const Inputs<T>& in, const Attrs& at, xt::xarray<T>& out) {
    gemm(in[0].data(), in[1].data(), product_of(in[0], in[1], at.ta, at.tb), out.data());
  }
  // A compiled step runs the product on its operands' raw buffers, without the record: the
  // extents are taken once, at compile time.
  using Raw = Product;
  template <class T>
  static std::optional<Raw> raw(const Inputs<T>& in, const Attrs& at, const Shape&) {
    return product_of(in[0], in[1], at.ta, at.tb);
  }
  template <class T>
  static void raw_forward(const T* a, const T* b, T* y, const Raw& p) { gemm(a, b, p, y); }
  // into += alpha y, without y: a weight update folded into the product that makes its
  // gradient (compile_sgd_step).
  template <class T>
  static void raw_add(const T* a, const T* b, T* into, const Raw& p, T alpha) { gemm(a, b, p, into, true, alpha); }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& at) {
    const auto g = c.grad();
    const auto a = c.input(0);
    const auto b = c.input(1);
    Gradients<T> d;
    if (c.needs(0)) d[0] = at.ta ? matmul_2d(b, g, at.tb, true) : matmul_2d(g, b, false, !at.tb);
    if (c.needs(1)) d[1] = at.tb ? matmul_2d(g, a, true, at.ta) : matmul_2d(a, g, !at.ta, false);
    return d;
  }
};
}  // namespace

template <class T>
Tensor<T> matmul_2d(const Tensor<T>& a, const Tensor<T>& b, bool ta, bool tb) {
  return detail::apply<MatMul>({ta, tb}, a, b);
}

}  // namespace

template <class T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b) {
  const auto da = a.dim();
  const auto db = b.dim();
  if (da < 1 || da > 2 || db < 1 || db > 2) {
    throw ShapeError("matmul: operands must be 1-d or 2-d, got " + shape_to_string(a.shape()) +
                     " x " + shape_to_string(b.shape()));
  }
  const std::size_t inner_a = a.shape()[da - 1];
  const std::size_t inner_b = b.shape()[0];
  if (inner_a != inner_b) {
    throw ShapeError("matmul: inner dimensions differ: " + shape_to_string(a.shape()) + " x " +
                     shape_to_string(b.shape()));
  }
  if (da == 2 && db == 2) return matmul_2d(a, b, false, false);
  const Tensor<T> a2 = da == 2 ? a : reshape(a, Shape{1, inner_a});
  const Tensor<T> b2 = db == 2 ? b : reshape(b, Shape{inner_b, 1});
  Shape result;
  if (da == 2) result.push_back(a.shape()[0]);
  if (db == 2) result.push_back(b.shape()[1]);
  return reshape(matmul_2d(a2, b2, false, false), result);
}

TAPEGRAD_REGISTER_OP(MatMul)

template Tensor<float> matmul(const Tensor<float>&, const Tensor<float>&);
template Tensor<double> matmul(const Tensor<double>&, const Tensor<double>&);

}  // namespace tapegrad

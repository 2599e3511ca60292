// matmul: one 2-d primitive on OpenBLAS (the GEMM that xt::linalg::dot calls, with its
// transpose flags); the 1-d cases reshape around it. Batched products (3-d and more) are a
// second primitive, a loop of those GEMMs over the broadcast batch axes, except a batch of
// matrices times one matrix, which is one 2-d product over all the batch's rows.
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
  struct Attrs {
    bool ta, tb;
  };
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
  static void raw_forward(const T* a, const T* b, T* y, const Raw& p) {
    gemm(a, b, p, y);
  }
  // into += alpha y, without y: a weight update folded into the product that makes its
  // gradient (compile_sgd_step).
  template <class T>
  static void raw_add(const T* a, const T* b, T* into, const Raw& p, T alpha) {
    gemm(a, b, p, into, true, alpha);
  }
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

template <class T>
Tensor<T> matmul_batched(const Tensor<T>& a, const Tensor<T>& b, bool ta, bool tb);

namespace {
// The leading (batch) axes of a shape of at least 2 axes.
Shape batch_axes(const Shape& s) { return Shape(s.begin(), s.end() - 2); }

// The extents of op(a) op(b) for the matrices in the last two axes of a and b.
Product last_two_product(const Shape& a, const Shape& b, bool ta, bool tb) {
  const std::size_t ra = a[a.size() - 2], ca = a.back(), rb = b[b.size() - 2], cb = b.back();
  return {static_cast<std::uint32_t>(ta ? ca : ra), static_cast<std::uint32_t>(tb ? rb : cb),
          static_cast<std::uint32_t>(ta ? ra : ca), ta, tb};
}

// y[i] = op_a(a[i]) op_b(b[i]) for every index i of the batch axes, a and b of 2 or more axes
// whose batch axes (all but the last two) broadcast to y's. The rule is MatMul's for each i,
// each gradient then summed over the batch axes its input was broadcast along:
//   da = sum_to(g B^T)  (ta = 0)  or  sum_to(B g^T)  (ta = 1)
//   db = sum_to(A^T g)  (tb = 0)  or  sum_to(g^T A)  (tb = 1)
struct BatchedMatMul {
  static constexpr const char* name = "batched_matmul";
  struct Attrs {
    bool ta, tb;
  };
  template <class T>
  static const Shape& shape(const Inputs<T>& in, const Attrs& at, Shape& out) {
    const auto& a = in[0].shape();
    const auto& b = in[1].shape();
    const std::size_t ra = a[a.size() - 2], ca = a.back(), rb = b[b.size() - 2], cb = b.back();
    out = detail::broadcast_shapes("matmul", batch_axes(a), batch_axes(b));
    out.push_back(at.ta ? ca : ra);
    out.push_back(at.tb ? rb : cb);
    checked_size("matmul", out);
    if (std::max({ra, ca, rb, cb}) > INT_MAX) {
      throw ShapeError("matmul: an extent of " + shape_to_string(a) + " x " + shape_to_string(b) +
                       " exceeds 2^31 - 1, the largest BLAS takes");
    }
    return out;
  }
  template <class T>
  static void forward(const Inputs<T>& in, const Attrs& at, xt::xarray<T>& out) {
    const auto& as = in[0].shape();
    const auto& bs = in[1].shape();
    const Product p = last_two_product(as, bs, at.ta, at.tb);
    const Shape batch = batch_axes(out.shape());
    // Matrix strides (0 along a broadcast axis): the batch axes read as arrays of matrices.
    const std::size_t size_a = as[as.size() - 2] * as.back(),
                      size_b = bs[bs.size() - 2] * bs.back();
    const std::size_t size_y = std::size_t{p.m} * p.n;
    const T* a = in[0].data();
    const T* b = in[1].data();
    T* y = out.data();
    detail::walk(batch, detail::broadcast_strides(batch_axes(as), batch),
                 detail::broadcast_strides(batch_axes(bs), batch),
                 [&](std::size_t i, std::size_t ia, std::size_t ib) {
                   gemm(a + ia * size_a, b + ib * size_b, p, y + i * size_y);
                 });
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& at) {
    const auto g = c.grad();
    const auto a = c.input(0);
    const auto b = c.input(1);
    Gradients<T> d;
    if (c.needs(0)) {
      d[0] = sum_to(at.ta ? matmul_batched(b, g, at.tb, true) : matmul_batched(g, b, false, !at.tb),
                    a.shape());
    }
    if (c.needs(1)) {
      d[1] = sum_to(at.tb ? matmul_batched(g, a, true, at.ta) : matmul_batched(a, g, !at.ta, false),
                    b.shape());
    }
    return d;
  }
};
}  // namespace

// op_a(a) op_b(b) for a and b of 2 or more axes whose batch axes broadcast (unchecked: the
// callers have checked, or are rules whose shapes fit by construction).
template <class T>
Tensor<T> matmul_batched(const Tensor<T>& a, const Tensor<T>& b, bool ta, bool tb) {
  if (a.dim() == 2 && b.dim() == 2) return matmul_2d(a, b, ta, tb);
  const Shape& as = a.shape();
  const Shape& bs = b.shape();
  const std::size_t k = as.back();
  // Products of extents of empty operands can wrap around (to 1, or below INT_MAX): only
  // those that fit are taken; BatchedMatMul checks the result's shape otherwise.
  std::size_t rows = 0, b_batch = 0;
  const bool fit = detail::product_fits(as, 0, as.size() - 1, rows) &&
                   detail::product_fits(bs, 0, bs.size() - 2, b_batch);
  const bool one_b = fit && b_batch == 1 && bs.size() > 1;
  if (one_b && !ta && rows <= INT_MAX) {
    // A batch of matrices times one matrix (b 2-d, or of batch extents 1): a's stacked rows
    // are one (rows, k) matrix, so one GEMM, and the backward's db = a^T g is one GEMM over
    // all the batch too (no sum_to). y's batch axes are a's, after any more of b's (of 1).
    Shape y(std::max(as.size(), bs.size()) - as.size(), 1);
    y.insert(y.end(), as.begin(), as.end() - 1);
    y.push_back(tb ? bs[bs.size() - 2] : bs.back());
    const auto matrix = reshape(b, Shape{bs[bs.size() - 2], bs.back()});
    return reshape(matmul_2d(reshape(a, Shape{rows, k}), matrix, false, tb), y);
  }
  return detail::apply<BatchedMatMul>({ta, tb}, a, b);
}

}  // namespace

template <class T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b) {
  const auto da = a.dim();
  const auto db = b.dim();
  if (da < 1 || db < 1) {
    throw ShapeError("matmul: operands must be at least 1-d, got " + shape_to_string(a.shape()) +
                     " x " + shape_to_string(b.shape()));
  }
  const std::size_t inner_a = a.shape()[da - 1];
  const std::size_t inner_b = b.shape()[db == 1 ? 0 : db - 2];
  if (inner_a != inner_b) {
    throw ShapeError("matmul: inner dimensions differ: " + shape_to_string(a.shape()) + " x " +
                     shape_to_string(b.shape()));
  }
  if (da == 2 && db == 2) return matmul_2d(a, b, false, false);
  // A 1-d a is a row (1, k), a 1-d b a column (k, 1); that axis is removed from the result.
  const Tensor<T> a2 = da == 1 ? reshape(a, Shape{1, inner_a}) : a;
  const Tensor<T> b2 = db == 1 ? reshape(b, Shape{inner_b, 1}) : b;
  if (da <= 2 && db <= 2) {
    Shape result;
    if (da == 2) result.push_back(a.shape()[0]);
    if (db == 2) result.push_back(b.shape()[1]);
    return reshape(matmul_2d(a2, b2, false, false), result);
  }
  const Shape batch_a = batch_axes(a2.shape()), batch_b = batch_axes(b2.shape());
  for (std::size_t i = 1; i <= std::min(batch_a.size(), batch_b.size()); ++i) {
    const std::size_t ea = batch_a[batch_a.size() - i], eb = batch_b[batch_b.size() - i];
    if (ea != eb && ea != 1 && eb != 1) {
      throw ShapeError("matmul: batch dimensions " + shape_to_string(batch_a) + " and " +
                       shape_to_string(batch_b) + " do not broadcast: " +
                       shape_to_string(a.shape()) + " x " + shape_to_string(b.shape()));
    }
  }
  const auto y = matmul_batched(a2, b2, false, false);
  Shape result = y.shape();
  if (db == 1) result.pop_back();
  if (da == 1) result.erase(result.end() - (db == 1 ? 1 : 2));
  return reshape(y, result);
}

TAPEGRAD_REGISTER_OP(MatMul)
TAPEGRAD_REGISTER_OP(BatchedMatMul)

template Tensor<float> matmul(const Tensor<float>&, const Tensor<float>&);
template Tensor<double> matmul(const Tensor<double>&, const Tensor<double>&);

}  // namespace tapegrad

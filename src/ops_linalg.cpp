// matmul: one 2-d primitive on OpenBLAS; the 1-d cases reshape around it.
#include <string>

#include <xtensor-blas/xlinalg.hpp>

#include "autograd.hpp"
#include "tapegrad/ops.hpp"

namespace tapegrad {

using detail::BackwardContext;
using detail::make_result;

namespace {

// (m, k) x (k, n) -> (m, n).  da = g b^T, db = a^T g.
template <class T>
Tensor<T> matmul_2d(const Tensor<T>& a, const Tensor<T>& b) {
  return make_result<T>("matmul", xt::xarray<T>(xt::linalg::dot(a.value(), b.value())), a, b,
                        [](BackwardContext<T>& c) {
                          const auto g = c.grad();
                          if (c.needs(0)) c.add(0, matmul_2d(g, transpose(c.input(1))));
                          if (c.needs(1)) c.add(1, matmul_2d(transpose(c.input(0)), g));
                        });
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
  if (da == 2 && db == 2) return matmul_2d(a, b);
  const Tensor<T> a2 = da == 2 ? a : reshape(a, Shape{1, inner_a});
  const Tensor<T> b2 = db == 2 ? b : reshape(b, Shape{inner_b, 1});
  Shape result;
  if (da == 2) result.push_back(a.shape()[0]);
  if (db == 2) result.push_back(b.shape()[1]);
  return reshape(matmul_2d(a2, b2), result);
}

template Tensor<float> matmul(const Tensor<float>&, const Tensor<float>&);
template Tensor<double> matmul(const Tensor<double>&, const Tensor<double>&);

}  // namespace tapegrad

// backward(create_graph): the backward pass is recorded, so gradients can be differentiated.
#include <cmath>

#include "helpers.hpp"

using namespace tapegrad;

TEST_CASE("d2/dx2 of x^3 is 6x") {
  for (double x0 : {-1.5, 0.5, 2.0}) {
    Tensor<double> x(x0, requires_grad);
    Tape tape;
    const auto y = x * x * x;
    y.backward(create_graph);
    const auto dy = x.grad_tensor();  // 3 x^2, itself recorded
    CHECK(dy.item() == doctest::Approx(3 * x0 * x0));
    CHECK(dy.requires_grad());
    x.zero_grad();
    dy.backward();
    CHECK(x.grad()() == doctest::Approx(6 * x0));
  }
}

namespace {

// Seed 002's two-dimensional function (spec D5).
Tensor<double> bump(const Tensor<double>& x, const Tensor<double>& y) {
  return -0.5 * (exp(-square(x) - square(y)) - 2.0 * exp(-square(x - 1.0) - square(y - 1.0)));
}

std::array<double, 2> tape_gradient(double x0, double y0) {
  Tensor<double> x(x0, requires_grad), y(y0, requires_grad);
  Tape tape;
  bump(x, y).backward();
  return {x.grad()(), y.grad()()};
}

}  // namespace

TEST_CASE("the Hessian of seed 002's 2-d function matches finite differences of its gradient") {
  for (auto [x0, y0] : {std::pair{0.3, -0.2}, std::pair{1.0, 1.0}, std::pair{-0.7, 0.9}}) {
    Tensor<double> x(x0, requires_grad), y(y0, requires_grad);
    Tape tape;
    bump(x, y).backward(create_graph);
    const std::array<Tensor<double>, 2> gradient{x.grad_tensor(), y.grad_tensor()};
    const double h = 1e-5;
    for (int row = 0; row < 2; ++row) {
      x.zero_grad();
      y.zero_grad();
      gradient[row].backward(retain_graph);  // both rows sweep the same records
      const double hxx = x.grad()(), hxy = y.grad()();
      const auto gpx = tape_gradient(x0 + h, y0), gmx = tape_gradient(x0 - h, y0);
      const auto gpy = tape_gradient(x0, y0 + h), gmy = tape_gradient(x0, y0 - h);
      const double fd_x = (gpx[row] - gmx[row]) / (2 * h);
      const double fd_y = (gpy[row] - gmy[row]) / (2 * h);
      INFO("row ", row, " at (", x0, ", ", y0, ")");
      CHECK(hxx == doctest::Approx(fd_x).epsilon(1e-7).scale(1));
      CHECK(hxy == doctest::Approx(fd_y).epsilon(1e-7).scale(1));
    }
  }
}

namespace {

// Gradient of f at x0 from the tape (first order only).
template <class F>
xt::xarray<double> gradient_at(const F& f, const xt::xarray<double>& x0) {
  Tensor<double> x(x0, requires_grad);
  Tape tape;
  f(x).backward();
  return x.grad();
}

// Every row of the Hessian from backward(create_graph) against central differences of the
// tape's gradient.
template <class F>
void check_hessian(const F& f, const xt::xarray<double>& x0) {
  Tensor<double> x(x0, requires_grad);
  Tape tape;
  f(x).backward(create_graph);
  const auto gradient = x.grad_tensor();
  const double h = 1e-5;
  for (std::size_t i = 0; i < x0.size(); ++i) {
    x.zero_grad();
    xt::xarray<double> pick = xt::zeros<double>(x0.shape());
    pick.data()[i] = 1;
    // Row i: d(df/dx_i)/dx; every row sweeps the gradient's records again.
    sum(gradient * Tensor<double>(pick)).backward(retain_graph);
    xt::xarray<double> plus = x0, minus = x0;
    plus.data()[i] += h;
    minus.data()[i] -= h;
    const xt::xarray<double> column = (gradient_at(f, plus) - gradient_at(f, minus)) / (2 * h);
    for (std::size_t j = 0; j < x0.size(); ++j) {
      INFO("H(", i, ", ", j, ")");
      CHECK(x.grad().data()[j] == doctest::Approx(column.data()[j]).epsilon(1e-6).scale(1));
    }
  }
}

}  // namespace

TEST_CASE("second derivatives through matmul, softmax and the nonlinearities") {
  const Tensor<double> w(test::random_array({3, 4}, 12));
  check_hessian(
      [&](const Tensor<double>& v) {
        const auto x = reshape(v, Shape{2, 3});
        const auto z = matmul(x, w);
        return sum(log_softmax(tanh(z), -1) * sigmoid(z) +
                   softplus(maximum(z, Tensor<double>(0.1))) / sqrt(exp(z) + 1.0)) +
               logsumexp(reshape(z, Shape{8})) + sum(softmax(z, 0) * cos(z));
      },
      test::random_array({6}, 11));
}

TEST_CASE("second derivatives through the shape ops and pow") {
  check_hessian(
      [](const Tensor<double>& v) {
        const auto m = reshape(v, Shape{2, 2});
        const auto joined = concat(std::vector{m, transpose(m)}, 1);
        const auto rows = index_select(joined, {1, 0, 1});
        return sum(pow(square(rows) + 1.0, 1.5)) + mean(broadcast_to(v, Shape{3, 4}) * v) +
               sum(max(rows, 1)) + sum(sin(narrow(joined, 1, 1, 2)));
      },
      test::random_array({4}, 21));
}

TEST_CASE("second derivatives through the piecewise ops: relu, clamp, leaky_relu, abs, minimum") {
  // Away from the kinks, each piece is smooth; the backward of relu and clamp (pass_where)
  // is itself differentiated here, since their gradients are multiplied by functions of v.
  check_hessian(
      [](const Tensor<double>& v) {
        return sum(relu(v) * square(v) + clamp(v, -0.5, 0.5) * exp(v) +
                   leaky_relu(v, 0.2) * sin(v) + abs(v) * v +
                   minimum(v, Tensor<double>(0.3)) * cos(v));
      },
      test::random_array({6}, 31));
}

TEST_CASE("second derivatives through div: tensor by tensor (broadcast), by a number, a number by a tensor") {
  // x split into a (2, 2) numerator and a (2,) denominator kept away from 0.
  check_hessian(
      [](const Tensor<double>& v) {
        const auto a = reshape(narrow(v, 0, 0, 4), Shape{2, 2});
        const auto b = narrow(v, 0, 4, 2) + 3.0;
        return sum(a / b) + sum(square(a) / 2.5) + sum(1.5 / b);
      },
      test::random_array({6}, 41, 0.5, 1.5));
}

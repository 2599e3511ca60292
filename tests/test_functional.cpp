// functional: grad, value_and_grad, jacobian, hessian and hvp against closed forms.
#include <cmath>

#include "helpers.hpp"

using namespace tapegrad;
using Array = xt::xarray<double>;

TEST_CASE("grad and value_and_grad of closed-form functions") {
  const Tensor<double> x(Array{0.5, -1.0, 2.0});
  auto f = [](const Tensor<double>& v) { return sum(v * v * v); };  // gradient 3 v^2
  const auto g = functional::grad(f, x);
  CHECK(g.value() == Array{0.75, 3.0, 12.0});
  const auto [value, gradient] = functional::value_and_grad(f, x);
  CHECK(value.item() == doctest::Approx(0.125 - 1 + 8));
  CHECK(gradient.value() == g.value());
  CHECK_FALSE(x.has_grad());  // the caller's tensor is untouched

  auto h = [](const std::vector<Tensor<double>>& v) { return sum(v[0] * exp(v[1])); };
  const auto grads =
      functional::grad(h, std::vector{Tensor<double>(Array{2.0}), Tensor<double>(Array{0.0})});
  CHECK(grads[0].value()(0) == 1.0);  // e^0
  CHECK(grads[1].value()(0) == 2.0);  // 2 e^0
  CHECK_THROWS_AS(functional::grad([](const Tensor<double>& v) { return v; }, x), ShapeError);
}

TEST_CASE("jacobian of a vector function") {
  // f(x) = (x0^2, x0 x1, sin x1): J = [[2 x0, 0], [x1, x0], [0, cos x1]]
  auto f = [](const Tensor<double>& x) {
    const auto x0 = narrow(x, 0, 0, 1), x1 = narrow(x, 0, 1, 1);
    return concat(std::vector{square(x0), x0 * x1, sin(x1)}, 0);
  };
  const auto j = functional::jacobian(f, Tensor<double>(Array{3.0, 0.5}));
  REQUIRE(j.shape() == Shape{3, 2});
  CHECK(j.value()(0, 0) == 6.0);
  CHECK(j.value()(0, 1) == 0.0);
  CHECK(j.value()(1, 0) == 0.5);
  CHECK(j.value()(1, 1) == 3.0);
  CHECK(j.value()(2, 0) == 0.0);
  CHECK(j.value()(2, 1) == doctest::Approx(std::cos(0.5)));

  // Several inputs: y = A x for a (2, 3) A: dy/dA[i, j, k, l] = delta_ik x_l, dy/dx = A.
  const Array a = {{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}};
  const Array x = {1.0, -1.0, 2.0};
  const auto js =
      functional::jacobian([](const std::vector<Tensor<double>>& v) { return matmul(v[0], v[1]); },
                           std::vector{Tensor<double>(a), Tensor<double>(x)});
  CHECK(js[0].shape() == Shape{2, 2, 3});
  CHECK(js[0].value()(1, 1, 2) == 2.0);
  CHECK(js[0].value()(0, 1, 2) == 0.0);
  CHECK(js[1].value() == a);
}

TEST_CASE("hessian of closed-form functions, and hvp equals hessian times v") {
  // f = x0^2 x1 + exp(x1) x2 + x2^3
  auto f = [](const Tensor<double>& x) {
    const auto x0 = narrow(x, 0, 0, 1), x1 = narrow(x, 0, 1, 1), x2 = narrow(x, 0, 2, 1);
    return sum(square(x0) * x1 + exp(x1) * x2 + pow(x2, 3.0));
  };
  const Array at = {1.5, 0.3, -0.7};
  const auto h = functional::hessian(f, Tensor<double>(at));
  const double e = std::exp(0.3);
  const Array expected = {{2 * 0.3, 2 * 1.5, 0.0}, {2 * 1.5, e * -0.7, e}, {0.0, e, 6 * -0.7}};
  REQUIRE(h.shape() == Shape{3, 3});
  for (std::size_t i = 0; i < 9; ++i)
    CHECK(h.value().data()[i] == doctest::Approx(expected.data()[i]));

  const Array v = {0.2, -1.0, 0.5};
  const auto hv = functional::hvp(f, Tensor<double>(at), Tensor<double>(v));
  for (std::size_t i = 0; i < 3; ++i) {
    double row = 0;
    for (std::size_t j = 0; j < 3; ++j) row += expected(i, j) * v(j);
    CHECK(hv.value()(i) == doctest::Approx(row));
  }
  CHECK_THROWS_AS(functional::hvp(f, Tensor<double>(at), Tensor<double>(Array{1.0})), ShapeError);
  // A linear function has a zero Hessian.
  const auto zero =
      functional::hessian([](const Tensor<double>& x) { return sum(x * 2.0); }, Tensor<double>(at));
  CHECK(xt::amax(xt::abs(zero.value()))() == 0);
}

TEST_CASE(
    "the helpers touch nothing of the caller's: no gradient in its parameters, no record used up") {
  // As PyTorch's autograd.grad: f may read the caller's parameter w and a result w2 of the
  // caller's tape; only f's own argument is differentiated.
  Tensor<double> w(Array{1.5, -2.0}, requires_grad);
  Tape outer;
  const auto w2 = w * w;
  const Tensor<double> x(Array{0.5, 3.0});
  const auto f = [&](const Tensor<double>& v) { return sum(v * w2 + v * v * w); };
  const Array df = w2.value() + 2.0 * x.value() * w.value();
  CHECK(functional::grad(f, x).value() == df);
  CHECK(functional::value_and_grad(f, x).second.value() == df);
  CHECK(functional::jacobian([&](const Tensor<double>& v) { return v * w2; }, x).value() ==
        Array{{2.25, 0.0}, {0.0, 4.0}});
  CHECK(functional::hessian(f, x).value() == Array{{3.0, 0.0}, {0.0, -4.0}});
  CHECK(functional::hvp(f, x, Tensor<double>(Array{1.0, 1.0})).value() == Array{3.0, -4.0});
  const auto report = gradcheck<double>([&](const auto& in) { return f(in[0]); }, {x});
  CHECK(report.passed);
  const auto hand =
      check_hand_gradient<double>([&](const std::vector<Tensor<double>>& in) { return f(in[0]); },
                                  [&](const std::vector<Array>& at) {
                                    return std::vector<Array>{w2.value() + 2.0 * at[0] * w.value()};
                                  },
                                  {{x.value()}});
  CHECK(hand.passed);
  CHECK_FALSE(w.has_grad());
  // The caller's own backward still works, once.
  sum(w2).backward();
  CHECK(w.grad() == Array{3.0, -4.0});
}

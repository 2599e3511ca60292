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

namespace {

// f(x) = sum(x^3 sin x) and its derivatives, elementwise, derived by hand:
// f' = 3x^2 sin x + x^3 cos x, f'' = 6x sin x + 6x^2 cos x - x^3 sin x,
// f''' = 6 sin x + 18x cos x - 9x^2 sin x - x^3 cos x,
// f'''' = 24 cos x - 36x sin x - 12x^2 cos x + x^3 sin x.
Tensor<double> cubic_sine(const Tensor<double>& x) { return sum(x * x * x * sin(x)); }
double cubic_sine_d1(double x) { return 3 * x * x * std::sin(x) + x * x * x * std::cos(x); }
double cubic_sine_d2(double x) {
  return 6 * x * std::sin(x) + 6 * x * x * std::cos(x) - x * x * x * std::sin(x);
}
double cubic_sine_d3(double x) {
  return 6 * std::sin(x) + 18 * x * std::cos(x) - 9 * x * x * std::sin(x) - x * x * x * std::cos(x);
}
double cubic_sine_d4(double x) {
  return 24 * std::cos(x) - 36 * x * std::sin(x) - 12 * x * x * std::cos(x) +
         x * x * x * std::sin(x);
}

const Array at3 = {0.7, -1.3, 2.1};

// A diagonal matrix with d(at3[i]) * scale[i] on its diagonal.
template <class D>
Array diagonal(D d, const Array& scale = Array{1.0, 1.0, 1.0}) {
  Array m = xt::zeros<double>({3, 3});
  for (std::size_t i = 0; i < 3; ++i) m(i, i) = d(at3(i)) * scale(i);
  return m;
}

void check_close(const Tensor<double>& got, const Array& expected) {
  REQUIRE(got.shape() == Shape(expected.shape().begin(), expected.shape().end()));
  for (std::size_t k = 0; k < expected.size(); ++k) {
    INFO("element ", k);
    CHECK(got.value().data()[k] == doctest::Approx(expected.data()[k]).epsilon(1e-12).scale(1));
  }
}

// F(a, b) = (a . b)^2 + sum(a^3 b), derived by hand (s = a . b):
// dF/da_i = 2 s b_i + 3 a_i^2 b_i,  d2F/da_i da_j = 2 b_i b_j + 6 a_i b_i [i = j],
// d2F/da_i db_j = 2 a_j b_i + (2 s + 3 a_i^2) [i = j] (not symmetric).
Tensor<double> two_vectors(const std::vector<Tensor<double>>& v) {
  return square(sum(v[0] * v[1])) + sum(v[0] * v[0] * v[0] * v[1]);
}
const Array a3 = {0.5, -1.0, 1.5}, b3 = {2.0, 0.3, -0.7};
Array two_vectors_aa() {
  Array h = xt::zeros<double>({3, 3});
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 3; ++j)
      h(i, j) = 2 * b3(i) * b3(j) + (i == j ? 6 * a3(i) * b3(i) : 0.0);
  return h;
}
Array two_vectors_ab() {
  const double s = xt::sum(a3 * b3)();
  Array h = xt::zeros<double>({3, 3});
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 3; ++j)
      h(i, j) = 2 * a3(j) * b3(i) + (i == j ? 2 * s + 3 * a3(i) * a3(i) : 0.0);
  return h;
}

}  // namespace

TEST_CASE("nested transforms: jacobian(grad(f)) is the Hessian, in every mode") {
  // It was a zero matrix: grad returned constants, so jacobian saw a constant function.
  const auto grad_f = [](const Tensor<double>& x) { return functional::grad(cubic_sine, x); };
  const Tensor<double> x(at3);
  for (auto mode : {functional::JacobianMode::Auto, functional::JacobianMode::Reverse,
                    functional::JacobianMode::Forward}) {
    INFO("mode ", static_cast<int>(mode));
    check_close(functional::jacobian(grad_f, x, mode), diagonal(cubic_sine_d2));
  }
  check_close(functional::hessian(cubic_sine, x), diagonal(cubic_sine_d2));
  CHECK_FALSE(x.has_grad());
}

TEST_CASE("nested transforms: grad(grad), hessian of jvp, hessian of hessian, grad of vjp") {
  const Tensor<double> x(at3);
  const Array c = {1.5, -0.5, 2.0};
  // grad of <grad f(x), c> = H c = f''(x) c.
  const auto first = [&](const Tensor<double>& v) {
    return sum(functional::grad(cubic_sine, v) * Tensor<double>(c));
  };
  {
    const Array expected = {cubic_sine_d2(at3(0)) * c(0), cubic_sine_d2(at3(1)) * c(1),
                            cubic_sine_d2(at3(2)) * c(2)};
    check_close(functional::grad(first, x), expected);
    // value_and_grad's value is connected too: grad of the inner value is f'.
    const auto value_of = [](const Tensor<double>& v) {
      return functional::value_and_grad(cubic_sine, v).first;
    };
    check_close(functional::grad(value_of, x),
                Array{cubic_sine_d1(at3(0)), cubic_sine_d1(at3(1)), cubic_sine_d1(at3(2))});
  }
  // hessian of the directional derivative jvp(f, x, c) = f'(x) . c: diag(f'''(x) c).
  const auto directional = [&](const Tensor<double>& v) {
    return functional::jvp(cubic_sine, v, Tensor<double>(c)).second;
  };
  check_close(functional::hessian(directional, x), diagonal(cubic_sine_d3, c));
  // hessian of the sum of the Hessian's elements, sum f''(x_i): diag(f'''').
  const auto hessian_sum = [](const Tensor<double>& v) {
    return sum(functional::hessian(cubic_sine, v));
  };
  check_close(functional::hessian(hessian_sum, x), diagonal(cubic_sine_d4));
  // hvp inside grad: grad of <H(x) c, 1> = f'''(x) c.
  const auto hvp_sum = [&](const Tensor<double>& v) {
    return sum(functional::hvp(cubic_sine, v, Tensor<double>(c)));
  };
  check_close(functional::grad(hvp_sum, x),
              Array{cubic_sine_d3(at3(0)) * c(0), cubic_sine_d3(at3(1)) * c(1),
                    cubic_sine_d3(at3(2)) * c(2)});
  // vjp inside grad: vjp(g, x, c) with g(x) = x^3 sin x elementwise is f'(x) c.
  const auto vjp_sum = [&](const Tensor<double>& v) {
    return sum(functional::vjp([](const Tensor<double>& u) { return u * u * u * sin(u); }, v,
                               Tensor<double>(c))
                   .second);
  };
  check_close(functional::grad(vjp_sum, x),
              Array{cubic_sine_d2(at3(0)) * c(0), cubic_sine_d2(at3(1)) * c(1),
                    cubic_sine_d2(at3(2)) * c(2)});
}

TEST_CASE("nested transforms of a non-symmetric function of two vectors") {
  const std::vector<Tensor<double>> ab = {Tensor<double>(a3), Tensor<double>(b3)};
  // d(dF/da)/da and d(dF/da)/db, both arguments differentiated by the outer jacobian.
  const auto grad_a = [](const std::vector<Tensor<double>>& v) {
    return functional::grad(two_vectors, v)[0];
  };
  for (auto mode : {functional::JacobianMode::Reverse, functional::JacobianMode::Forward}) {
    const auto j = functional::jacobian(grad_a, ab, mode);
    check_close(j[0], two_vectors_aa());
    check_close(j[1], two_vectors_ab());
  }
  // The inner grad differentiates a (a constant of the outer function) while b, the outer
  // argument, is read as a closure: the result still depends on b.
  const auto grad_a_of_b = [&](const Tensor<double>& b) {
    return functional::grad(
        [&](const Tensor<double>& a) {
          return two_vectors({a, b});
        },
        Tensor<double>(a3));
  };
  check_close(functional::jacobian(grad_a_of_b, Tensor<double>(b3)), two_vectors_ab());
  // d(dF/db)/da = (d2F/da db) transposed.
  const auto grad_b_of_a = [&](const Tensor<double>& a) {
    return functional::grad(
        [&](const Tensor<double>& b) {
          return two_vectors({a, b});
        },
        Tensor<double>(b3));
  };
  check_close(functional::jacobian(grad_b_of_a, Tensor<double>(a3)),
              Array(xt::transpose(two_vectors_ab())));
}

TEST_CASE("nested transforms leave the caller's parameters and records alone") {
  Tensor<double> w(Array{1.5, -2.0, 0.5}, requires_grad);
  Tape outer;
  const auto w2 = w * w;
  // f(x) = sum(w2 x^3 sin x): the Hessian is diag(w2 f'').
  const auto f = [&](const Tensor<double>& v) { return sum(w2 * v * v * v * sin(v)); };
  const auto j = functional::jacobian(
      [&](const Tensor<double>& v) { return functional::grad(f, v); }, Tensor<double>(at3));
  check_close(j, diagonal(cubic_sine_d2, w2.value()));
  CHECK_FALSE(w.has_grad());
  sum(w2).backward();  // the caller's records were not used up
  CHECK(w.grad() == Array{3.0, -4.0, 1.0});
}

TEST_CASE("a transform inside the caller's tape returns results connected to its arguments") {
  // x requires grad and a Tape is active: grad(f, x) is a function of x (as in JAX), so a
  // penalty on it can be differentiated; x's own gradient is not touched by grad itself.
  Tensor<double> x(at3, requires_grad);
  {
    Tape tape;
    const auto g = functional::grad(cubic_sine, x);
    CHECK_FALSE(x.has_grad());
    REQUIRE(g.requires_grad());
    sum(g).backward();
    CHECK(xt::allclose(x.grad(),
                       Array{cubic_sine_d2(at3(0)), cubic_sine_d2(at3(1)), cubic_sine_d2(at3(2))}));
  }
  // A gradient penalty on the data gradient, differentiated for the parameters the function
  // reads: h(x) = sum(w x^3), dh/dx = 3 w x^2, P = sum((dh/dx)^2), dP/dw = 18 w x^4. The data
  // x needs no gradient; w is a closure, not an argument.
  Tensor<double> w(Array{0.5, -1.0, 2.0}, requires_grad);
  const Tensor<double> data(at3);
  {
    Tape tape;
    const auto gx =
        functional::grad([&](const Tensor<double>& v) { return sum(w * v * v * v); }, data);
    sum(gx * gx).backward();
    REQUIRE(w.has_grad());
    for (std::size_t i = 0; i < 3; ++i)
      CHECK(w.grad()(i) == doctest::Approx(18 * w.value()(i) * std::pow(at3(i), 4)));
  }
}

TEST_CASE("a transform under a NoGradGuard still differentiates f") {
  // It returned zeros: nothing inside was recorded.
  NoGradGuard no_grad;
  const auto g = functional::grad(cubic_sine, Tensor<double>(at3));
  check_close(g, Array{cubic_sine_d1(at3(0)), cubic_sine_d1(at3(1)), cubic_sine_d1(at3(2))});
  check_close(functional::hessian(cubic_sine, Tensor<double>(at3)), diagonal(cubic_sine_d2));
  CHECK_FALSE(g.requires_grad());
}

TEST_CASE("a transform that falls back to reverse mode inside a sweep leaves that sweep alone") {
  // jacobian's Auto mode tries forward mode, which fails at an op whose backward is first
  // order only, and runs reverse mode instead. Run from inside another sweep (a custom op's
  // backward), the failed attempt used to drop the half-propagated gradients of the sweep
  // around it, here h's: x's gradient lost the 3 * 2x term of sum(h * 3).
  const CustomOp<double> raw_exp(
      "raw_exp", [](const auto& in) { return Array(xt::exp(in[0].value())); },
      [](const CustomBackwardContext<double>& c) {
        return std::vector{c.grad_output() * Tensor<double>(Array(c.output().value()))};
      });
  int fallbacks = 0;
  const CustomOp<double> doubled(
      "doubled", [](const auto& in) { return Array(2.0 * in[0].value()); },
      [&](const CustomBackwardContext<double>& c) {
        const auto tall = [&](const Tensor<double>& v) {
          return raw_exp({broadcast_to(v, {3, 2})});
        };
        const auto j = functional::jacobian(tall, Tensor<double>(Array{0.0, 1.0}));
        fallbacks += j.value()(2, 1, 1) == doctest::Approx(std::exp(1.0)) ? 1 : 0;
        return std::vector{c.grad_output() * 2.0};
      },
      differentiable_backward);
  Tensor<double> x(Array{0.5, -1.5}, requires_grad);
  Tape tape;
  const auto h = x * x;
  (sum(doubled({h})) + sum(h * 3.0)).backward();
  CHECK(fallbacks == 1);
  // d/dx (2 x^2 + 3 x^2) = 10 x.
  CHECK(x.grad() == Array{5.0, -15.0});
}

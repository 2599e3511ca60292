// Custom ops: recorded like built-in ones, checked by gradcheck, differentiable twice.
#include "helpers.hpp"

using namespace tapegrad;
using Array = xt::xarray<double>;

namespace {

const CustomOp<double> cube(
    "cube", [](const std::vector<Tensor<double>>& in) { return Array(in[0].value() * in[0].value() * in[0].value()); },
    [](const CustomBackwardContext<double>& c) { return std::vector{c.grad_output() * 3.0 * square(c.input(0))}; });

// r = sqrt(a^2 + b^2): dr/da = a / r, dr/db = b / r.
const CustomOp<double> hypotenuse(
    "hypotenuse",
    [](const std::vector<Tensor<double>>& in) {
      return Array(xt::sqrt(in[0].value() * in[0].value() + in[1].value() * in[1].value()));
    },
    [](const CustomBackwardContext<double>& c) {
      return std::vector{c.grad_output() * c.input(0) / c.output(), c.grad_output() * c.input(1) / c.output()};
    });

}  // namespace

TEST_CASE("a custom op computes, records and passes gradcheck") {
  Tensor<double> x(Array{-1.5, 0.5, 2.0}, requires_grad);
  Tape tape;
  const auto y = cube({x});
  CHECK(y.value() == Array{-3.375, 0.125, 8.0});
  CHECK(tape.size() == 1);
  sum(y).backward();
  CHECK(x.grad() == Array{6.75, 0.75, 12.0});
  test::require_gradcheck<double>([](const auto& in) { return cube({in[0]}); }, {test::random_array({2, 3}, 5)});
  test::require_gradcheck<double>([](const auto& in) { return hypotenuse({in[0], in[1]}); },
                                  {test::random_array({4}, 6, 0.5, 2), test::random_array({4}, 7, -2, -0.5)});
}

TEST_CASE("a custom op whose backward uses tensor ops has second derivatives") {
  Tensor<double> x(2.0, requires_grad);
  Tape tape;
  cube({x}).backward(create_graph);
  const auto dy = x.grad_tensor();
  CHECK(dy.item() == 12.0);
  x.zero_grad();
  dy.backward();
  CHECK(x.grad()() == 12.0);  // 6x
}

TEST_CASE("a custom op's mistakes are named: gradient count, shape, and a wrong formula") {
  const CustomOp<double> too_few("too_few", [](const auto& in) { return Array(in[0].value() + in[1].value()); },
                                 [](const auto& c) { return std::vector{c.grad_output()}; });
  const CustomOp<double> misshaped("misshaped", [](const auto& in) { return Array(in[0].value()); },
                                   [](const auto&) { return std::vector{Tensor<double>(Array{1.0})}; });
  const CustomOp<double> wrong("wrong_square", [](const auto& in) { return Array(in[0].value() * in[0].value()); },
                               [](const auto& c) { return std::vector{c.grad_output() * c.input(0)}; });  // 2x!
  Tensor<double> a(Array{1.0, 2.0}, requires_grad), b(Array{3.0, 4.0}, requires_grad);
  {
    Tape tape;
    CHECK_THROWS_WITH_AS(sum(too_few({a, b})).backward(),
                         doctest::Contains("custom op 'too_few': backward returned 1 gradients for 2 inputs"), ShapeError);
  }
  {
    Tape tape;
    CHECK_THROWS_WITH_AS(sum(misshaped({a})).backward(),
                         doctest::Contains("custom op 'misshaped': backward returned a gradient of shape (1,) for input 0 of shape (2,)"),
                         ShapeError);
  }
  const auto report = gradcheck<double>([&](const auto& in) { return wrong({in[0]}); }, {Tensor<double>(Array{0.5, -1.0})});
  CHECK_FALSE(report.passed);
}

TEST_CASE("a custom backward that asks for an input the op does not have gets a ValueError") {
  const CustomOp<double> greedy(
      "greedy", [](const std::vector<Tensor<double>>& in) { return Array(in[0].value()); },
      [](const CustomBackwardContext<double>& c) {
        return std::vector{c.grad_output() * c.input(c.needs_grad(0) ? 1 : 0)};
      });
  const CustomOp<double> curious(
      "curious", [](const std::vector<Tensor<double>>& in) { return Array(in[0].value()); },
      [](const CustomBackwardContext<double>& c) {
        return std::vector{c.needs_grad(3) ? c.grad_output() : c.grad_output()};
      });
  Tensor<double> x(Array{1.0, 2.0}, requires_grad);
  Tape tape;
  CHECK_THROWS_WITH_AS(sum(greedy({x})).backward(),
                       doctest::Contains("custom op 'greedy': backward asked for input(1) but "
                                         "the op has 1 input(s)"),
                       ValueError);
  CHECK_THROWS_WITH_AS(sum(curious({x})).backward(),
                       doctest::Contains("custom op 'curious': backward asked for needs_grad(3)"),
                       ValueError);
}

namespace {

// GELU(x) = x Phi(x), with a backward on raw values: Phi(x) + x phi(x). Right to first order;
// its second derivative, phi(x) (2 - x^2), cannot come from it.
Array gelu_values(const Array& x) { return x * 0.5 * (1.0 + xt::erf(x / std::sqrt(2.0))); }
Array gelu_slope(const Array& x) {
  const Array phi = xt::exp(-0.5 * x * x) / std::sqrt(2 * M_PI);
  return 0.5 * (1.0 + xt::erf(x / std::sqrt(2.0))) + x * phi;
}
std::vector<Tensor<double>> gelu_raw_backward(const CustomBackwardContext<double>& c) {
  return {Tensor<double>(Array(c.grad_output().value() * gelu_slope(c.input(0).value())))};
}
Array gelu_forward(const std::vector<Tensor<double>>& in) { return gelu_values(in[0].value()); }

}  // namespace

TEST_CASE("a once_differentiable custom op: first derivatives, and a named error for the second") {
  const CustomOp<double> gelu("gelu", gelu_forward, gelu_raw_backward, once_differentiable);
  Tensor<double> x(0.3, requires_grad);
  {
    Tape tape;
    gelu({x}).backward();
    CHECK(x.grad()() == doctest::Approx(gelu_slope(Array(0.3))()).epsilon(1e-15));
  }
  // The first derivative under create_graph is right; differentiating it again is refused.
  x.zero_grad();
  {
    Tape tape;
    gelu({x}).backward(create_graph);
    const auto slope = x.grad_tensor();
    CHECK(slope.item() == doctest::Approx(gelu_slope(Array(0.3))()).epsilon(1e-15));
    x.zero_grad();
    CHECK_THROWS_WITH_AS(slope.backward(),
                         doctest::Contains("custom op 'gelu' was declared once_differentiable: its "
                                           "gradient cannot be differentiated again"),
                         TapeError);
  }
  // hessian() used to return 0 here (true value phi(0.3) (2 - 0.09) = 0.7284...).
  CHECK_THROWS_WITH_AS(functional::hessian([&](const Tensor<double>& v) { return gelu({v}); }, x),
                       doctest::Contains("'gelu' was declared once_differentiable"), TapeError);
}

TEST_CASE("an untagged custom op whose backward is cut off from grad_output throws under create_graph") {
  const CustomOp<double> gelu("gelu", gelu_forward, gelu_raw_backward);
  Tensor<double> x(Array{0.3, -1.2}, requires_grad);
  {
    Tape tape;
    sum(gelu({x})).backward();  // first order needs nothing more
    CHECK(x.grad()(1) == doctest::Approx(gelu_slope(Array{-1.2})(0)).epsilon(1e-15));
  }
  Tape tape;
  CHECK_THROWS_WITH_AS(sum(gelu({x})).backward(create_graph),
                       doctest::Contains("custom op 'gelu': under backward(create_graph) its backward "
                                         "returned a gradient for input 0 that is not computed from "
                                         "grad_output() with tensor ops"),
                       TapeError);
  // A seed that is a plain constant is traced all the same: the check does not depend on
  // what comes after the op.
  CHECK_THROWS_AS(gelu({x}).backward(Tensor<double>(Array{1.0, 1.0}), create_graph), TapeError);
  // The seed is left as it was.
  const Tensor<double> seed(Array{2.0, 3.0});
  try {
    gelu({x}).backward(seed, create_graph);
  } catch (const TapeError&) {
  }
  CHECK_FALSE(seed.requires_grad());
  // cube's backward is written with tensor ops: still fine, and its second derivative right.
  Tensor<double> y(2.0, requires_grad);
  cube({y}).backward(create_graph);
  const auto dy = y.grad_tensor();
  y.zero_grad();
  dy.backward();
  CHECK(y.grad()() == 12.0);
}

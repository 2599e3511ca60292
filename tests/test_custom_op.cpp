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

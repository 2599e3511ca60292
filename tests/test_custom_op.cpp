// Custom ops: recorded like built-in ones, checked by gradcheck, differentiable twice.
#include "helpers.hpp"

using namespace tapegrad;
using Array = xt::xarray<double>;

namespace {

const CustomOp<double> cube(
    "cube",
    [](const std::vector<Tensor<double>>& in) {
      return Array(in[0].value() * in[0].value() * in[0].value());
    },
    [](const CustomBackwardContext<double>& c) {
      return std::vector{c.grad_output() * 3.0 * square(c.input(0))};
    },
    differentiable_backward);

// r = sqrt(a^2 + b^2): dr/da = a / r, dr/db = b / r.
const CustomOp<double> hypotenuse(
    "hypotenuse",
    [](const std::vector<Tensor<double>>& in) {
      return Array(xt::sqrt(in[0].value() * in[0].value() + in[1].value() * in[1].value()));
    },
    [](const CustomBackwardContext<double>& c) {
      return std::vector{c.grad_output() * c.input(0) / c.output(),
                         c.grad_output() * c.input(1) / c.output()};
    },
    differentiable_backward);

}  // namespace

TEST_CASE("a custom op computes, records and passes gradcheck") {
  Tensor<double> x(Array{-1.5, 0.5, 2.0}, requires_grad);
  Tape tape;
  const auto y = cube({x});
  CHECK(y.value() == Array{-3.375, 0.125, 8.0});
  CHECK(tape.size() == 1);
  sum(y).backward();
  CHECK(x.grad() == Array{6.75, 0.75, 12.0});
  test::require_gradcheck<double>([](const auto& in) { return cube({in[0]}); },
                                  {test::random_array({2, 3}, 5)});
  test::require_gradcheck<double>(
      [](const auto& in) {
        return hypotenuse({in[0], in[1]});
      },
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
  const CustomOp<double> too_few(
      "too_few", [](const auto& in) { return Array(in[0].value() + in[1].value()); },
      [](const auto& c) { return std::vector{c.grad_output()}; });
  const CustomOp<double> misshaped(
      "misshaped", [](const auto& in) { return Array(in[0].value()); },
      [](const auto&) { return std::vector{Tensor<double>(Array{1.0})}; });
  const CustomOp<double> wrong(
      "wrong_square", [](const auto& in) { return Array(in[0].value() * in[0].value()); },
      [](const auto& c) { return std::vector{c.grad_output() * c.input(0)}; });  // 2x!
  Tensor<double> a(Array{1.0, 2.0}, requires_grad), b(Array{3.0, 4.0}, requires_grad);
  {
    Tape tape;
    CHECK_THROWS_WITH_AS(
        sum(too_few({a, b})).backward(),
        doctest::Contains("custom op 'too_few': backward returned 1 gradients for 2 inputs"),
        ShapeError);
  }
  {
    Tape tape;
    CHECK_THROWS_WITH_AS(sum(misshaped({a})).backward(),
                         doctest::Contains("custom op 'misshaped': backward returned a gradient of "
                                           "shape (1,) for input 0 of shape (2,)"),
                         ShapeError);
  }
  const auto report = gradcheck<double>([&](const auto& in) { return wrong({in[0]}); },
                                        {Tensor<double>(Array{0.5, -1.0})});
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

TEST_CASE(
    "a custom op declared differentiable whose backward is cut off from grad_output throws under "
    "create_graph") {
  // A false declaration: the backward computes on raw values.
  const CustomOp<double> gelu("gelu", gelu_forward, gelu_raw_backward, differentiable_backward);
  Tensor<double> x(Array{0.3, -1.2}, requires_grad);
  Tensor<double> w(Array{2.0, -3.0}, requires_grad);
  {
    Tape tape;
    sum(gelu({x})).backward();  // first order needs nothing more
    CHECK(x.grad()(1) == doctest::Approx(gelu_slope(Array{-1.2})(0)).epsilon(1e-15));
  }
  // grad_output = w requires grad: the gradient must be computed from it.
  {
    Tape tape;
    CHECK_THROWS_WITH_AS(
        sum(w * gelu({x})).backward(create_graph),
        doctest::Contains("custom op 'gelu': under backward(create_graph) its backward "
                          "returned a gradient for input 0 that is not computed from "
                          "grad_output() with tensor ops"),
        TapeError);
  }
  // Computed from the inputs with tensor ops but from grad_output's raw value: still cut off
  // from w (a gradient penalty would silently lose w's terms).
  const CustomOp<double> cube_raw_g(
      "cube_raw_g",
      [](const auto& in) { return Array(in[0].value() * in[0].value() * in[0].value()); },
      [](const CustomBackwardContext<double>& c) {
        return std::vector{Tensor<double>(Array(c.grad_output().value())) * square(c.input(0)) *
                           3.0};
      },
      differentiable_backward);
  {
    Tape tape;
    CHECK_THROWS_WITH_AS(sum(w * cube_raw_g({x})).backward(create_graph),
                         doctest::Contains("custom op 'cube_raw_g': under backward(create_graph)"),
                         TapeError);
  }
  // The same penalty through cube, written with tensor ops on grad_output: w gets its terms.
  // L = sum(w x^3), gx = 3 w x^2, P = sum(gx^2) = sum(9 w^2 x^4): dP/dw = 18 w x^4.
  {
    x.zero_grad();
    Tape tape;
    sum(w * cube({x})).backward(create_graph);
    const auto gx = x.grad_tensor();
    w.zero_grad();
    sum(gx * gx).backward();
    CHECK(w.grad()(0) == doctest::Approx(18 * 2.0 * std::pow(0.3, 4)));
    CHECK(w.grad()(1) == doctest::Approx(18 * -3.0 * std::pow(-1.2, 4)));
  }
  // A backward that returns grad_output itself (a straight-through estimator) is computed
  // from it: fine, with or without grad_output requiring grad.
  const CustomOp<double> straight_through(
      "straight_through", [](const auto& in) { return Array(xt::round(in[0].value())); },
      [](const CustomBackwardContext<double>& c) { return std::vector{c.grad_output()}; },
      differentiable_backward);
  {
    x.zero_grad();
    w.zero_grad();
    Tape tape;
    sum(w * straight_through({x})).backward(create_graph);
    CHECK(x.grad() == Array{2.0, -3.0});
    sum(straight_through({x})).backward(create_graph);
  }
  // The seed, a constant shared by threads, is never written to.
  const Tensor<double> seed(Array{2.0, 3.0});
  {
    Tape tape;
    gelu({x}).backward(seed, create_graph);
  }
  CHECK_FALSE(seed.requires_grad());
}

TEST_CASE("anomaly mode reports an Inf from a once_differentiable backward as the backward's") {
  const CustomOp<double> steep(
      "steep", [](const auto& in) { return Array(in[0].value()); },
      [](const CustomBackwardContext<double>& c) {
        return std::vector{Tensor<double>(Array(c.grad_output().value() * 1e308 * 10.0))};
      },
      once_differentiable);
  Tensor<double> x(Array{1.0}, requires_grad);
  AnomalyModeGuard anomaly;
  Tape tape;
  CHECK_THROWS_WITH_AS(sum(steep({x})).backward(create_graph),
                       doctest::Contains("anomaly mode: the backward of 'steep'"), TapeError);
}

namespace {

// y = x^3 written the natural way: the derivative computed on raw values, times grad_output().
// Right to first order; its backward is not built from tensor ops, so nothing recorded under
// create_graph can give the second derivative 6x.
const CustomOp<double> raw_cube(
    "raw_cube",
    [](const std::vector<Tensor<double>>& in) {
      return Array(in[0].value() * in[0].value() * in[0].value());
    },
    [](const CustomBackwardContext<double>& c) {
      return std::vector{c.grad_output() *
                         Tensor<double>(Array(3.0 * c.input(0).value() * c.input(0).value()))};
    });

}  // namespace

TEST_CASE("an undeclared custom op: first derivatives, and a named error for every second one") {
  const Tensor<double> x(Array{0.6, -0.9});
  // First order works everywhere.
  CHECK(xt::allclose(functional::grad([](const auto& v) { return sum(raw_cube({v})); }, x).value(),
                     Array{1.08, 2.43}));
  CHECK(xt::allclose(functional::vjp([](const auto& v) { return raw_cube({v}); }, x,
                                     Tensor<double>(Array{1.0, 2.0}))
                         .second.value(),
                     Array{1.08, 4.86}));
  const auto reverse = functional::jacobian([](const auto& v) { return raw_cube({v}); }, x,
                                            functional::JacobianMode::Reverse);
  CHECK(xt::allclose(reverse.value(), Array{{1.08, 0.0}, {0.0, 2.43}}));
  // The op last before the seed: hessian returned 0 here (the truth is diag(6x)).
  const auto last = [](const Tensor<double>& v) { return sum(raw_cube({v})); };
  CHECK_THROWS_WITH_AS(functional::hessian(last, x), doctest::Contains("custom op 'raw_cube'"),
                       TapeError);
  // Inside sin: d2/dx2 sin(x^3) = -9x^4 sin(x^3) + 6x cos(x^3), at 0.6: 3.26636; hessian
  // returned -0.249988 (the first term only: grad_output() carried no x).
  const auto inside = [](const Tensor<double>& v) { return sum(sin(raw_cube({v}))); };
  CHECK_THROWS_WITH_AS(functional::hessian(inside, Tensor<double>(Array{0.6})),
                       doctest::Contains("custom op 'raw_cube'"), TapeError);
  CHECK_THROWS_WITH_AS(functional::hvp(inside, x, x), doctest::Contains("custom op 'raw_cube'"),
                       TapeError);
  CHECK_THROWS_WITH_AS(functional::jvp([](const auto& v) { return raw_cube({v}); }, x, x),
                       doctest::Contains("custom op 'raw_cube'"), TapeError);
  CHECK_THROWS_WITH_AS(functional::jacobian([](const auto& v) { return raw_cube({v}); }, x,
                                            functional::JacobianMode::Forward),
                       doctest::Contains("custom op 'raw_cube'"), TapeError);
  // Auto falls back to reverse mode, which needs first derivatives only.
  CHECK(functional::jacobian(
            [](const auto& v) {
              return raw_cube({broadcast_to(v, {3, 2})});
            },
            x)
            .value()(2, 1, 1) == doctest::Approx(2.43));
  // backward(create_graph) gives the right first derivative; differentiating it is refused.
  Tensor<double> leaf(Array{0.6, -0.9}, requires_grad);
  Tape tape;
  sum(sin(raw_cube({leaf}))).backward(create_graph);
  const auto slope = leaf.grad_tensor();
  CHECK(slope.value()(0) == doctest::Approx(std::cos(0.216) * 1.08));
  leaf.zero_grad();
  CHECK_THROWS_WITH_AS(sum(slope).backward(), doctest::Contains("custom op 'raw_cube'"), TapeError);
}

TEST_CASE("a custom op declared differentiable_backward: every second derivative goes through it") {
  // f(x) = sum(sin(x^3)): f'' = -9x^4 sin(x^3) + 6x cos(x^3), derived by hand.
  const auto f = [](const Tensor<double>& v) { return sum(sin(cube({v}))); };
  const Array at = {0.6, -0.9};
  const auto second = [](double x) {
    return -9 * std::pow(x, 4) * std::sin(x * x * x) + 6 * x * std::cos(x * x * x);
  };
  const auto h = functional::hessian(f, Tensor<double>(at));
  CHECK(h.value()(0, 0) == doctest::Approx(second(0.6)).epsilon(1e-13));
  CHECK(h.value()(1, 1) == doctest::Approx(second(-0.9)).epsilon(1e-13));
  CHECK(h.value()(0, 1) == 0.0);
  const auto hv = functional::hvp(f, Tensor<double>(at), Tensor<double>(Array{2.0, -1.0}));
  CHECK(hv.value()(1) == doctest::Approx(-second(-0.9)).epsilon(1e-13));
  // jvp and forward-mode jacobian of y = x^3: 3x^2 v, diag(3x^2).
  const auto cubed = [](const Tensor<double>& v) { return cube({v}); };
  CHECK(xt::allclose(
      functional::jvp(cubed, Tensor<double>(at), Tensor<double>(Array{1.0, 2.0})).second.value(),
      Array{1.08, 4.86}));
  CHECK(xt::allclose(
      functional::jacobian(cubed, Tensor<double>(at), functional::JacobianMode::Forward).value(),
      Array{{1.08, 0.0}, {0.0, 2.43}}));
  CHECK(cube.backward_is_differentiable());
  CHECK_FALSE(raw_cube.backward_is_differentiable());
}

TEST_CASE("compile takes a custom op declared differentiable_backward and refuses another") {
  Tensor<double> w(Array{1.0, -2.0}, requires_grad);
  auto step = compile(std::vector<Tensor<double>>{w}, [&] { return sum(cube({w})); });
  CHECK(step.run() == -7.0);
  CHECK(w.grad() == Array{3.0, 12.0});
  CHECK_THROWS_WITH_AS(
      compile(std::vector<Tensor<double>>{w}, [&] { return sum(raw_cube({w})); }),
      doctest::Contains("compile: custom op 'raw_cube' cannot be run again in a compiled step: "
                        "its backward is not declared differentiable_backward"),
      TapeError);
}

// gradcheck itself: it must pass right gradients and catch wrong ones, with a useful report.
#include <xtensor-blas/xlinalg.hpp>

#include "helpers.hpp"
#include "tapegrad/bp_check.hpp"  // the old header of check_mlp_bp still forwards to nn/bp_check.hpp

using namespace tapegrad;

TEST_CASE("gradcheck passes a right gradient and names the worst element") {
  const TensorFunction<double> f = [](const std::vector<Tensor<double>>& x) {
    return matmul(x[0], x[1]);
  };
  GradcheckOptions options;
  options.names = {"A", "B"};
  const auto report = gradcheck(f,
                                {Tensor<double>(test::random_array({2, 3}, 1)),
                                 Tensor<double>(test::random_array({3, 2}, 2))},
                                options);
  CHECK(report.passed);
  CHECK(report.message.find("gradcheck passed") != std::string::npos);
  CHECK(report.error <= report.tolerance);
  CHECK(report.worst_position.size() == 2);
}

TEST_CASE("gradcheck catches a gradient the tape cannot see, and says where") {
  // x * c where c is x's value taken outside the graph: the tape's gradient is c, the true
  // one 2x. The classic bug of a value that silently left the graph.
  const TensorFunction<double> f = [](const std::vector<Tensor<double>>& x) {
    return x[0] * x[0].detach();
  };
  GradcheckOptions options;
  options.names = {"weights"};
  const auto report = gradcheck(f, {Tensor<double>({{0.5, -1.0}, {2.0, 3.0}})}, options);
  CHECK_FALSE(report.passed);
  INFO(report.message);
  CHECK(report.message.find("'weights' element (1, 1)") != std::string::npos);
  // Both sides carry the same upstream weight w: the true gradient is 2x w, the tape's x w.
  CHECK(report.numeric_value == doctest::Approx(2 * report.tape_value));
}

TEST_CASE("gradcheck does not pass when both sides are zero everywhere") {
  const TensorFunction<double> f = [](const std::vector<Tensor<double>>& x) {
    return relu(x[0]);  // all inputs negative: the gradient is zero on both sides
  };
  const auto report = gradcheck(f, {Tensor<double>({-1.0, -2.0, -0.5})});
  CHECK_FALSE(report.passed);
  CHECK(report.message.find("zero on both sides") != std::string::npos);
  GradcheckOptions allow;
  allow.allow_zero_gradient = true;
  CHECK(gradcheck(f, {Tensor<double>({-1.0, -2.0, -0.5})}, allow).passed);
}

TEST_CASE("gradcheck weights the outputs unevenly, so a permuted gradient fails") {
  // y = x[perm], but written so the tape sees y = x: the tape's Jacobian is the identity,
  // the true one a permutation. With an all-ones upstream gradient both give all ones and a
  // naive check passes; gradcheck's uneven weights must catch it.
  const TensorFunction<double> f = [](const std::vector<Tensor<double>>& x) {
    const auto constant = x[0].detach();
    return x[0] + (index_select(constant, {1, 2, 3, 0}) - constant);
  };
  const auto report = gradcheck(f, {Tensor<double>({1.0, 2.0, 3.0, 4.0})});
  INFO(report.message);
  CHECK_FALSE(report.passed);
}

TEST_CASE("gradcheck in float32 uses float steps and tolerances") {
  const TensorFunction<float> f = [](const std::vector<Tensor<float>>& x) {
    return tanh(x[0]) * exp(x[0]);
  };
  const auto report = gradcheck(f, {Tensor<float>({0.3f, -0.8f, 1.2f})});
  CHECK(report.passed);
  CHECK(report.tolerance > 1e-4);  // float tolerances, not double ones
}

namespace {
// Seed 002's two-dimensional function (spec D5), of one tensor (x, y).
Tensor<double> seed_002_f(const Tensor<double>& v) {
  const auto x = narrow(v, 0, 0, 1), y = narrow(v, 0, 1, 1);
  return sum(-0.5 * (exp(-square(x) - square(y)) - 2.0 * exp(-square(x - 1.0) - square(y - 1.0))));
}
}  // namespace

TEST_CASE("the hand-gradient checker flags seed 002's hand gradient and accepts a right one") {
  const TensorFunction<double> f = [](const std::vector<Tensor<double>>& v) {
    return seed_002_f(v[0]);
  };
  // The seed's hand derivation: grad = (2x e^-(x^2+y^2), 2y e^-(x^2+y^2)).
  const HandGradient<double> seed_hand = [](const std::vector<xt::xarray<double>>& v) {
    const double x = v[0](0), y = v[0](1), e = std::exp(-(x * x + y * y));
    return std::vector<xt::xarray<double>>{xt::xarray<double>{2 * x * e, 2 * y * e}};
  };
  // The right one: d/dx = x e1 - 2 (x - 1) e2, with e1 = e^-(x^2+y^2), e2 = e^-((x-1)^2+(y-1)^2).
  const HandGradient<double> right = [](const std::vector<xt::xarray<double>>& v) {
    const double x = v[0](0), y = v[0](1);
    const double e1 = std::exp(-(x * x + y * y));
    const double e2 = std::exp(-((x - 1) * (x - 1) + (y - 1) * (y - 1)));
    return std::vector<xt::xarray<double>>{
        xt::xarray<double>{x * e1 - 2 * (x - 1) * e2, y * e1 - 2 * (y - 1) * e2}};
  };
  const std::vector<std::vector<xt::xarray<double>>> points = {{xt::xarray<double>{1.0, 1.0}},
                                                               {xt::xarray<double>{0.3, -0.4}},
                                                               {xt::xarray<double>{-1.2, 0.8}}};
  GradcheckOptions options;
  options.names = {"(x, y)"};

  const auto wrong = check_hand_gradient(f, seed_hand, points, options);
  INFO(wrong.message);
  CHECK_FALSE(wrong.passed);
  CHECK(wrong.disagreements.size() == 6);  // every element of every point
  CHECK(wrong.message.find("WRONG") != std::string::npos);
  // At the start point (1, 1): the seed says 2 e^-2 = 0.2707; the tape says e^-2 = 0.1353.
  const auto& first = wrong.disagreements.front();
  CHECK(first.point == 0);
  CHECK(first.hand == doctest::Approx(2 * std::exp(-2.0)));
  CHECK(first.tape == doctest::Approx(std::exp(-2.0)));
  CHECK(first.numeric == doctest::Approx(std::exp(-2.0)).epsilon(1e-8));
  CHECK_FALSE(wrong.tape_disagrees_with_numeric);

  const auto ok = check_hand_gradient(f, right, points, options);
  INFO(ok.message);
  CHECK(ok.passed);
  CHECK(ok.elements_checked == 6);
  CHECK(ok.disagreements.empty());

  const HandGradient<double> misshaped = [](const std::vector<xt::xarray<double>>&) {
    return std::vector<xt::xarray<double>>{xt::xarray<double>{1.0}};
  };
  CHECK_THROWS_AS(check_hand_gradient(f, misshaped, points, options), ShapeError);
}

TEST_CASE("the three-way BP check reports every layer with the three values") {
  Generator random(3);
  nn::MLP<double> mlp({3, 4, 2}, nn::Activation::Tanh,
                      nn::MLPOptions().linear(nn::LinearOptions().generator(random)));
  const xt::xarray<double> x = test::random_array({5, 3}, 8);
  const xt::xarray<double> t = test::random_array({5, 2}, 9, 0, 1);
  const auto report = nn::check_mlp_bp(mlp, x, t);
  INFO(report.message);
  CHECK(report.passed);
  REQUIRE(report.layers.size() == 2);
  CHECK(report.layers[1].layer == 2);
  CHECK(report.layers[0].delta.tape.shape() == Shape{5, 4});
  CHECK(report.layers[0].weight.equations.shape() == Shape{3, 4});
  CHECK(report.layers[1].bias.numeric.shape() == Shape{2});
  CHECK(report.layers[0].weight.tape_vs_equations < 1e-12);
  CHECK(report.layers[0].weight.tape_vs_numeric < 1e-6);
  CHECK(report.loss > 0);
  CHECK_FALSE(mlp.parameters()[0].has_grad());  // the model is left alone
  CHECK_THROWS_AS(nn::check_mlp_bp(mlp, t, x), ShapeError);
}

TEST_CASE("the hand-gradient checker does not pass when there is nothing to check") {
  const TensorFunction<double> f = [](const std::vector<Tensor<double>>& v) { return sum(v[0]); };
  const HandGradient<double> hand = [](const std::vector<xt::xarray<double>>& v) {
    return std::vector<xt::xarray<double>>{xt::ones_like(v[0])};
  };
  const auto none = check_hand_gradient(f, hand, {});
  CHECK_FALSE(none.passed);
  CHECK(none.message.find("nothing to check") != std::string::npos);
  const auto right = check_hand_gradient(f, hand, {{xt::xarray<double>{1.0, 2.0}}});
  CHECK(right.passed);
}

namespace {
// y = (x0 x1, x0^2 + x1, 3 x1): a custom op whose backward gets d y[1] / d x0 wrong (x0
// instead of 2 x0) and is right everywhere else.
const CustomOp<double> half_wrong(
    "half_wrong",
    [](const std::vector<Tensor<double>>& in) {
      const auto& x = in[0].value();
      return xt::xarray<double>{x(0) * x(1), x(0) * x(0) + x(1), 3 * x(1)};
    },
    [](const CustomBackwardContext<double>& c) {
      const auto x0 = narrow(c.input(0), 0, 0, 1), x1 = narrow(c.input(0), 0, 1, 1);
      const auto g0 = narrow(c.grad_output(), 0, 0, 1), g1 = narrow(c.grad_output(), 0, 1, 1),
                 g2 = narrow(c.grad_output(), 0, 2, 1);
      return std::vector{concat(std::vector{g0 * x1 + g1 * x0, g0 * x0 + g1 + g2 * 3.0},
                                0)};  // g1 * x0: should be 2 x0
    });
}  // namespace

TEST_CASE("gradcheck names the output and input element of a wrong derivative, unweighted") {
  const TensorFunction<double> f = [](const std::vector<Tensor<double>>& x) {
    return half_wrong({x[0]});
  };
  const auto report = gradcheck(f, {Tensor<double>(xt::xarray<double>{1.5, -0.5})});
  INFO(report.message);
  CHECK_FALSE(report.passed);
  // Only input element 0 is wrong, and there only d y[1] / d x0: tape 1.5, true 3.
  REQUIRE(report.worst.size() == 1);
  const auto& entry = report.worst[0];
  CHECK(entry.input == 0);
  CHECK(entry.position == std::vector<std::size_t>{0});
  CHECK(entry.output == 1);
  CHECK(entry.output_position == std::vector<std::size_t>{1});
  CHECK(entry.tape == doctest::Approx(1.5));
  CHECK(entry.numeric == doctest::Approx(3.0).epsilon(1e-6));
  CHECK(report.message.find("d f[1]/d x[0]: tape 1.5, finite differences 3") != std::string::npos);
}

TEST_CASE("gradcheck names the worst elements of a single-element f, at most five") {
  // sum(x * x.detach()): the tape says x, the truth 2x, at every element of a (2, 4) input.
  const TensorFunction<double> f = [](const std::vector<Tensor<double>>& x) {
    return sum(x[0] * x[0].detach());
  };
  GradcheckOptions options;
  options.names = {"w"};
  const xt::xarray<double> w = {{0.5, -1.0, 2.0, 3.0}, {0.25, 1.5, -4.0, 0.75}};
  const auto report = gradcheck(f, {Tensor<double>(w)}, options);
  INFO(report.message);
  CHECK_FALSE(report.passed);
  REQUIRE(report.worst.size() == 5);
  CHECK(report.worst[0].position == std::vector<std::size_t>{1, 2});  // the largest |x|
  CHECK(report.worst[0].tape == doctest::Approx(-4.0));
  CHECK(report.worst[0].numeric == doctest::Approx(-8.0));
  CHECK(report.message.find("d f/d w[1, 2]: tape -4, finite differences -8") != std::string::npos);
  CHECK(report.message.find("d f/d w[0, 1]") != std::string::npos);  // the fifth
  CHECK(report.message.find("d f/d w[1, 0]") == std::string::npos);  // the smallest is left out
}

namespace {
// MSE over an (8, 3) prediction: f = mean((p - t)^2), df/dp = 2 (p - t) / 24.
const xt::xarray<double> mse_target = test::random_array({8, 3}, 31);
const TensorFunction<double> mse = [](const std::vector<Tensor<double>>& p) {
  return mean(square(p[0] - Tensor<double>(mse_target)));
};
const std::vector<std::vector<xt::xarray<double>>> mse_points = {{test::random_array({8, 3}, 32)},
                                                                 {test::random_array({8, 3}, 33)}};
}  // namespace

TEST_CASE("check_hand_gradient diagnoses a missing 1/N and a flipped sign") {
  const HandGradient<double> no_mean = [](const std::vector<xt::xarray<double>>& p) {
    return std::vector<xt::xarray<double>>{2.0 * (p[0] - mse_target)};  // lacks 1/N
  };
  const auto report = check_hand_gradient(mse, no_mean, mse_points);
  INFO(report.message);
  CHECK_FALSE(report.passed);
  CHECK(report.disagreements.size() == 48);
  CHECK(report.diagnosis.find("24.000x the tape's at every element") != std::string::npos);
  CHECK(report.diagnosis.find("1/24") != std::string::npos);
  CHECK(report.message.find(report.diagnosis) != std::string::npos);
  CHECK(report.message.find("worst") != std::string::npos);
  CHECK(report.message.find("(43 more)") != std::string::npos);  // five listed, not all 48

  const HandGradient<double> flipped = [](const std::vector<xt::xarray<double>>& p) {
    return std::vector<xt::xarray<double>>{(mse_target - p[0]) / 12.0};
  };
  const auto sign = check_hand_gradient(mse, flipped, mse_points);
  INFO(sign.message);
  CHECK(sign.diagnosis.find("sign-flipped") != std::string::npos);

  const HandGradient<double> zero = [](const std::vector<xt::xarray<double>>& p) {
    return std::vector<xt::xarray<double>>{xt::zeros_like(p[0])};
  };
  const auto none = check_hand_gradient(mse, zero, mse_points);
  INFO(none.message);
  CHECK(none.diagnosis == "input 0: your gradient is zero at every element, the tape's is not");
}

TEST_CASE("check_hand_gradient diagnoses a transposed gradient") {
  // f = sum(W x) x0 for a (3, 3) W: not symmetric in W.
  const xt::xarray<double> x = {1.0, 2.0, -1.5};
  const TensorFunction<double> f = [&](const std::vector<Tensor<double>>& w) {
    return sum(square(matmul(w[0], Tensor<double>(x))));
  };
  // df/dW = 2 (W x) x^T; the transposed one is x (W x)^T.
  const HandGradient<double> transposed = [&](const std::vector<xt::xarray<double>>& w) {
    const xt::xarray<double> wx = xt::linalg::dot(w[0], x);
    return std::vector<xt::xarray<double>>{2.0 * xt::linalg::outer(x, wx)};
  };
  GradcheckOptions options;
  options.names = {"W"};
  const auto report =
      check_hand_gradient(f, transposed, {{test::random_array({3, 3}, 34)}}, options);
  INFO(report.message);
  CHECK_FALSE(report.passed);
  CHECK(report.diagnosis.find("'W': the hand gradient equals the tape's transposed") !=
        std::string::npos);

  // A (2, 3) argument given a (3, 2) gradient: a ShapeError that says it is transposed.
  const HandGradient<double> wrong_shape = [](const std::vector<xt::xarray<double>>& w) {
    return std::vector<xt::xarray<double>>{xt::transpose(w[0])};
  };
  CHECK_THROWS_WITH_AS(
      check_hand_gradient(TensorFunction<double>([](const auto& w) { return sum(w[0]); }),
                          wrong_shape, {{test::random_array({2, 3}, 35)}}, options),
      doctest::Contains(
          "has shape (3, 2) but the argument has shape (2, 3) (the argument's shape transposed"),
      ShapeError);
}

TEST_CASE(
    "check_hand_gradient makes no diagnosis of a gradient wrong in a few elements, and lists the "
    "worst") {
  const HandGradient<double> few = [](const std::vector<xt::xarray<double>>& p) {
    xt::xarray<double> g = 2.0 * (p[0] - mse_target) / 24.0;
    g(2, 1) += 0.5;
    g(5, 0) -= 0.125;
    return std::vector<xt::xarray<double>>{g};
  };
  const auto report = check_hand_gradient(mse, few, {mse_points[0]});
  INFO(report.message);
  CHECK_FALSE(report.passed);
  CHECK(report.diagnosis.empty());
  CHECK(report.disagreements.size() == 2);
  const auto worst = report.message.find("element (2, 1)"),
             second = report.message.find("element (5, 0)");
  CHECK(worst != std::string::npos);
  CHECK(second != std::string::npos);
  CHECK(worst < second);
}

TEST_CASE("gradcheck of a function that returns a gradient checks the second derivative") {
  // The tape's derivative of functional::grad's result was 0 (a constant), and gradcheck
  // said f's result does not depend on any input.
  const auto gradient = [](const std::vector<Tensor<double>>& in) {
    return functional::grad([](const Tensor<double>& x) { return sum(x * x * x * sin(x)); }, in[0]);
  };
  const auto report = gradcheck<double>(gradient, {Tensor<double>(xt::xarray<double>{0.7, -1.3})});
  INFO(report.message);
  CHECK(report.passed);
}

namespace {

using Values = xt::xarray<double>;

// y = x^3 with a backward built from tensor ops: declared differentiable, rightly.
const CustomOp<double> cube_ops(
    "cube_ops",
    [](const auto& in) { return Values(in[0].value() * in[0].value() * in[0].value()); },
    [](const CustomBackwardContext<double>& c) {
      return std::vector{c.grad_output() * 3.0 * square(c.input(0))};
    },
    differentiable_backward);

// The same op with the derivative computed on raw values, times grad_output(): right to
// first order, declared differentiable wrongly (its second derivative through grad_output()
// alone misses the 6x term).
std::vector<Tensor<double>> raw_slope(const CustomBackwardContext<double>& c) {
  return {c.grad_output() * Tensor<double>(Values(3.0 * c.input(0).value() * c.input(0).value()))};
}
Values cube_values(const std::vector<Tensor<double>>& in) {
  return Values(in[0].value() * in[0].value() * in[0].value());
}
const CustomOp<double> cube_raw_declared("cube_raw", cube_values, raw_slope,
                                         differentiable_backward);
const CustomOp<double> cube_raw_undeclared("cube_raw", cube_values, raw_slope);

}  // namespace

TEST_CASE("gradgradcheck passes for second derivatives the tape gets right") {
  const std::vector<Tensor<double>> x = {Tensor<double>(Values{0.7, -1.3, 0.4})};
  const auto plain =
      gradgradcheck<double>([](const auto& in) { return in[0] * in[0] * in[0] * sin(in[0]); }, x);
  INFO(plain.message);
  CHECK(plain.passed);
  CHECK(plain.message.rfind("gradgradcheck passed", 0) == 0);
  // Two inputs, a matrix result: the second derivatives across inputs (d2/dA dx) too.
  const auto product =
      gradgradcheck<double>([](const auto& in) { return tanh(matmul(in[0], in[1])); },
                            {Tensor<double>(test::random_array({2, 3}, 41)),
                             Tensor<double>(test::random_array({3}, 42))});
  INFO(product.message);
  CHECK(product.passed);
  const auto declared =
      gradgradcheck<double>([](const auto& in) { return sin(cube_ops({in[0]})); }, x);
  INFO(declared.message);
  CHECK(declared.passed);
}

TEST_CASE("gradgradcheck catches a backward declared differentiable that is first order only") {
  const std::vector<Tensor<double>> x = {Tensor<double>(Values{0.6, -0.9})};
  // gradcheck cannot tell: the first derivatives are right.
  CHECK(gradcheck<double>([](const auto& in) { return cube_raw_declared({in[0]}); }, x).passed);
  const auto report =
      gradgradcheck<double>([](const auto& in) { return cube_raw_declared({in[0]}); }, x);
  INFO(report.message);
  CHECK_FALSE(report.passed);
  CHECK(report.message.rfind("gradgradcheck failed at 'x' element", 0) == 0);
  // d(v 3x^2)/dx is 6 v x; the tape gives 0 (through the raw slope nothing reaches x).
  REQUIRE_FALSE(report.worst.empty());
  CHECK(report.worst[0].input == 0);
  CHECK(report.worst[0].tape == 0.0);
  CHECK(std::abs(report.worst[0].numeric) > 1);
  // Undeclared, the same op is first order only: gradgradcheck's second derivative through it
  // throws, naming it.
  CHECK_THROWS_WITH_AS(
      gradgradcheck<double>([](const auto& in) { return cube_raw_undeclared({in[0]}); }, x),
      doctest::Contains("custom op 'cube_raw': its backward is not declared "
                        "differentiable_backward"),
      TapeError);
}

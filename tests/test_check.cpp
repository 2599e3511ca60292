// gradcheck itself: it must pass right gradients and catch wrong ones, with a useful report.
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
  return sum(-0.5 * (exp(-square(x) - square(y)) -
                     2.0 * exp(-square(x - 1.0) - square(y - 1.0))));
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
  const std::vector<std::vector<xt::xarray<double>>> points = {
      {xt::xarray<double>{1.0, 1.0}}, {xt::xarray<double>{0.3, -0.4}}, {xt::xarray<double>{-1.2, 0.8}}};
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

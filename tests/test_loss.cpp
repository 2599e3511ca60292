// Losses: closed-form values, gradient checks, stability at the edges, clear errors.
#include <cmath>

#include "helpers.hpp"

using namespace tapegrad;
using Array = xt::xarray<double>;

TEST_CASE("loss values match their formulas") {
  const Tensor<double> y(Array{{0.2, 0.9}, {0.6, 0.1}});
  const Tensor<double> t(Array{{0.0, 1.0}, {1.0, 0.0}});
  const double sq = 0.04 + 0.01 + 0.16 + 0.01;
  CHECK(nn::mse(y, t).item() == doctest::Approx(sq / 4));
  CHECK(nn::half_sse(y, t).item() == doctest::Approx(sq / (2 * 2)));
  // One sample (1-d): E = 1/2 sum (t - o)^2, as in the worked-BP article.
  CHECK(nn::half_sse(Tensor<double>(Array{0.75, 0.77}), Tensor<double>(Array{0.01, 0.99})).item() ==
        doctest::Approx(0.5 * (0.74 * 0.74 + 0.22 * 0.22)));
  const double bce = -(std::log(0.8) + std::log(0.9) + std::log(0.6) + std::log(0.9)) / 4;
  CHECK(nn::binary_cross_entropy(y, t).item() == doctest::Approx(bce));
  const Tensor<double> z(Array{{-1.0, 2.0}, {0.5, -3.0}});
  double bce_logits = 0;
  for (auto [zi, ti] : {std::pair{-1.0, 0.0}, {2.0, 1.0}, {0.5, 1.0}, {-3.0, 0.0}}) {
    const double p = 1 / (1 + std::exp(-zi));
    bce_logits -= ti * std::log(p) + (1 - ti) * std::log(1 - p);
  }
  CHECK(nn::binary_cross_entropy_with_logits(z, t).item() == doctest::Approx(bce_logits / 4));
  const Tensor<double> scores(Array{{1.0, 2.0, 3.0}, {1.0, 0.0, -1.0}});
  const double ce = (-(3 - std::log(std::exp(1) + std::exp(2) + std::exp(3))) -
                     (1 - std::log(std::exp(1) + 1 + std::exp(-1)))) /
                    2;
  CHECK(nn::cross_entropy(scores, {2, 0}).item() == doctest::Approx(ce));
  CHECK(nn::nll_loss(log_softmax(scores, 1), {2, 0}).item() == doctest::Approx(ce));
}

TEST_CASE("every loss passes a gradient check") {
  const auto y = test::random_array({3, 4}, 1, 0.1, 0.9);
  const auto t = test::random_array({3, 4}, 2, 0, 1);
  const auto s = test::random_array({3, 4}, 3, -2, 2);
  test::require_gradcheck<double>([](const auto& x) { return nn::mse(x[0], x[1]); }, {y, t});
  test::require_gradcheck<double>([](const auto& x) { return nn::half_sse(x[0], x[1]); }, {y, t});
  test::require_gradcheck<double>(
      [](const auto& x) { return nn::binary_cross_entropy(x[0], x[1]); }, {y, t});
  test::require_gradcheck<double>(
      [](const auto& x) { return nn::binary_cross_entropy_with_logits(x[0], x[1]); }, {s, t});
  test::require_gradcheck<double>(
      [](const auto& x) {
        return nn::cross_entropy(x[0], {3, 0, 1});
      },
      {s});
  test::require_gradcheck<double>([](const auto& x) { return nn::nll_loss(x[0], {2, 2, 0}); }, {s});
}

TEST_CASE("binary cross-entropy stays finite at probabilities 0 and 1 and logits of +-1000") {
  Tape tape;
  Tensor<double> p(Array{0.0, 1.0, 0.0, 1.0}, requires_grad);
  const Tensor<double> t(Array{0.0, 1.0, 1.0, 0.0});
  const auto loss = nn::binary_cross_entropy(p, t);
  CHECK(loss.item() == doctest::Approx(50.0));  // two perfect, two clamped at -100: 200 / 4
  loss.backward();
  for (double g : p.grad()) CHECK(std::isfinite(g));

  Tensor<double> z(Array{-1000.0, 1000.0, -1000.0, 1000.0}, requires_grad);
  const auto with_logits = nn::binary_cross_entropy_with_logits(z, t);
  CHECK(with_logits.item() == doctest::Approx(500.0));  // two exact, two off by 1000
  with_logits.backward();
  CHECK(z.grad() == Array{0.0, 0.0, -0.25, 0.25});  // (sigmoid(z) - t) / 4

  Tensor<double> scores(Array{{1000.0, -1000.0}, {0.0, 0.0}}, requires_grad);
  const auto ce = nn::cross_entropy(scores, {1, 0});
  CHECK(ce.item() == doctest::Approx((2000.0 + std::log(2.0)) / 2));
  ce.backward();
  for (double g : scores.grad()) CHECK(std::isfinite(g));
}

TEST_CASE("losses refuse mismatched shapes and bad labels") {
  const Tensor<double> column(xt::xarray<double>::from_shape({4, 1}));
  const Tensor<double> flat(xt::xarray<double>::from_shape({4}));
  CHECK_THROWS_WITH_AS(nn::mse(column, flat),
                       "mse: output shape (4, 1) and target shape (4,) differ", ShapeError);
  CHECK_THROWS_AS(nn::half_sse(column, flat), ShapeError);
  CHECK_THROWS_AS(nn::binary_cross_entropy(column, flat), ShapeError);
  const Tensor<double> scores(xt::xarray<double>(xt::zeros<double>({2, 3})));
  CHECK_THROWS_WITH_AS(nn::cross_entropy(scores, {0}),
                       doctest::Contains("1 labels for scores of shape (2, 3)"), ShapeError);
  CHECK_THROWS_WITH_AS(nn::cross_entropy(scores, {0, 3}), doctest::Contains("label 3 of row 1"),
                       ValueError);
  CHECK_THROWS_AS(nn::cross_entropy(flat, {0, 1, 2, 0}), ShapeError);
}

TEST_CASE("binary cross-entropy in float: finite gradients at probabilities 0 and 1 exactly") {
  Tape tape;
  Tensor<float> p(xt::xarray<float>{0.0f, 1.0f, 0.0f, 1.0f}, requires_grad);
  const Tensor<float> t(xt::xarray<float>{0.0f, 1.0f, 1.0f, 0.0f});
  const auto loss = nn::binary_cross_entropy(p, t);
  // Two perfect, two clamped at float's smallest normal number: -ln(FLT_MIN) = 87.34 each.
  CHECK(loss.item() == doctest::Approx(2 * 87.336544750553 / 4).epsilon(1e-6));
  loss.backward();
  for (float g : p.grad()) CHECK(std::isfinite(g));
  // A large gradient flowing in: g / floor overflows to Inf, which the clamp must not turn
  // into NaN (0 x Inf) but drop.
  p.zero_grad();
  (1e3f * nn::binary_cross_entropy(p, t)).backward();
  for (float g : p.grad()) CHECK(std::isfinite(g));
  CHECK(p.grad()(0) == doctest::Approx(1e3f / 4));  // d/dp of -ln(1 - p) at 0, times 1e3 / 4
}

TEST_CASE("relu and clamp pass exactly 0 where they are flat, even for an infinite gradient") {
  Tape tape;
  Tensor<double> x(Array{-1.0, 0.5, 2.0}, requires_grad);
  const Tensor<double> inf_weights(Array{INFINITY, 1.0, INFINITY});
  sum(relu(x) * inf_weights).backward();
  CHECK(x.grad()(0) == 0.0);
  CHECK(x.grad()(1) == 1.0);
  CHECK(std::isinf(x.grad()(2)));
  x.zero_grad();
  sum(clamp(x, 0.0, 1.0) * inf_weights).backward();
  CHECK(x.grad() == Array{0.0, 1.0, 0.0});
}

TEST_CASE("half_sse refuses an output without elements, as mse does") {
  const Tensor<double> empty(xt::xarray<double>(xt::zeros<double>({0, 2})));
  CHECK_THROWS_WITH_AS(nn::half_sse(empty, empty), doctest::Contains("no elements"), ValueError);
  CHECK_THROWS_AS(nn::mse(empty, empty), ValueError);
  const Tensor<double> empty_1d(xt::xarray<double>::from_shape(Shape{0}));
  CHECK_THROWS_AS(nn::half_sse(empty_1d, empty_1d), ValueError);
}

TEST_CASE(
    "cross_entropy_with_probabilities: a one-hot target gives the label form's number and "
    "gradient") {
  const xt::xarray<double> z = {{1.0, -2.0, 0.5}, {0.3, 0.1, -0.7}};
  Tensor<double> a(z, requires_grad), b(z, requires_grad);
  const Tensor<double> one_hot(xt::xarray<double>{{0.0, 0.0, 1.0}, {1.0, 0.0, 0.0}});
  {
    Tape tape;
    const auto by_labels = nn::cross_entropy(a, std::vector<std::size_t>{2, 0});
    const auto by_probabilities = nn::cross_entropy_with_probabilities(b, one_hot);
    CHECK(by_labels.item() == by_probabilities.item());
    by_labels.backward();
    by_probabilities.backward();
  }
  CHECK(a.grad() == b.grad());
  // Soft targets: -(1/N) sum p log_softmax(z), against the formula.
  const xt::xarray<double> p = {{0.2, 0.3, 0.5}, {0.6, 0.4, 0.0}};
  const auto soft =
      nn::cross_entropy_with_probabilities(Tensor<double>(z), Tensor<double>(p)).item();
  double expected = 0;
  for (std::size_t i = 0; i < 2; ++i) {
    const double lse = std::log(std::exp(z(i, 0)) + std::exp(z(i, 1)) + std::exp(z(i, 2)));
    for (std::size_t c = 0; c < 3; ++c) expected -= p(i, c) * (z(i, c) - lse);
  }
  CHECK(soft == doctest::Approx(expected / 2).epsilon(1e-14));
  CHECK_THROWS_WITH_AS(nn::cross_entropy_with_probabilities(
                           Tensor<double>(z), Tensor<double>(xt::xarray<double>{{1.0, 0.0, 0.0}})),
                       doctest::Contains("target of shape (1, 3) for logits of shape (2, 3)"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(nn::cross_entropy_with_probabilities(
                           Tensor<double>(xt::xarray<double>(xt::zeros<double>({0, 3}))),
                           Tensor<double>(xt::xarray<double>(xt::zeros<double>({0, 3})))),
                       doctest::Contains("cross_entropy_with_probabilities: the batch is empty"),
                       ValueError);
  CHECK_THROWS_WITH_AS(
      nn::cross_entropy_with_probabilities(Tensor<double>(xt::xarray<double>{1.0, 2.0}),
                                           Tensor<double>(xt::xarray<double>{1.0, 0.0})),
      doctest::Contains("expects logits of shape (N, C), got (2,)"), ShapeError);
}

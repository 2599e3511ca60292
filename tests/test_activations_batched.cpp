// erf, gelu, silu, elu and batched matmul: against PyTorch (tests/fixtures/activations_matmul.npz,
// made by tests/fixtures/make_activations_matmul.py), gradcheck, float against double, the
// batched product against a loop of 2-d products, errors, and the nn activation modules.
// (Second derivatives of each op: the per-op table, tests/op_cases.hpp.)
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <xtensor/xview.hpp>

#include "fixture.hpp"
#include "helpers.hpp"

using namespace tapegrad;
using Array = xt::xarray<double>;

namespace {

const test::NpzFixture& fixture() {
  static const test::NpzFixture file("activations_matmul.npz");
  return file;
}

const Array& get(const std::string& name) { return fixture().get(name); }

// The largest absolute difference of two arrays of one shape (infinite if the shapes differ;
// NaN anywhere counts as infinite).
double max_difference(const Array& a, const Array& b) {
  if (a.shape() != b.shape()) return std::numeric_limits<double>::infinity();
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(a.data()[i] - b.data()[i]);
    worst = std::isnan(d) ? std::numeric_limits<double>::infinity() : std::max(worst, d);
  }
  return worst;
}

template <class T>
Tensor<T> activation(const std::string& op, const Tensor<T>& x) {
  if (op == "erf") return erf(x);
  if (op == "gelu") return gelu(x);
  if (op == "silu") return silu(x);
  if (op == "elu") return elu(x);
  return elu(x, 0.7);  // elu_alpha
}

const char* const kActivations[] = {"erf", "gelu", "silu", "elu", "elu_alpha"};

}  // namespace

TEST_CASE(
    "erf, gelu, silu and elu match PyTorch: values, gradients and second derivatives, 0 and +-30 "
    "included") {
  for (const std::string op : kActivations) {
    SUBCASE(op.c_str()) {
      const std::string key = op + ".x.";
      Tensor<double> x(get(key + "x"), requires_grad);
      Tape tape;
      const auto y = activation(op, x);
      CHECK(max_difference(y.value(), get(key + "y")) <= 1e-10);
      sum(y * Tensor<double>(get(key + "g"))).backward(create_graph);
      const auto dx = x.grad_tensor();
      CHECK(max_difference(dx.value(), get(key + "dx")) <= 1e-10);
      x.zero_grad();
      sum(dx * Tensor<double>(get(key + "w"))).backward();
      CHECK(max_difference(x.grad(), get(key + "d2x")) <= 1e-10);
    }
  }
}

TEST_CASE("batched matmul matches torch.matmul: broadcast batch axes, 2-d and 1-d operands") {
  for (const char* c : {"b3_b3", "b4_2d", "2d_b4", "b1_b3", "1d_b3", "b3_1d", "b2x1_b3"}) {
    SUBCASE(c) {
      const std::string key = std::string("matmul.") + c + ".";
      Tensor<double> a(get(key + "a"), requires_grad), b(get(key + "b"), requires_grad);
      Tape tape;
      const auto y = matmul(a, b);
      CHECK(max_difference(y.value(), get(key + "y")) <= 1e-10);
      sum(y * Tensor<double>(get(key + "g"))).backward();
      CHECK(max_difference(a.grad(), get(key + "da")) <= 1e-10);
      CHECK(max_difference(b.grad(), get(key + "db")) <= 1e-10);
    }
  }
}

TEST_CASE("gradcheck in float64: the activations away from their kinks") {
  const auto x = test::random_array({3, 4}, 501, -3, 3);
  test::require_gradcheck<double>([](const auto& v) { return erf(v[0]); }, {x});
  test::require_gradcheck<double>([](const auto& v) { return gelu(v[0]); }, {x});
  test::require_gradcheck<double>([](const auto& v) { return silu(v[0]); }, {x});
  test::require_gradcheck<double>([](const auto& v) { return elu(v[0]); }, {x});
  test::require_gradcheck<double>([](const auto& v) { return elu(v[0], 0.3); }, {x});
}

TEST_CASE("gradcheck in float64: batched matmul for every broadcast form") {
  const auto check = [](const Shape& sa, const Shape& sb, std::uint64_t seed) {
    INFO(shape_to_string(sa), " x ", shape_to_string(sb));
    test::require_gradcheck<double>(
        [](const auto& v) { return matmul(v[0], v[1]); },
        {test::random_array(sa, seed), test::random_array(sb, seed + 1)});
  };
  check({2, 3, 4}, {2, 4, 2}, 510);     // 3-d x 3-d
  check({2, 3, 2, 4}, {4, 3}, 512);     // 4-d x 2-d (one GEMM over the stacked rows)
  check({3, 4}, {2, 1, 4, 2}, 514);     // 2-d x 4-d (a broadcast: its gradient is summed)
  check({4}, {3, 4, 2}, 516);           // 1-d x 3-d
  check({2, 3, 4}, {4}, 518);           // 3-d x 1-d
  check({1, 2, 3}, {3, 3, 2}, 520);     // batch extent 1 against 3
  check({3, 2, 3}, {1, 3, 2}, 522);     // and the other way round
  check({2, 1, 2, 3}, {3, 3, 2}, 524);  // both broadcast: (2, 1) with (3,)
}

TEST_CASE("batched matmul equals a loop of 2-d matmuls over the batch") {
  const Array a = test::random_array({2, 3, 4, 5}, 530);
  const Array b = test::random_array({3, 5, 2}, 531);
  const Array w = test::random_array({5, 6}, 532);
  const auto y = matmul(Tensor<double>(a), Tensor<double>(b));
  const auto z = matmul(Tensor<double>(a), Tensor<double>(w));  // the stacked-rows form
  REQUIRE(y.shape() == Shape{2, 3, 4, 2});
  REQUIRE(z.shape() == Shape{2, 3, 4, 6});
  for (std::size_t i = 0; i < 2; ++i) {
    for (std::size_t j = 0; j < 3; ++j) {
      const Array ai = xt::view(a, i, j);
      const Array bj = xt::view(b, j);
      const Array expected = matmul(Tensor<double>(ai), Tensor<double>(bj)).value();
      const Array got = xt::view(y.value(), i, j);
      CHECK(max_difference(got, expected) <= 1e-13);
      const Array expected_w = matmul(Tensor<double>(ai), Tensor<double>(w)).value();
      const Array got_w = xt::view(z.value(), i, j);
      CHECK(max_difference(got_w, expected_w) <= 1e-13);
    }
  }
}

TEST_CASE("batched matmul with zero extents: empty batch, empty matrices, empty inner axis") {
  const auto check = [](const Shape& sa, const Shape& sb, const Shape& sy) {
    INFO(shape_to_string(sa), " x ", shape_to_string(sb));
    Tensor<double> a(test::random_array(sa, 540), requires_grad),
        b(test::random_array(sb, 541), requires_grad);
    Tape tape;
    const auto y = matmul(a, b);
    REQUIRE(y.shape() == sy);
    for (std::size_t i = 0; i < y.size(); ++i) CHECK(y.value().data()[i] == 0.0);  // empty sums
    sum(y).backward();
    CHECK(a.grad().shape() == sa);
    CHECK(b.grad().shape() == sb);
    for (std::size_t i = 0; i < a.grad().size(); ++i) CHECK(a.grad().data()[i] == 0.0);
  };
  check({0, 3, 4}, {0, 4, 2}, {0, 3, 2});
  check({0, 3, 4}, {4, 2}, {0, 3, 2});
  check({4, 2}, {0, 2, 3}, {0, 4, 3});
  check({2, 0, 4}, {2, 4, 3}, {2, 0, 3});
  check({2, 3, 0}, {1, 0, 5}, {2, 3, 5});  // inner 0: zeros, not garbage
  check({1, 3, 0}, {0}, {1, 3});
}

TEST_CASE("float agrees with double, and nothing overflows at large |x|") {
  const Array x = Array{-200.0, -30.0, -9.0, -1.5, -0.2, 0.0, 0.2, 1.5, 9.0, 30.0, 200.0};
  for (const std::string op : kActivations) {
    SUBCASE(op.c_str()) {
      Tensor<double> xd(x, requires_grad);
      Tensor<float> xf(xt::xarray<float>(xt::cast<float>(x)), requires_grad);
      Tape tape;
      const auto yd = activation(op, xd);
      const auto yf = activation(op, xf);
      sum(yd * yd).backward();
      sum(yf * yf).backward();
      for (std::size_t i = 0; i < x.size(); ++i) {
        INFO("x = ", x(i));
        const double vd = yd.value()(i), gd = xd.grad()(i);
        const double vf = yf.value()(i), gf = xf.grad()(i);
        CHECK(std::isfinite(vf));
        CHECK(std::isfinite(gf));
        CHECK(vf == doctest::Approx(vd).epsilon(1e-5).scale(1e-30));
        CHECK(gf == doctest::Approx(gd).epsilon(2e-5).scale(1e-30));
      }
    }
  }
  // Batched matmul in float against double.
  const Array a = test::random_array({2, 3, 4}, 550), b = test::random_array({4, 2}, 551);
  const Array c = test::random_array({1, 4, 2}, 552);
  for (const Array& right : {b, c}) {
    const auto yd = matmul(Tensor<double>(a), Tensor<double>(right));
    const auto yf = matmul(Tensor<float>(xt::xarray<float>(xt::cast<float>(a))),
                           Tensor<float>(xt::xarray<float>(xt::cast<float>(right))));
    CHECK(max_difference(xt::cast<double>(yf.value()), yd.value()) <= 1e-5);
  }
}

TEST_CASE("the tails: gelu keeps x Phi(x) for large negative x, elu tends to -alpha, erf to +-1") {
  const Tensor<double> x(Array{-30.0, -10.0, 30.0});
  // x Phi(x) at -10 is -10 * 7.6198530241605e-24 (erfc form; 1 + erf would give 0).
  CHECK(gelu(x).value()(1) == doctest::Approx(-7.6198530241604696e-23).epsilon(1e-12));
  CHECK(gelu(x).value()(2) == 30.0);
  CHECK(elu(x, 2.0).value()(0) == 2.0 * std::expm1(-30.0));  // -2 + 1.9e-13
  CHECK(elu(x, 2.0).value()(2) == 30.0);
  CHECK(erf(x).value()(0) == -1.0);
  CHECK(silu(x).value()(2) == doctest::Approx(30.0 - 30.0 * std::exp(-30.0)).epsilon(1e-15));
  CHECK(std::abs(silu(x).value()(0)) < 1e-11);
}

TEST_CASE("second derivatives stay finite at huge |x|, float and double") {
  const auto check = [](auto x) {
    Tape tape;
    for (const std::string op : kActivations) {
      INFO(op);
      x.zero_grad();
      const auto y = activation(op, x);
      sum(y).backward(create_graph);
      const auto dx = x.grad_tensor();
      x.zero_grad();
      sum(dx * dx).backward();
      for (std::size_t i = 0; i < x.size(); ++i) {
        CHECK(std::isfinite(dx.value()(i)));
        CHECK(std::isfinite(x.grad()(i)));
      }
    }
  };
  check(Tensor<double>(Array{-1e200, -1e160, -40.5, 0.0, 40.5, 1e160, 1e200}, requires_grad));
  check(Tensor<float>(xt::xarray<float>{-1e30f, -1e20f, -40.5f, 0.0f, 40.5f, 1e20f, 1e30f},
                      requires_grad));
}

TEST_CASE(
    "a batch times a matrix of batch extents 1 is one product over the stacked rows, gradients "
    "included") {
  // (2, 3, 4) x (1, 1, 4, 2) -> (1, 2, 3, 2): b's extra axes of 1 lead y's shape.
  test::require_gradcheck<double>(
      [](const auto& v) { return matmul(v[0], v[1]); },
      {test::random_array({2, 3, 4}, 580), test::random_array({1, 1, 4, 2}, 581)});
  const Array a = test::random_array({2, 3, 4}, 582), b = test::random_array({1, 4, 2}, 583);
  const auto y = matmul(Tensor<double>(a), Tensor<double>(b));
  REQUIRE(y.shape() == Shape{2, 3, 2});
  for (std::size_t i = 0; i < 2; ++i) {
    const Array ai = xt::view(a, i), b0 = xt::view(b, 0);
    const Array got = xt::view(y.value(), i);
    CHECK(max_difference(got, matmul(Tensor<double>(ai), Tensor<double>(b0)).value()) <= 1e-13);
  }
  CHECK(matmul(Tensor<double>(xt::zeros<double>({3, 4})),
               Tensor<double>(xt::zeros<double>({1, 1, 4, 2})))
            .shape() == Shape{1, 1, 3, 2});
}

TEST_CASE("matmul errors name the op and both shapes") {
  const Tensor<double> a3(xt::zeros<double>({2, 3, 5, 4})), b3(xt::zeros<double>({4, 3, 4, 2}));
  CHECK_THROWS_WITH_AS(
      matmul(a3, b3),
      "matmul: batch dimensions (2, 3) and (4, 3) do not broadcast: (2, 3, 5, 4) x (4, 3, 4, 2)",
      ShapeError);
  CHECK_THROWS_WITH_AS(matmul(Tensor<double>(xt::zeros<double>({2, 3, 4})),
                              Tensor<double>(xt::zeros<double>({2, 5, 6}))),
                       "matmul: inner dimensions differ: (2, 3, 4) x (2, 5, 6)", ShapeError);
  CHECK_THROWS_WITH_AS(
      matmul(Tensor<double>(xt::zeros<double>({3})), Tensor<double>(xt::zeros<double>({2, 4, 2}))),
      "matmul: inner dimensions differ: (3,) x (2, 4, 2)", ShapeError);
  CHECK_THROWS_WITH_AS(
      matmul(Tensor<double>(xt::zeros<double>({2, 3, 4})), Tensor<double>(xt::zeros<double>({3}))),
      "matmul: inner dimensions differ: (2, 3, 4) x (3,)", ShapeError);
  CHECK_THROWS_WITH_AS(matmul(Tensor<double>(2.0), Tensor<double>(xt::zeros<double>({2, 2, 2}))),
                       "matmul: operands must be at least 1-d, got () x (2, 2, 2)", ShapeError);
}

TEST_CASE("nn: GELU, SiLU and ELU modules print as PyTorch and apply their ops") {
  CHECK(nn::to_string(nn::GELU<double>()) == "GELU(approximate='none')");
  CHECK(nn::to_string(nn::SiLU<float>()) == "SiLU()");
  CHECK(nn::to_string(nn::ELU<double>()) == "ELU(alpha=1.0)");
  CHECK(std::string(nn::activation_name(nn::Activation::GELU)) == "gelu");
  CHECK(std::string(nn::activation_name(nn::Activation::SiLU)) == "silu");
  CHECK(std::string(nn::activation_name(nn::Activation::ELU)) == "elu");
  const Array x = test::random_array({2, 3}, 560, -3, 3);
  nn::GELU<double> g;
  nn::SiLU<double> s;
  nn::ELU<double> e;
  CHECK(max_difference(g.forward(Tensor<double>(x)).value(), gelu(Tensor<double>(x)).value()) == 0);
  CHECK(max_difference(s.forward(Tensor<double>(x)).value(), silu(Tensor<double>(x)).value()) == 0);
  CHECK(max_difference(e.forward(Tensor<double>(x)).value(), elu(Tensor<double>(x)).value()) == 0);
  nn::MLP<double> mlp({3, 4, 2}, nn::Activation::GELU,
                      nn::MLPOptions().output_activation(nn::Activation::ELU));
  CHECK(nn::to_string(mlp).find("(1): GELU(approximate='none')") != std::string::npos);
  CHECK(nn::to_string(mlp).find("(3): ELU(alpha=1.0)") != std::string::npos);
}

TEST_CASE("check_mlp_bp's equations know the new activations") {
  const Array inputs = test::random_array({5, 3}, 570), targets = test::random_array({5, 2}, 571);
  for (const auto a : {nn::Activation::GELU, nn::Activation::SiLU, nn::Activation::ELU}) {
    INFO(nn::activation_name(a));
    nn::MLP<double> mlp({3, 4, 2}, a);
    const auto report = nn::check_mlp_bp(mlp, inputs, targets);
    INFO(report.message);
    CHECK(report.passed);
  }
}

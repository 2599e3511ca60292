// functional::jvp, functional::vjp and jacobian's forward mode, against finite differences,
// against the reverse-mode Jacobian, and each other.
#include <cmath>
#include <string>

#include "helpers.hpp"

using namespace tapegrad;

namespace {

using Args = std::vector<xt::xarray<double>>;

// J v by central differences in double: (f(x + h v) - f(x - h v)) / 2h, every argument moved
// along its own tangent at once.
template <class T, class F>
xt::xarray<double> fd_jvp(const F& f, const Args& xs, const Args& vs, double h) {
  auto at = [&](double sign) {
    std::vector<Tensor<T>> moved;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      moved.emplace_back(xt::xarray<T>(xt::cast<T>(xs[i] + sign * h * vs[i])));
    }
    return xt::xarray<double>(xt::cast<double>(f(moved).value()));
  };
  return (at(1) - at(-1)) / (2 * h);
}

// J v from the reverse-mode Jacobians: sum_i J_i (flattened) times v_i.
template <class T>
xt::xarray<T> jacobian_times(const std::vector<Tensor<T>>& jacobians,
                             const std::vector<Tensor<T>>& vs, const Shape& out_shape) {
  xt::xarray<T> result = xt::zeros<T>(out_shape);
  for (std::size_t i = 0; i < vs.size(); ++i) {
    const std::size_t n = vs[i].size();
    for (std::size_t out = 0; out < result.size(); ++out) {
      for (std::size_t k = 0; k < n; ++k) {
        result.data()[out] += jacobians[i].value().data()[out * n + k] * vs[i].value().data()[k];
      }
    }
  }
  return result;
}

// jvp against finite differences and against jacobian(Reverse) times v, in T.
template <class T, class F>
void check_jvp(const F& f, const Args& xs, std::uint64_t seed) {
  Args vs;
  for (std::size_t i = 0; i < xs.size(); ++i)
    vs.push_back(test::random_array(xs[i].shape(), seed + i));
  const auto x = test::as_tensors<T>(xs), v = test::as_tensors<T>(vs);
  const auto [value, jv] = functional::jvp(f, x, v);
  CHECK(value.value() == f(x).value());
  CHECK_FALSE(jv.requires_grad());

  const bool is_double = std::is_same_v<T, double>;
  const auto numeric = fd_jvp<T>(f, xs, vs, is_double ? 1e-6 : 1e-2);
  const xt::xarray<double> got = xt::cast<double>(jv.value());
  INFO("jvp " << got << "\nfinite differences " << numeric);
  CHECK(test::all_close(got, numeric, is_double ? 1e-6 : 2e-2, is_double ? 1e-7 : 2e-2));

  const auto reverse = functional::jacobian(f, x, functional::JacobianMode::Reverse);
  const xt::xarray<T> expected = jacobian_times(reverse, v, value.shape());
  CHECK(test::all_close(jv.value(), expected, is_double ? 1e-12 : 1e-5, is_double ? 1e-12 : 1e-5));
}

template <class T>
void check_jvp_family() {
  using Ts = std::vector<Tensor<T>>;
  // Elementwise.
  check_jvp<T>([](const Ts& x) { return tanh(x[0]) * exp(x[0]); }, {test::random_array({2, 3}, 1)},
               10);
  // matmul of two arguments.
  check_jvp<T>([](const Ts& x) { return matmul(x[0], x[1]); },
               {test::random_array({2, 3}, 2), test::random_array({3, 4}, 3)}, 20);
  // softmax-ish: a softmax, and log_softmax along the first axis.
  check_jvp<T>([](const Ts& x) { return softmax(x[0]); }, {test::random_array({3, 4}, 4)}, 30);
  check_jvp<T>([](const Ts& x) { return log_softmax(x[0], 0); }, {test::random_array({3, 2}, 5)},
               40);
  // Reductions: to one element, and along an axis.
  check_jvp<T>([](const Ts& x) { return sum(square(x[0])); }, {test::random_array({4}, 6)}, 50);
  check_jvp<T>([](const Ts& x) { return mean(x[0] * x[0] * x[0], {1}); },
               {test::random_array({3, 5}, 7)}, 60);
  // Broadcasting: (2, 3) * (3,) + (2, 1).
  check_jvp<T>(
      [](const Ts& x) { return x[0] * x[1] + x[2]; },
      {test::random_array({2, 3}, 8), test::random_array({3}, 9), test::random_array({2, 1}, 10)},
      70);
}

}  // namespace

TEST_CASE("jvp matches finite differences and the reverse Jacobian times v, in double and float") {
  SUBCASE("double") { check_jvp_family<double>(); }
  SUBCASE("float") { check_jvp_family<float>(); }
}

TEST_CASE("jvp of a closed form, one argument") {
  // f(x) = (x0^2, x0 x1, sin x1): J v = (2 x0 v0, x1 v0 + x0 v1, cos(x1) v1).
  auto f = [](const Tensor<double>& x) {
    const auto x0 = narrow(x, 0, 0, 1), x1 = narrow(x, 0, 1, 1);
    return concat(std::vector{square(x0), x0 * x1, sin(x1)}, 0);
  };
  const Tensor<double> x(xt::xarray<double>{3.0, 0.5});
  const Tensor<double> v(xt::xarray<double>{-1.0, 2.0});
  const auto [value, jv] = functional::jvp(f, x, v);
  CHECK(value.value() == xt::xarray<double>{9.0, 1.5, std::sin(0.5)});
  REQUIRE(jv.shape() == Shape{3});
  CHECK(jv.value()(0) == doctest::Approx(-6.0));
  CHECK(jv.value()(1) == doctest::Approx(-0.5 + 6.0));
  CHECK(jv.value()(2) == doctest::Approx(2 * std::cos(0.5)));
  CHECK_FALSE(x.has_grad());  // the caller's tensors are untouched
  // The identity: J v = v.
  CHECK(functional::jvp([](const Tensor<double>& t) { return t; }, x, v).second.value() ==
        v.value());
}

TEST_CASE("jvp of a function that ignores an argument, of a constant, and of no elements") {
  using Ts = std::vector<Tensor<double>>;
  const Ts x = {Tensor<double>(xt::xarray<double>{1.0, 2.0}),
                Tensor<double>(xt::xarray<double>{3.0})};
  const Ts v_second = {Tensor<double>(xt::xarray<double>{0.0, 0.0}),
                       Tensor<double>(xt::xarray<double>{1.0})};
  // f does not read x[1]: moving along x[1] alone changes nothing.
  const auto [value, jv] = functional::jvp([](const Ts& a) { return a[0] * 2.0; }, x, v_second);
  CHECK(value.value() == xt::xarray<double>{2.0, 4.0});
  CHECK(jv.value() == xt::xarray<double>{0.0, 0.0});
  // f does not depend on its arguments through tapegrad ops at all.
  const auto constant = functional::jvp(
      [](const Ts&) {
        return Tensor<double>(xt::xarray<double>{5.0, 6.0, 7.0});
      },
      x, v_second);
  CHECK(constant.second.value() == xt::xarray<double>{0.0, 0.0, 0.0});
  // No elements: x of shape (0, 3).
  const Tensor<double> empty(xt::xarray<double>(xt::zeros<double>({0, 3})));
  const auto to_empty =
      functional::jvp([](const Tensor<double>& t) { return exp(t); }, empty, empty);
  CHECK(to_empty.second.shape() == Shape{0, 3});
  const auto to_scalar =
      functional::jvp([](const Tensor<double>& t) { return sum(t); }, empty, empty);
  CHECK(to_scalar.second.shape() == Shape{});
  CHECK(to_scalar.second.item() == 0.0);
  CHECK(functional::jacobian([](const Tensor<double>& t) { return sum(t); }, empty,
                             functional::JacobianMode::Forward)
            .shape() == Shape{0, 3});
}

TEST_CASE("jvp through relu, abs and max matches finite differences away from the kinks") {
  // No element within 0.1 of a kink: 0 for relu and abs, a tie for maximum.
  const xt::xarray<double> a = {{-1.5, 0.7, 2.0}, {0.3, -0.4, -2.2}};
  const xt::xarray<double> b = {{-1.0, 0.2, 2.5}, {-0.5, 0.6, -1.8}};
  const auto f = [](const auto& x) {
    return relu(x[0]) * abs(x[1]) + maximum(x[0], x[1]) + max(x[0] * x[1], 1, true) * 0.5;
  };
  check_jvp<double>(f, {a, b}, 80);
  check_jvp<float>(f, {a, b}, 90);
}

TEST_CASE("vjp matches the Jacobian transposed times v") {
  using Ts = std::vector<Tensor<double>>;
  const auto f = [](const Ts& x) { return matmul(tanh(x[0]), x[1]) + 1.0; };
  const Ts x = {Tensor<double>(test::random_array({2, 3}, 11)),
                Tensor<double>(test::random_array({3, 4}, 12))};
  const Tensor<double> v(test::random_array({2, 4}, 13));
  const auto [value, vjps] = functional::vjp(f, x, v);
  CHECK(value.value() == f(x).value());
  REQUIRE(vjps.size() == 2);
  const auto jacobians = functional::jacobian(f, x);
  for (std::size_t i = 0; i < 2; ++i) {
    REQUIRE(vjps[i].shape() == x[i].shape());
    const std::size_t n = x[i].size();
    for (std::size_t k = 0; k < n; ++k) {
      double expected = 0;
      for (std::size_t out = 0; out < v.size(); ++out) {
        expected += v.value().data()[out] * jacobians[i].value().data()[out * n + k];
      }
      CHECK(vjps[i].value().data()[k] == doctest::Approx(expected));
    }
  }
  // One argument: d sum(v * x^2) / dx = 2 v x.
  const Tensor<float> xf(xt::xarray<float>{1.0f, -2.0f}), vf(xt::xarray<float>{3.0f, 0.5f});
  const auto one = functional::vjp([](const Tensor<float>& t) { return t * t; }, xf, vf);
  CHECK(one.first.value() == xt::xarray<float>{1.0f, 4.0f});
  CHECK(one.second.value() == xt::xarray<float>{6.0f, -2.0f});
}

TEST_CASE("jacobian: forward mode equals reverse mode for tall and wide functions") {
  using Ts = std::vector<Tensor<double>>;
  // Tall: 4 input elements, 12 outputs (Auto chooses forward). Wide: 18 inputs, 2 outputs.
  const auto tall = [](const Ts& x) {
    return concat(std::vector{broadcast_to(exp(x[0]), {5, 2}), x[0] * x[1]}, 0);
  };
  const auto wide = [](const Ts& x) { return sum(tanh(x[0]) * x[1], {1}); };
  const Ts tall_in = {Tensor<double>(test::random_array({2}, 14)),
                      Tensor<double>(test::random_array({1, 2}, 15))};
  const Ts wide_in = {Tensor<double>(test::random_array({2, 6}, 16)),
                      Tensor<double>(test::random_array({6}, 17))};
  for (const auto& [f, in] : {std::pair{std::function<Tensor<double>(const Ts&)>(tall), tall_in},
                              std::pair{std::function<Tensor<double>(const Ts&)>(wide), wide_in}}) {
    const auto forward = functional::jacobian(f, in, functional::JacobianMode::Forward);
    const auto reverse = functional::jacobian(f, in, functional::JacobianMode::Reverse);
    const auto automatic = functional::jacobian(f, in);
    REQUIRE(forward.size() == in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
      REQUIRE(forward[i].shape() == reverse[i].shape());
      CHECK(automatic[i].shape() == reverse[i].shape());
      CHECK(xt::allclose(forward[i].value(), reverse[i].value(), 1e-13, 1e-14));
      CHECK(xt::allclose(automatic[i].value(), reverse[i].value(), 1e-13, 1e-14));
      CHECK(xt::amax(xt::abs(reverse[i].value()))() > 0);
    }
  }
  // One argument, float, forward forced.
  const auto f1 = [](const Tensor<float>& x) { return broadcast_to(x * x, {3, 2}); };
  const Tensor<float> x1(xt::xarray<float>{1.5f, -2.0f});
  CHECK(functional::jacobian(f1, x1, functional::JacobianMode::Forward).value() ==
        functional::jacobian(f1, x1, functional::JacobianMode::Reverse).value());
}

TEST_CASE("jvp and vjp name both shapes when v does not fit") {
  const auto f = [](const Tensor<double>& x) { return sum(x, {1}); };
  const Tensor<double> x(xt::xarray<double>(xt::ones<double>({2, 3})));
  CHECK_THROWS_WITH_AS(functional::jvp(f, x, Tensor<double>(xt::xarray<double>{1.0, 2.0})),
                       doctest::Contains("jvp: v has shape (2,) but x has shape (2, 3)"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(functional::vjp(f, x, x),
                       doctest::Contains("vjp: v has shape (2, 3) but f(x) has shape (2,)"),
                       ShapeError);
  using Ts = std::vector<Tensor<double>>;
  const auto g = [](const Ts& a) { return a[0] + a[1]; };
  const Ts two = {x, x};
  CHECK_THROWS_WITH_AS(functional::jvp(g, two, Ts{x}),
                       doctest::Contains("jvp: 1 tangents v for 2 arguments"), ShapeError);
  CHECK_THROWS_WITH_AS(
      functional::jvp(g, two, Ts{x, Tensor<double>(xt::xarray<double>{1.0})}),
      doctest::Contains("jvp: v[1] has shape (1,) but argument 1 has shape (2, 3)"), ShapeError);
  CHECK_THROWS_WITH_AS(functional::vjp(g, two, Tensor<double>(1.0)),
                       doctest::Contains("vjp: v has shape () but f(x) has shape (2, 3)"),
                       ShapeError);
}

TEST_CASE("jvp through a once_differentiable custom op throws TapeError naming it; vjp works") {
  const CustomOp<double> raw_square(
      "raw_square",
      [](const std::vector<Tensor<double>>& in) {
        return xt::xarray<double>(in[0].value() * in[0].value());
      },
      [](const CustomBackwardContext<double>& c) {
        return std::vector{
            Tensor<double>(xt::xarray<double>(c.grad_output().value() * 2.0 * c.input(0).value()))};
      },
      once_differentiable);
  const auto f = [&](const Tensor<double>& x) { return raw_square({x}); };
  const Tensor<double> x(xt::xarray<double>{1.0, -2.0});
  CHECK_THROWS_WITH_AS(functional::jvp(f, x, x), doctest::Contains("raw_square"), TapeError);
  CHECK(functional::vjp(f, x, x).second.value() == xt::xarray<double>{2.0, 8.0});
}

TEST_CASE("jacobian's Auto mode tries forward for a tall function and falls back to reverse") {
  // A once_differentiable op has no second derivative: forward mode throws, naming it.
  const CustomOp<double> raw_exp(
      "raw_exp",
      [](const std::vector<Tensor<double>>& in) {
        return xt::xarray<double>(xt::exp(in[0].value()));
      },
      [](const CustomBackwardContext<double>& c) {
        return std::vector{
            Tensor<double>(xt::xarray<double>(c.grad_output().value() * c.output().value()))};
      },
      once_differentiable);
  int calls = 0;
  const auto tall = [&](const Tensor<double>& x) {
    ++calls;
    return raw_exp({broadcast_to(x, {4, 2})});
  };
  const auto wide = [&](const Tensor<double>& x) {
    ++calls;
    return sum(raw_exp({x}));
  };
  const Tensor<double> x(xt::xarray<double>{0.5, -1.0});
  CHECK_THROWS_WITH_AS(functional::jacobian(tall, x, functional::JacobianMode::Forward),
                       doctest::Contains("raw_exp"), TapeError);
  const auto reverse = functional::jacobian(tall, x, functional::JacobianMode::Reverse);
  calls = 0;
  const auto automatic = functional::jacobian(tall, x);
  CHECK(calls == 2);  // forward tried first (2 inputs < 8 outputs), then reverse
  CHECK(automatic.value() == reverse.value());
  CHECK(reverse.value()(3, 1, 1) == doctest::Approx(std::exp(-1.0)));
  calls = 0;
  CHECK(functional::jacobian(wide, x).value() == xt::exp(x.value()));
  CHECK(calls == 1);  // reverse straight away (2 inputs, 1 output)
}

TEST_CASE("jvp of a gradient is the Hessian times v (the inner grad records for the outer jvp)") {
  // f(x) = sum(x^3 sin x): H = diag(6x sin x + 6x^2 cos x - x^3 sin x), derived by hand. jvp
  // returned zeros: grad's result was a constant.
  const xt::xarray<double> at = {0.7, -1.3, 2.1}, v = {0.5, 2.0, -1.0};
  const auto f = [](const Tensor<double>& x) { return sum(x * x * x * sin(x)); };
  const auto [g, hv] =
      functional::jvp([&](const Tensor<double>& x) { return functional::grad(f, x); },
                      Tensor<double>(at), Tensor<double>(v));
  for (std::size_t i = 0; i < 3; ++i) {
    const double x = at(i);
    const double second = 6 * x * std::sin(x) + 6 * x * x * std::cos(x) - x * x * x * std::sin(x);
    CHECK(g.value()(i) == doctest::Approx(3 * x * x * std::sin(x) + x * x * x * std::cos(x)));
    CHECK(hv.value()(i) == doctest::Approx(second * v(i)).epsilon(1e-12));
  }
  CHECK_FALSE(hv.requires_grad());
}

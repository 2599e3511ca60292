// Indexing: select, slice (Python's start:stop:step) and the multi-axis index, their values
// against xtensor's views and Python's rules, their gradients, and their errors.
#include <cstdint>
#include <limits>
#include <vector>
#include <xtensor/xview.hpp>

#include "helpers.hpp"
#include "tapegrad/compile.hpp"

using namespace tapegrad;

namespace {
Tensor<double> count_to(std::size_t n) {
  xt::xarray<double> v = xt::zeros<double>({n});
  for (std::size_t i = 0; i < n; ++i) v(i) = static_cast<double>(i);
  return Tensor<double>(v);
}
}  // namespace

TEST_CASE(
    "select takes the sub-tensor at a position, dropping the axis; negative counts from the end") {
  const Tensor<double> x(test::random_array({3, 4}, 1));
  CHECK(select(x, 0, 1).value() == xt::xarray<double>(xt::view(x.value(), 1, xt::all())));
  CHECK(x.select(1, -1).value() == xt::xarray<double>(xt::view(x.value(), xt::all(), 3)));
  CHECK(x.select(-1, 0).shape() == Shape{3});
  const Tensor<double> v = count_to(5);
  CHECK(v.select(0, -5).shape() == Shape{});
  CHECK(v.select(0, -5).item() == 0.0);
  CHECK(v.select(0, 4).item() == 4.0);
}

TEST_CASE("slice follows Python's start:stop:step, clamping bounds beyond the axis") {
  const Tensor<double> v = count_to(10);
  const auto values = [](const Tensor<double>& t) {
    return std::vector<double>(t.value().begin(), t.value().end());
  };
  CHECK(values(v.slice(0, 2, 8, 3)) == std::vector<double>{2, 5});          // a[2:8:3]
  CHECK(values(v.slice(0, -3, {})) == std::vector<double>{7, 8, 9});        // a[-3:]
  CHECK(values(v.slice(0, {}, -7, 2)) == std::vector<double>{0, 2});        // a[:-7:2]
  CHECK(values(v.slice(0, -100, 100, 4)) == std::vector<double>{0, 4, 8});  // a[-100:100:4]
  CHECK(values(v.slice(0, {}, {}, 3)) == std::vector<double>{0, 3, 6, 9});  // a[::3]
  CHECK(values(v.slice(0, 9, {}, 5)) == std::vector<double>{9});            // a[9::5]
  CHECK(v.slice(0, 5, 2).shape() == Shape{0});                              // a[5:2]
  CHECK(v.slice(0, 12, 20, 2).shape() == Shape{0});                         // a[12:20:2]
  CHECK(values(slice(v, 0, 1, 4)) == std::vector<double>{1, 2, 3});
  // Along an inner axis of a 3-d tensor, against xtensor's strided view.
  const Tensor<double> x(test::random_array({2, 7, 3}, 2));
  CHECK(x.slice(1, 1, {}, 2).value() ==
        xt::xarray<double>(xt::view(x.value(), xt::all(), xt::range(1, 7, 2), xt::all())));
}

TEST_CASE("index: positions drop their axes, Slices keep them, later axes stay whole") {
  const Tensor<double> x(test::random_array({2, 3, 4}, 3));
  const auto& a = x.value();
  CHECK(x.index({all, 1, all}).value() == xt::xarray<double>(xt::view(a, xt::all(), 1, xt::all())));
  CHECK(x.index({1, Slice(1, {}, 2)}).value() ==
        xt::xarray<double>(xt::view(a, 1, xt::range(1, 3, 2), xt::all())));
  CHECK(x.index({-1, -1, -1}).shape() == Shape{});
  CHECK(x.index({-1, -1, -1}).item() == a(1, 2, 3));
  CHECK(x.index({}).value() == a);
  const std::size_t t = 2;  // an unsigned position, as a loop over time steps has
  CHECK(index(x, {all, t}).value() == xt::xarray<double>(xt::view(a, xt::all(), 2, xt::all())));
}

TEST_CASE("select, slice and index are differentiable: gradcheck and the gradient's places") {
  test::require_gradcheck<double>(
      [](const auto& xs) { return sum(sin(xs[0].select(1, -2))) * sum(xs[0].slice(1, 0, {}, 3)); },
      {test::random_array({3, 4}, 4)});
  test::require_gradcheck<double>(
      [](const auto& xs) {
        return sum(exp(xs[0].index({Slice(-2, {}), 1, Slice({}, {}, 2)})));
      },
      {test::random_array({3, 2, 5}, 5)});
  // The gradient of a strided slice is g at the taken places and zero elsewhere.
  Tensor<double> v(count_to(7).value(), requires_grad);
  {
    Tape tape;
    sum(v.slice(0, 1, {}, 3) * 2.0).backward();
  }
  CHECK(v.grad() == xt::xarray<double>{0, 2, 0, 0, 2, 0, 0});
}

TEST_CASE("a compiled step replays select, slice and index on new values") {
  Tensor<double> w(test::random_array({4, 6}, 6), requires_grad);
  Tensor<double> x(test::random_array({6}, 7));
  const auto f = [&] {
    return sum(square(matmul(w.slice(1, 1, {}, 2), x.slice(0, {}, {}, 2)))) +
           sum(w.index({-1, Slice(2, 5)}));
  };
  auto step = compile(std::vector<Tensor<double>>{w}, f);
  for (std::uint64_t k = 0; k < 3; ++k) {
    w.mutable_value() = test::random_array({4, 6}, 10 + k);
    x.set_value(test::random_array({6}, 20 + k));
    w.zero_grad();
    const double replayed = step.run();
    const xt::xarray<double> replayed_grad = w.grad();
    w.zero_grad();
    double eager = 0;
    {
      Tape tape;
      const auto y = f();
      eager = y.item();
      y.backward();
    }
    CHECK(replayed == eager);
    CHECK(replayed_grad == w.grad());
  }
}

TEST_CASE("indexing errors name the op, the axis or entry, and the extent") {
  const Tensor<double> x(test::random_array({3, 4}, 8));
  CHECK_THROWS_WITH_AS(
      x.select(0, 3),
      "select: index 3 is out of range for axis 0 of extent 3 in a tensor of shape (3, 4) "
      "(valid: -3 to 2)",
      ValueError);
  CHECK_THROWS_WITH_AS(x.select(1, -5),
                       doctest::Contains("index -5 is out of range for axis 1 of extent 4"),
                       ValueError);
  CHECK_THROWS_WITH_AS(x.select(2, 0), doctest::Contains("select: axis 2 is out of range"),
                       ValueError);
  CHECK_THROWS_WITH_AS(Tensor<double>(1.0).select(0, 0),
                       doctest::Contains("select: axis 0 is out of range"), ValueError);
  CHECK_THROWS_WITH_AS(
      x.slice(1, 0, {}, 0),
      "slice: the step must be at least 1, got 0 (slice [0::0] of axis 1 of (3, 4)); PyTorch "
      "takes no negative step either",
      ValueError);
  CHECK_THROWS_WITH_AS(x.slice(1, {}, {}, -1), doctest::Contains("got -1"), ValueError);
  CHECK_THROWS_WITH_AS(x.index({0, 0, 0}), "index: 3 entries for a tensor of 2 axes, shape (3, 4)",
                       ValueError);
  CHECK_THROWS_WITH_AS(
      x.index({all, 4}),
      "index: index 4 is out of range for entry 1 (axis 1) of extent 4 in a tensor of shape "
      "(3, 4) (valid: -4 to 3)",
      ValueError);
  CHECK_THROWS_WITH_AS(x.index({Slice({}, {}, 0)}),
                       doctest::Contains("entry 0 (axis 0) has step 0"), ValueError);
  // An unsigned position too large for a signed one stays out of range; it does not wrap to -1.
  CHECK_THROWS_AS(x.index({std::numeric_limits<std::size_t>::max()}), ValueError);
  CHECK_THROWS_WITH_AS(Tensor<double>(xt::xarray<double>(xt::zeros<double>({0, 2}))).select(0, 0),
                       doctest::Contains("(valid: none)"), ValueError);
}
